"""Which FAISS index to build: a pure function of the collection and the machine.

Exact search (Flat) is best while it is fast enough: below ``FLAT_MAX`` vectors a brute-force
scan of 1024-d float32 vectors takes a few milliseconds on two cores and costs 4 KiB a
vector. Above it, IVF-PQ with an exact rerank:

- ``nlist`` about sqrt(n), a power of two, at least 39 training points per centroid. FAISS
  suggests 4-16 sqrt(n) for speed at query time, but training and assigning cost
  nlist x n x d: at 1M x 1024 on two cores, 4096 lists take tens of minutes to build where
  1024 take a few, and with the rerank a query still scans only ~30k codes (about a ms).
  From ``HNSW_QUANTIZER_MIN`` lists on (n in the hundreds of millions), the coarse
  quantizer is an HNSW graph (``IVF16384_HNSW32``): a flat scan of the centroids would then
  cost more than the lists.
- ``M`` bytes of PQ code per vector (d/16 sub-quantizers of 16 dims at 8 bits), shrunk until
  codes plus the 8-byte id fit the memory budget; on a GPU only code sizes it supports.
- ``np`` switches off the polysemous training that ``index_factory`` otherwise runs.
- PQ alone ranks poorly (recall@10 0.36 on 1M clustered 1024-d vectors); the top
  ``k * k_factor`` candidates are reranked with the full float16 vectors, kept on disk
  (storage.full_vectors).

Why not HNSW as the main index, although it wins recall/QPS on CPU when memory is plentiful:
FAISS's HNSW cannot remove vectors (deleting a video would mean a rebuild), it holds the
float vectors in RAM (4 KiB + graph per 1024-d vector, 40x the IVF-PQ codes), and it has no
GPU path. The ANN benchmark (benchmarks/ann.py) keeps it as a baseline for that reason.
OPQ is left out of the default (``opq=True`` adds it): it cannot pay here. On 100k x 1024
clustered vectors, IVF1024,PQ64np with the rerank already has recall@10 0.99 (0.56 without),
while training OPQ64's 1024 x 1024 rotation had not finished after 15 minutes on two cores
(IVF-PQ trained in 90 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAT_MAX = 100_000
MIN_TRAIN_PER_CENTROID = 39  # FAISS warns below this
HNSW_QUANTIZER_MIN = 16_384  # nlist from which the coarse quantizer is an HNSW graph
OUTGROW_FACTOR = 10  # rebuild once the index holds 10x the vectors it was trained on
# rerank k * 20 PQ candidates with the exact vectors. Measured on 1M x 1024 clustered vectors
# (benchmarks/results/ann_synthetic_1000000.csv): PQ64 alone has recall@10 0.36 whatever
# nprobe; reranking x5 gives 0.75, x10 0.89, x20 0.96.
DEFAULT_K_FACTOR = 20
ID_BYTES = 8
GPU_PQ_M = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)  # faiss GPU IVFPQ code sizes


@dataclass(frozen=True)
class IndexChoice:
    factory: str
    params: str
    needs_training: bool
    bytes_per_vector: int  # in RAM: PQ codes + FAISS label + snippet id of the rerank row
    reason: str
    k_factor: int = 0  # rerank k * k_factor candidates exactly; 0: the index is exact already
    train_size: int = 0  # vectors to train on (a sample of the collection)

    @property
    def nlist(self) -> int:
        head = self.factory.split(",")[-2 if self.factory.startswith("OPQ") else 0]
        return int(head[3:].split("_")[0]) if head.startswith("IVF") else 0


def choose_index(count: int, dim: int, memory_budget: int | None = None,
                 gpu: bool = False, opq: bool = False) -> IndexChoice:
    """Factory and search parameters for ``count`` vectors of ``dim`` within ``memory_budget`` bytes."""
    if count < 0 or dim <= 0:
        raise ValueError(f"need count >= 0 and dim > 0, got count={count}, dim={dim}")
    flat_bytes = 4 * dim + ID_BYTES
    fits_flat = memory_budget is None or count * flat_bytes <= memory_budget
    if count <= FLAT_MAX and fits_flat:
        return IndexChoice("IDMap2,Flat", "", False, flat_bytes,
                           f"{count} vectors: exact search is fast enough")
    return ivf_pq_choice(count, dim, memory_budget, gpu, opq)


def ivf_pq_choice(count: int, dim: int, memory_budget: int | None = None,
                  gpu: bool = False, opq: bool = False) -> IndexChoice:
    """The IVF-PQ + rerank index for ``count`` vectors (what ``choose_index`` picks past Flat)."""
    nlist = _nlist(count)
    m = _pq_m(dim, count, memory_budget, gpu)
    quantizer = f"IVF{nlist}_HNSW32" if nlist >= HNSW_QUANTIZER_MIN and not gpu else f"IVF{nlist}"
    prefix = f"OPQ{m}," if opq else ""
    params = f"nprobe={_nprobe(nlist, gpu)}"
    if quantizer.endswith("_HNSW32"):
        params += ",quantizer_efSearch=128"
    budget_note = "" if m == _pq_m(dim, count, None, gpu) else f" (shrunk to fit {memory_budget} bytes)"
    return IndexChoice(f"{prefix}{quantizer},PQ{m}np", params, True, m + 2 * ID_BYTES,
                       f"{count} vectors: {quantizer} coarse quantizer, {m}-byte PQ codes"
                       f"{budget_note}, exact rerank of k x {DEFAULT_K_FACTOR}",
                       k_factor=DEFAULT_K_FACTOR,
                       train_size=min(count, max(nlist * MIN_TRAIN_PER_CENTROID * 2, 65_536)))


def _nlist(count: int) -> int:
    """sqrt(n) rounded to a power of two, capped so each centroid has its training points."""
    nlist = 2 ** round(math.log2(max(math.sqrt(count), 1)))
    nlist = min(nlist, max(count // MIN_TRAIN_PER_CENTROID, 1), 65_536)
    return max(2 ** int(math.log2(max(nlist, 1))), 64)


def _nprobe(nlist: int, gpu: bool) -> int:
    """About 1/32 of the lists, at least 16 (see benchmarks/results/ann*.csv for the curve)."""
    return max(16, min(nlist // 32, 2048 if gpu else 512))


def _pq_m(dim: int, count: int, memory_budget: int | None, gpu: bool) -> int:
    """Largest M dividing ``dim`` with M <= dim/16 (and GPU-supported) whose codes fit the budget."""
    candidates = [m for m in range(max(dim // 16, 1), 0, -1) if dim % m == 0]
    if gpu:
        candidates = [m for m in candidates if m in GPU_PQ_M] or [1]
    for m in candidates:
        if memory_budget is None or count * (m + 2 * ID_BYTES) <= memory_budget:
            return m
    return candidates[-1]


def outgrown(factory: str, count: int, built_count: int, dim: int,
             memory_budget: int | None = None, gpu: bool = False) -> str | None:
    """Why an index built as ``factory`` should be rebuilt for ``count`` vectors, else None.

    A Flat index is outgrown when the collection passes ``FLAT_MAX``; a trained index when it
    holds ``OUTGROW_FACTOR`` times the ``built_count`` vectors it was built (and trained) for:
    its centroids then describe a tenth of the data, its lists grow long and unbalanced.
    """
    wanted = choose_index(count, dim, memory_budget, gpu)
    if factory == "IDMap2,Flat":
        return None if wanted.factory == factory else f"{count} vectors: time for {wanted.factory}"
    if count > OUTGROW_FACTOR * max(built_count, 1):
        return (f"{count} vectors is more than {OUTGROW_FACTOR}x the {built_count} the index "
                f"was built for")
    return None  # includes shrinking below FLAT_MAX: a trained index still serves it well
