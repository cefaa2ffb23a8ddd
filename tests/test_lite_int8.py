"""The lite vision encoder in int8: close to the float graph, made once, never trusted broken.

Real bundled weights, real photos: ``slow``. The photos compared are the sample footage's,
which the calibration set leaves out, so agreement here is not measured on calibration data.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (vidsonar pins it in requirements.lock)")
pytest.importorskip("onnx", reason="onnx is not installed (vidsonar pins it in requirements.lock)")

from encoders import lite_int8  # noqa: E402
from encoders.frames import fit_frame  # noqa: E402
from encoders.onnx_lite import OnnxLite0, file_sha256, load_lite_vision, verified  # noqa: E402
from samples.footage import PHOTOS, load_photo  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Three shifted 224 x 224 crops of each sample-footage photo."""
    out = []
    for name in PHOTOS:
        img = fit_frame(load_photo(name), 256)
        out += [img[dy:dy + 224, dx:dx + 224] for dy, dx in ((0, 0), (16, 24), (32, 8))]
    return np.stack(out)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("int8-cache")
    OnnxLite0.load(cache, precision="int8")  # exports, then quantizes, once for the module
    return cache


def softmax(logits: np.ndarray, temperature: float = 2.0) -> np.ndarray:
    z = logits / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def test_int8_agrees_with_the_float_graph_on_photos_it_was_not_calibrated_on(cache, crops):
    f32, i8 = OnnxLite0.load(cache, precision="fp32"), OnnxLite0.load(cache, precision="int8")
    assert (f32.precision, i8.precision) == ("fp32", "int8") and i8.model_path != f32.model_path
    a, b = f32.logits(crops), i8.logits(crops)
    assert np.abs(a - b).max() > 1e-3  # really another graph, not the float one again
    agree = (a.argmax(1) == b.argmax(1)).mean()
    pa, pb = softmax(a), softmax(b)
    cosine = (pa * pb).sum(1) / np.linalg.norm(pa, axis=1) / np.linalg.norm(pb, axis=1)
    # measured: 0.93-0.96 top-1 agreement, cosine 0.995 mean; a wrong calibration gives far less
    assert agree >= 0.85, agree
    assert cosine.mean() >= 0.98 and cosine.min() >= 0.9, (cosine.mean(), cosine.min())


def test_the_calibration_set_shows_none_of_the_sample_footage(crops):
    images = lite_int8.calibration_images()
    assert len(images) >= lite_int8.MIN_IMAGES
    footage = {load_photo(name).tobytes() for name in PHOTOS}
    assert not any(np.ascontiguousarray(img).tobytes() in footage for img in images)
    a, b = lite_int8.calibration_crops(), lite_int8.calibration_crops()
    assert a.shape[1:] == (224, 224, 3) and np.array_equal(a, b)  # seeded: the same graph every time


def test_int8_graph_is_cached_and_a_broken_one_is_made_again(cache, crops, tmp_path, caplog):
    import shutil
    i8 = OnnxLite0.load(cache, precision="int8")
    meta = json.loads(i8.model_path.with_name(i8.model_path.name + ".json").read_text())
    assert meta["recipe"] == lite_int8.QUANT_RECIPE and meta["sha256"] == file_sha256(i8.model_path)
    before = i8.model_path.stat().st_mtime_ns
    assert OnnxLite0.load(cache, precision="int8").model_path.stat().st_mtime_ns == before  # reused
    shutil.copytree(cache, tmp_path / "c")
    broken = tmp_path / "c" / i8.model_path.name
    broken.write_bytes(broken.read_bytes()[:5000])
    with caplog.at_level(logging.WARNING, logger="encoders.onnx_lite"):
        again = OnnxLite0.load(tmp_path / "c", precision="int8")
    assert "fails its checksum" in caplog.text and verified(broken) and again.precision == "int8"
    np.testing.assert_allclose(again.logits(crops[:4]), i8.logits(crops[:4]), atol=1e-5)


class CountingLite0(OnnxLite0):
    """OnnxLite0 that notes the precision of every session it builds."""
    made: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        CountingLite0.made.append(self.precision)


