"""GPU placement: the index is built on CPU and, where FAISS sees GPUs, copied onto them.

One code path for one GPU or many (``index_cpu_to_all_gpus`` shards the lists over several).
The GPU kernels have hard limits, so a plan is checked before placing, as a pure function
that runs (and is tested) without a GPU:

- IVF-PQ codes of M bytes only for M in ``GPU_PQ_M`` and 8 bits per code;
- the M x 256 lookup table must fit one block's 48 KiB of shared memory: in float32 that is
  M <= 48, so M = 56, 64 or 96 (PQ64 at d=1024, our default) needs float16 lookup tables;
- k and nprobe at most 2048 (the GPU's k-selection limit);
- HNSW and refine indexes have no GPU implementation: they stay on CPU.

A plan that breaks a limit comes back with ``ok=False`` and reasons; ``place`` then keeps the
index on CPU and logs why, rather than failing inside FAISS.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from storage.index_choice import GPU_PQ_M

log = logging.getLogger(__name__)

GPU_MAX_K = 2048
GPU_MAX_NPROBE = 2048
SHARED_MEMORY_BYTES = 48 * 1024


@dataclass(frozen=True)
class GpuPlan:
    ok: bool
    float16_lookup: bool = False
    reasons: tuple[str, ...] = field(default_factory=tuple)


def gpu_count() -> int:
    """GPUs FAISS can use: 0 with faiss-cpu."""
    try:
        import faiss
    except ImportError:
        return 0
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def plan_gpu(factory: str, dim: int, k: int, nprobe: int = 0) -> GpuPlan:
    """Check an index and search settings against the GPU's limits (no GPU needed)."""
    reasons: list[str] = []
    if k > GPU_MAX_K:
        reasons.append(f"k={k} is above the GPU limit of {GPU_MAX_K}")
    if nprobe > GPU_MAX_NPROBE:
        reasons.append(f"nprobe={nprobe} is above the GPU limit of {GPU_MAX_NPROBE}")
    parts = factory.split(",")
    if "IDMap" in factory:
        reasons.append(f"{factory!r}: small exact indexes stay on CPU (a scan takes milliseconds)")
    if any(p.startswith(("HNSW", "Refine", "RFlat")) for p in parts) or "_HNSW" in factory:
        reasons.append(f"{factory!r} has an HNSW or refine part, which FAISS cannot run on GPU")
    float16 = False
    pq = next((re.fullmatch(r"PQ(\d+)(?:x(\d+))?(np)?", p) for p in parts
               if re.fullmatch(r"PQ(\d+)(?:x(\d+))?(np)?", p)), None)
    if pq is not None:
        m, nbits = int(pq.group(1)), int(pq.group(2) or 8)
        if m not in GPU_PQ_M:
            reasons.append(f"PQ{m}: the GPU supports PQ code sizes {', '.join(map(str, GPU_PQ_M))}")
        if nbits != 8:
            reasons.append(f"PQ{m}x{nbits}: the GPU needs 8 bits per code")
        if dim % m:
            reasons.append(f"PQ{m} does not divide d={dim}")
        lookup = m * 2 ** nbits
        if 4 * lookup > SHARED_MEMORY_BYTES:
            float16 = True
            if 2 * lookup > SHARED_MEMORY_BYTES:
                reasons.append(f"PQ{m} lookup tables need {2 * lookup} bytes of shared memory "
                               f"even in float16; the GPU has {SHARED_MEMORY_BYTES}")
    return GpuPlan(not reasons, float16, tuple(reasons))


def nprobe_of(params: str) -> int:
    found = re.search(r"(?:^|,)nprobe=(\d+)", params)
    return int(found.group(1)) if found else 0


def place(index, factory: str, dim: int, k: int = 100, params: str = "", ngpu: int | None = None):
    """``index`` on every GPU (sharded) when there are GPUs and the plan allows; else ``index``.

    Returns (index, where) with where "cpu" or "gpu:N"; the reason for staying on CPU is logged.
    """
    ngpu = gpu_count() if ngpu is None else ngpu
    if ngpu <= 0:
        return index, "cpu"
    plan = plan_gpu(factory, dim, k, nprobe_of(params))
    if not plan.ok:
        log.warning("keeping %s on CPU: %s", factory, "; ".join(plan.reasons))
        return index, "cpu"
    import faiss
    options = faiss.GpuMultipleClonerOptions()
    options.useFloat16 = plan.float16_lookup  # IVFPQ: float16 lookup tables
    options.shard = ngpu > 1
    placed = faiss.index_cpu_to_all_gpus(index, co=options, ngpu=ngpu)
    if params:
        faiss.GpuParameterSpace().set_index_parameters(placed, params)
    return placed, f"gpu:{ngpu}"
