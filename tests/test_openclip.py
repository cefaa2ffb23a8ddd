"""open_clip backbones and the dual-encoder baseline spaces, on a tiny random ViT config."""

from __future__ import annotations

import os

import numpy as np
import pytest

from encoders.openclip import OpenClipBackbone, resolve
from encoders.registry import load_space
from vidsonar.errors import WeightSourceError


@pytest.fixture(scope="module")
def backbone():
    return OpenClipBackbone("tiny-vit-test", None)


def test_per_frame_features(backbone):
    frames = np.random.default_rng(0).integers(0, 255, (5, 40, 60, 3), dtype=np.uint8)
    feats = backbone.features(frames)
    assert feats.shape == (5, backbone.feature_dim) and feats.dtype == np.float32
    assert backbone.crops(frames).shape == (5, 32, 32, 3)
    assert backbone.features(frames[0]).shape == (1, backbone.feature_dim)  # an image: one frame


def test_weight_source_mapping(tmp_path):
    assert resolve("PE-Core-B-16", "hf-hub:timm/PE-Core-B-16") == ("hf-hub:timm/PE-Core-B-16", None)
    assert resolve("PE-Core-B-16", f"local-dir:{tmp_path}") == (f"local-dir:{tmp_path}", None)
    (tmp_path / "w.bin").write_bytes(b"")
    assert resolve("ViT-B-32", f"file:{tmp_path / 'w.bin'}") == ("ViT-B-32", str(tmp_path / "w.bin"))
    assert resolve("ViT-B-32", "openai") == ("ViT-B-32", "openai")
    assert resolve("tiny-vit-test", None) == ("tiny-vit-test", None)
    with pytest.raises(WeightSourceError):
        resolve("ViT-B-32", "file:/nonexistent/w.bin")


def test_unknown_architecture():
    with pytest.raises(WeightSourceError, match="unknown open_clip architecture"):
        OpenClipBackbone("No-Such-ViT", None)


def test_dual_space(backbone):
    space = load_space("dual-test")
    snippets = np.random.default_rng(1).integers(0, 255, (2, 3, 40, 50, 3), dtype=np.uint8)
    v = space.encode_snippets(snippets)
    q = space.encode_query(["a cat", "un chat"], None)
    assert v.shape == (2, 32) and q.shape == (2, 32)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert space.encode_images([snippets[0, 0]]).shape == (1, 32)


@pytest.mark.slow
def test_pe_core_architecture_builds_offline():
    """The real PE-Core-T architecture (timm), random weights: the path a hub download takes."""
    b = OpenClipBackbone("PE-Core-T-16-384", None)
    assert b.image_size == 384 and b.feature_dim == 512


@pytest.mark.skipif(not os.environ.get("VIDSONAR_REAL_PE"),
                    reason="needs Perception Encoder weights (hf-hub:timm/PE-Core-B-16, Apache-2.0); "
                           "set VIDSONAR_REAL_PE=1 where the Hub is reachable or cached")
def test_real_pe_core():
    b = OpenClipBackbone("PE-Core-B-16", "hf-hub:timm/PE-Core-B-16")
    assert b.features(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 1024)
