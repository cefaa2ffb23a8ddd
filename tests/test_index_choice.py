"""The index-choice function: pure, so every branch is checked without building anything."""

from __future__ import annotations

import faiss
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.gpu import plan_gpu
from storage.index_choice import (FLAT_MAX, HNSW_QUANTIZER_MIN, OUTGROW_FACTOR, choose_index,
                                  ivf_pq_choice, outgrown)


def test_small_collections_get_exact_search():
    for count in (0, 1, FLAT_MAX):
        choice = choose_index(count, 1024)
        assert choice.factory == "IDMap2,Flat"
        assert not choice.needs_training and choice.k_factor == 0


def test_large_collections_get_ivf_pq_without_polysemous_training_and_a_rerank():
    choice = choose_index(1_000_000, 1024)
    assert choice.factory == "IVF1024,PQ64np"
    assert choice.params == "nprobe=32"
    assert choice.needs_training and choice.k_factor >= 5
    assert choice.bytes_per_vector <= 100  # the RAM target at 1M x 1024
    assert choice.train_size < 1_000_000


def test_flat_that_does_not_fit_the_budget_becomes_ivf_pq():
    choice = choose_index(50_000, 1024, memory_budget=10 * 2**20)
    assert choice.factory.startswith("IVF")


def test_memory_budget_shrinks_the_codes():
    roomy = choose_index(1_000_000, 1024)
    tight = choose_index(1_000_000, 1024, memory_budget=40_000_000)
    assert tight.bytes_per_vector < roomy.bytes_per_vector
    assert 1_000_000 * tight.bytes_per_vector <= 40_000_000
    assert "shrunk" in tight.reason


def test_huge_collections_get_an_hnsw_coarse_quantizer_except_on_gpu():
    count = HNSW_QUANTIZER_MIN**2
    assert "_HNSW32" in choose_index(count, 1024).factory
    assert "quantizer_efSearch" in choose_index(count, 1024).params
    assert "_HNSW" not in choose_index(count, 1024, gpu=True).factory


def test_opq_on_request():
    assert choose_index(1_000_000, 1024, opq=True).factory.startswith("OPQ64,IVF1024")
    assert ivf_pq_choice(1_000_000, 1024, opq=True).nlist == 1024


def test_ivf_pq_choice_below_flat_max_is_available_for_benchmarks():
    assert ivf_pq_choice(20_000, 384).factory.startswith("IVF")


@pytest.mark.parametrize("count,dim", [(-1, 8), (10, 0)])
def test_rejects_nonsense(count, dim):
    with pytest.raises(ValueError):
        choose_index(count, dim)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(FLAT_MAX + 1, 10**9), dim=st.sampled_from([64, 96, 128, 384, 512, 768, 1000, 1024]),
       gpu=st.booleans())
def test_every_choice_is_a_valid_faiss_factory_and_fits_the_gpu_when_asked(count, dim, gpu):
    choice = choose_index(count, dim, gpu=gpu)
    assert choice.nlist & (choice.nlist - 1) == 0  # power of two
    assert choice.nlist * 39 <= max(count, 64 * 39)
    index = faiss.index_factory(dim, choice.factory, faiss.METRIC_INNER_PRODUCT)
    assert index.d == dim
    if gpu:
        plan = plan_gpu(choice.factory, dim, k=100 * choice.k_factor,
                        nprobe=int(choice.params.split("nprobe=")[1].split(",")[0]))
        assert plan.ok, plan.reasons


def test_outgrown():
    assert outgrown("IDMap2,Flat", FLAT_MAX, 0, 1024) is None
    assert "IVF" in outgrown("IDMap2,Flat", FLAT_MAX + 1, 0, 1024)
    assert outgrown("IVF1024,PQ64np", 5_000_000, 1_000_000, 1024) is None
    reason = outgrown("IVF1024,PQ64np", OUTGROW_FACTOR * 1_000_000 + 1, 1_000_000, 1024)
    assert reason and f"{OUTGROW_FACTOR}x" in reason
    assert outgrown("IVF256,PQ64np", 50_000, 200_000, 1024) is None  # shrank: keep serving
