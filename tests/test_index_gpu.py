"""GPU limits are checked before placing, so they are tested here without a GPU."""

from __future__ import annotations

import faiss
import pytest

from storage.gpu import GPU_MAX_K, GPU_MAX_NPROBE, gpu_count, nprobe_of, place, plan_gpu


def test_pq64_at_1024_needs_float16_lookup_tables():
    plan = plan_gpu("IVF1024,PQ64np", 1024, k=100, nprobe=32)
    assert plan.ok and plan.float16_lookup


def test_pq48_fits_in_float32():
    plan = plan_gpu("IVF1024,PQ48np", 768, k=10, nprobe=16)
    assert plan.ok and not plan.float16_lookup


@pytest.mark.parametrize("factory,dim,fragment", [
    ("IVF1024,PQ36np", 1152, "code sizes"),
    ("IVF1024,PQ128np", 1024, "shared memory"),
    ("IVF1024,PQ64x4np", 1024, "8 bits"),
    ("HNSW32,Flat", 1024, "HNSW"),
    ("IVF65536_HNSW32,PQ64np", 1024, "HNSW"),
    ("IVF1024,PQ64np,Refine(SQfp16)", 1024, "refine"),
    ("IDMap2,Flat", 1024, "stay on CPU"),
])
def test_unsupported_indexes_are_refused_with_a_reason(factory, dim, fragment):
    plan = plan_gpu(factory, dim, k=10)
    assert not plan.ok
    assert any(fragment in r for r in plan.reasons), plan.reasons


def test_k_and_nprobe_limits():
    assert plan_gpu("IVF1024,PQ64np", 1024, k=GPU_MAX_K, nprobe=GPU_MAX_NPROBE).ok
    assert not plan_gpu("IVF1024,PQ64np", 1024, k=GPU_MAX_K + 1).ok
    assert not plan_gpu("IVF1024,PQ64np", 1024, k=10, nprobe=GPU_MAX_NPROBE + 1).ok


def test_nprobe_parsing():
    assert nprobe_of("nprobe=64,quantizer_efSearch=128") == 64
    assert nprobe_of("quantizer_efSearch=128") == 0


def test_without_gpus_placement_is_the_identity():
    index = faiss.IndexFlatIP(8)
    assert place(index, "IVF1024,PQ64np", 1024, ngpu=0) == (index, "cpu")


def test_a_refused_plan_stays_on_cpu_even_with_gpus(caplog):
    index = faiss.IndexFlatIP(8)
    placed, where = place(index, "HNSW32,Flat", 1024, ngpu=4)  # never reaches the GPU API
    assert placed is index and where == "cpu"
    assert "keeping HNSW32,Flat on CPU" in caplog.text


@pytest.mark.gpu
@pytest.mark.skipif(gpu_count() == 0, reason="faiss sees no GPU (faiss-cpu or no CUDA device)")
def test_placement_on_real_gpus_matches_cpu():
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 1024)).astype("float32")
    index = faiss.index_factory(1024, "IVF256,PQ64np", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    placed, where = place(index, "IVF256,PQ64np", 1024, params="nprobe=16")
    assert where.startswith("gpu")
    index.nprobe = 16
    _, cpu = index.search(x[:50], 10)
    _, gpu = placed.search(x[:50], 10)
    assert (cpu[:, 0] == gpu[:, 0]).mean() > 0.9
