"""The lite vision encoder on ONNX Runtime: same outputs as torch, a cache that can't be fooled.

Real bundled weights and real photos (``skimage.data``): these load real models, so ``slow``.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (vidsonar pins it in requirements.lock)")
pytest.importorskip("onnx", reason="onnx is not installed (vidsonar pins it in requirements.lock)")

from encoders.frames import fit_frame  # noqa: E402
from encoders.efficientnet import EfficientNetLite0  # noqa: E402
from encoders.onnx_lite import (  # noqa: E402
    LiteExportError, OnnxLite0, bundled_weights_path, cache_path, file_sha256, load_lite_vision, verified)
from samples.footage import PHOTOS, load_photo  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """The sample footage's real photos at the space's frame size (short side 224)."""
    frames = [fit_frame(load_photo(name), 224) for name in PHOTOS]
    return np.stack([f[:224, :224] for f in frames])


@pytest.fixture(scope="module")
def torch_lite() -> EfficientNetLite0:
    return EfficientNetLite0()


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A cache with the bundled weights' graph, exported once for the module."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    OnnxLite0.load(cache)
    return cache


def test_onnx_logits_match_torch_on_real_photos(onnx_cache, photos, torch_lite):
    onnx = OnnxLite0.load(onnx_cache)
    expected = torch_lite.logits(photos)
    got = onnx.logits(photos, batch_size=3)  # a batch size that leaves a remainder
    assert got.shape == expected.shape == (len(PHOTOS), 1000)
    assert np.abs(got - expected).max() < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    # a real difference is visible at this tolerance: two photos' logits are far apart
    assert np.abs(expected[0] - expected[1]).max() > 1.0


def test_lite_space_vectors_agree_across_runtimes(onnx_cache, photos, monkeypatch):
    from encoders.registry import load_space
    snippets = np.stack([photos[:4], photos[4:8]])  # two snippets of 4 real frames
    monkeypatch.setenv("VIDSONAR_LITE_PRECISION", "fp32")  # the float graph (int8: test_lite_int8)
    onnx_space = load_space("lite", cache_dir=onnx_cache)
    assert isinstance(onnx_space.vision, OnnxLite0)  # ONNX Runtime is the default
    monkeypatch.setenv("VIDSONAR_LITE_RUNTIME", "torch")
    torch_space = load_space("lite", cache_dir=onnx_cache)
    assert isinstance(torch_space.vision, EfficientNetLite0)
    probs_onnx = onnx_space.class_probabilities(snippets.reshape(-1, 224, 224, 3))
    probs_torch = torch_space.class_probabilities(snippets.reshape(-1, 224, 224, 3))
    assert np.abs(probs_onnx - probs_torch).max() < 1e-5


def test_cached_graph_is_reused(onnx_cache):
    path = cache_path(onnx_cache, file_sha256(bundled_weights_path()), 224, 127.0, 128.0)
    before = path.stat().st_mtime_ns
    OnnxLite0.load(onnx_cache)
    assert path.stat().st_mtime_ns == before
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["weights_sha256"] == file_sha256(bundled_weights_path())


@pytest.mark.parametrize("damage", ["truncated", "garbage-with-matching-size", "sidecar-missing"])
def test_broken_cache_file_is_replaced_not_trusted(onnx_cache, tmp_path, photos, torch_lite, damage, caplog):
    shutil.copytree(onnx_cache, tmp_path / "cache")
    path = cache_path(tmp_path / "cache", file_sha256(bundled_weights_path()), 224, 127.0, 128.0)
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage-with-matching-size":
        path.write_bytes(good[:1000] + bytes(len(good) - 1000))  # still a parsable prefix, no weights
    else:
        path.with_name(path.name + ".json").unlink()
    assert not verified(path)
    with caplog.at_level(logging.WARNING, logger="encoders.onnx_lite"):
        onnx = OnnxLite0.load(tmp_path / "cache")
    assert verified(path)
    assert np.abs(onnx.logits(photos[:2]) - torch_lite.logits(photos[:2])).max() < 1e-4
    if damage != "sidecar-missing":
        assert "fails its checksum" in caplog.text


def test_cache_is_rebuilt_when_the_weights_change(onnx_cache, tmp_path, photos):
    import torch
    state = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    bias = next(k for k in state if k.endswith("_fc.bias"))
    state[bias] = state[bias].clone()
    state[bias][0] += 50.0  # class 0 ("tench") now wins every image
    changed = tmp_path / "changed.pth"
    torch.save(state, changed)
    shutil.copytree(onnx_cache, tmp_path / "cache")
    onnx = OnnxLite0.load(tmp_path / "cache", weights=changed)
    old = cache_path(tmp_path / "cache", file_sha256(bundled_weights_path()), 224, 127.0, 128.0)
    assert onnx.model_path != old and verified(onnx.model_path) and verified(old)
    got = onnx.logits(photos)
    assert (got.argmax(1) == 0).all()
    expected = EfficientNetLite0(weights_path=changed).logits(photos)
    assert np.abs(got - expected).max() < 1e-4


def test_unusable_cache_falls_back_to_torch_with_the_reason(tmp_path, caplog):
    not_a_dir = tmp_path / "cache-is-a-file"
    not_a_dir.write_text("")
    with pytest.raises(LiteExportError, match="cannot use"):
        load_lite_vision(not_a_dir, runtime="onnx")
    with caplog.at_level(logging.WARNING, logger="encoders.onnx_lite"):
        encoder = load_lite_vision(not_a_dir, runtime="auto")
    assert isinstance(encoder, EfficientNetLite0)
    assert "runs on torch" in caplog.text and "cannot use" in caplog.text


def test_unknown_runtime_is_refused(tmp_path):
    with pytest.raises(ValueError, match="known: auto, onnx, torch"):
        load_lite_vision(tmp_path, runtime="tensorrt")
