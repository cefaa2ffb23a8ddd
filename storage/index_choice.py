"""Which FAISS index to build: a pure function of the collection and the machine.

Exact search (Flat) is best while it is fast enough: below ``FLAT_MAX`` vectors a brute-force
scan of 1024-d float32 vectors takes a few milliseconds on two cores and costs 4 KiB a
vector. Above it, IVF-PQ: ``nlist`` about 4 sqrt(n) (FAISS's guideline, a power of two for
balanced clusters), ``M`` bytes of PQ code per vector (d/16 sub-quantizers of 16 dims at 8
bits), shrunk until the codes fit the memory budget. ``np`` switches off the polysemous
training that ``index_factory`` otherwise runs. Recall lost to PQ is won back by an exact
rerank (see storage.vectors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAT_MAX = 100_000
MIN_TRAIN_PER_CENTROID = 39  # FAISS warns below this


@dataclass(frozen=True)
class IndexChoice:
    factory: str
    params: str
    needs_training: bool
    bytes_per_vector: int
    reason: str


def choose_index(count: int, dim: int, memory_budget: int | None = None,
                 gpu: bool = False) -> IndexChoice:
    """Factory and search parameters for ``count`` vectors of ``dim`` within ``memory_budget`` bytes."""
    if count < 0 or dim <= 0:
        raise ValueError(f"need count >= 0 and dim > 0, got count={count}, dim={dim}")
    flat_bytes = 4 * dim
    fits_flat = memory_budget is None or count * flat_bytes <= memory_budget
    if count <= FLAT_MAX and fits_flat:
        return IndexChoice("IDMap2,Flat", "", False, flat_bytes + 8,
                           f"{count} vectors: exact search is fast enough")
    nlist = 2 ** round(math.log2(max(4 * math.sqrt(count), 1)))
    nlist = max(64, min(nlist, count // MIN_TRAIN_PER_CENTROID or 64, 65536))
    nlist = 2 ** int(math.log2(nlist))
    m = _pq_m(dim, count, memory_budget, gpu)
    nprobe = max(8, min(nlist // 16, 256 if not gpu else 2048))
    return IndexChoice(f"IVF{nlist},PQ{m}np", f"nprobe={nprobe}", True, m + 8,
                       f"{count} vectors: IVF{nlist} coarse quantizer, {m}-byte PQ codes")


def _pq_m(dim: int, count: int, memory_budget: int | None, gpu: bool) -> int:
    """Largest M dividing ``dim`` with M <= dim/16 (and GPU-supported) whose codes fit the budget."""
    gpu_ok = {1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96}
    candidates = [m for m in range(max(dim // 16, 1), 0, -1) if dim % m == 0]
    if gpu:
        candidates = [m for m in candidates if m in gpu_ok] or [1]
    for m in candidates:
        if memory_budget is None or count * (m + 8) <= memory_budget:
            return m
    return candidates[-1]