def test_a_cached_int8_graph_loads_without_the_float_one_unless_they_disagree(cache, tmp_path):
    import shutil
    CountingLite0.made.clear()
    assert CountingLite0.load(cache, precision="int8").precision == "int8"
    assert CountingLite0.made == ["int8"]  # the float graph was checked, not loaded
    shutil.copytree(cache, tmp_path / "c")
    i8 = lite_int8.int8_path(next((tmp_path / "c").glob("lite-vision-*[0-9a-f].onnx")))
    sidecar = i8.with_name(i8.name + ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "float_sha256": "0" * 64}))
    CountingLite0.made.clear()
    assert CountingLite0.load(tmp_path / "c", precision="int8").precision == "int8"
    assert CountingLite0.made == ["fp32", "int8"]  # made from another float graph: the long way


def test_when_quantizing_fails_the_float_graph_runs_with_the_reason(cache, tmp_path, monkeypatch, caplog):
    import shutil
    shutil.copytree(cache, tmp_path / "c")
    for f in (tmp_path / "c").glob("*-int8r*"):
        f.unlink()
    monkeypatch.setattr(lite_int8, "calibration_images", lambda: [])  # as if no package ships photos
    with caplog.at_level(logging.WARNING, logger="encoders.onnx_lite"):
        encoder = load_lite_vision(tmp_path / "c", precision="int8")
    assert isinstance(encoder, OnnxLite0) and encoder.precision == "fp32"
    assert encoder.variant.startswith("fp32, onnxruntime ")  # what the space's summary says
    assert "int8 failed" in caplog.text and "calibration images" in caplog.text
    assert not list((tmp_path / "c").glob("*-int8r*"))


def test_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ValueError, match="known: int8, fp32"):
        OnnxLite0.load(tmp_path, precision="int4")


def test_share_cores_sizes_the_session_and_keeps_the_vectors(cache, crops):
    from encoders.device import available_cores
    from encoders.registry import get_space_config, load_space
    space = load_space("lite", cache_dir=cache)
    assert not space._visions
    asked = space.identity
    space.share_cores(1)
    space.prepare()  # loads the sessions before any batch: on the cores left, and on every core
    assert sorted(space._visions) == sorted({max(1, available_cores() - 1), available_cores()})
    import onnxruntime
    ran = space.identity  # one variant for every session, whatever its threads
    assert ran.summary.endswith(f"[int8, onnxruntime {onnxruntime.__version__}]")
    assert ran.fingerprint == asked.fingerprint
    space.share_cores(0)
    snippets = crops[:16].reshape(2, 8, 224, 224, 3)
    before = space.encode_snippets(snippets)
    space.share_cores(1)
    one = space.vision
    assert one.threads == max(1, available_cores() - 1)
    # identical bytes on any number of cores: the runner may switch between batches
    np.testing.assert_array_equal(space.encode_snippets(snippets), before)
    space.share_cores(0)
    assert space.vision.threads == available_cores()
    space.share_cores(1)
    assert space.vision is one  # kept, not rebuilt
    cfg = get_space_config("lite")
    fixed = load_space(type(cfg)(**{**cfg.__dict__, "vision": {**cfg.vision, "threads": 3}}), cache_dir=cache)
    fixed.share_cores(1)
    assert fixed.vision.threads == 3  # the config's count wins


def test_quieting_the_quantizer_silences_no_other_thread_nor_logger(caplog):
    """While one thread quantizes, its own warnings on the root logger (the quantizer's) are
    dropped; another thread's warnings, and any named logger's, still come through, and two
    quantizations overlapping leave the root logger as they found it."""
    import logging
    import threading
    caplog.set_level(logging.WARNING)
    level = logging.getLogger().level
    inside, done = threading.Event(), threading.Event()

    def quantizing():
        with lite_int8._quiet_root_logger():
            logging.warning("quantizer: left uint8 input alone")
            inside.set()
            done.wait(30)

    worker = threading.Thread(target=quantizing)
    worker.start()
    assert inside.wait(30)
    logging.getLogger("storage.index_store").warning("warned while another thread quantizes")
    with lite_int8._quiet_root_logger():  # a second quantization, overlapping the first
        done.set()
        worker.join(30)
    logging.getLogger("storage.index_store").warning("index rebuilt")
    logging.warning("a root warning of this thread")
    heard = [r.getMessage() for r in caplog.records]
    assert "warned while another thread quantizes" in heard, heard
    assert "index rebuilt" in heard and "a root warning of this thread" in heard, heard
    assert "quantizer: left uint8 input alone" not in heard, heard
    assert logging.getLogger().level == level and not logging.getLogger().filters
