"""ANN benchmark: vidsonar's index against exact search and the tools users pick instead.

Every system sees the same base vectors and queries in one run. Per system and setting:
build time, RAM and disk bytes per vector, recall@1 and recall@10 against exact search,
queries/s over one batch of all queries, and p50/p99 latency of one query at a time.
Results go to ``benchmarks/results/ann_<dataset>_<n>.csv`` plus a recall-vs-QPS Pareto
plot (PNG); ``vidsonar bench ann`` runs it. Timings are figures, never test assertions.

Datasets: ``synthetic`` (benchmarks.synthetic, 1024-d, clustered, low intrinsic dimension)
and ``text`` (e5-small embeddings of standard-library sentences, benchmarks.realtext).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks import ann_systems as S
from storage.recall import recall_at_k

RESULTS = Path(__file__).resolve().parent / "results"
SINGLE_BUDGET_S = 15.0  # per setting, for the one-query-at-a-time loop
SYSTEMS = ("faiss-flat", "vidsonar", "faiss-refine", "faiss-hnsw32", "hnswlib", "lancedb", "milvus-lite")


@dataclass
class Row:
    dataset: str
    n: int
    dim: int
    system: str
    setting: str
    build_s: float
    ram_bytes_per_vector: float
    disk_bytes_per_vector: float
    recall_at_1: float
    recall_at_10: float
    qps: float
    p50_ms: float
    p99_ms: float
    queries: int


def cache_dir() -> Path:
    return Path(os.environ.get("VIDSONAR_CACHE", Path.home() / ".cache" / "vidsonar")) / "bench"


def load_dataset(name: str, n: int, nq: int, dim: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    if name == "text":
        from benchmarks.realtext import e5_embeddings
        return e5_embeddings(n, nq, cache_dir())
    if name != "synthetic":
        raise ValueError(f"unknown dataset {name!r}: use synthetic or text")
    from benchmarks.synthetic import Generator
    gen = Generator(dim=dim)
    path = cache_dir() / f"synthetic-{dim}-{n}-seed{gen.seed}.f32"
    if not path.exists() or path.stat().st_size != 4 * n * dim:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        gen.sample(n, stream=0, out=np.memmap(tmp, np.float32, "w+", shape=(n, dim))).flush()
        tmp.replace(path)
    return np.memmap(path, np.float32, "r", shape=(n, dim)), gen.sample(nq, stream=1)


def measure(search: S.SearchFn, queries: np.ndarray, truth: np.ndarray, k: int,
            batched: bool = True, batch_qps: float | None = None) -> dict:
    """Recall, batched QPS and single-query latencies of one operating point."""
    singles: list[float] = []
    results = []
    spent = 0.0
    for q in queries:  # one query at a time, within a time budget
        t = time.perf_counter()
        results.append(search(q[None, :], k)[0])
        singles.append(time.perf_counter() - t)
        spent += singles[-1]
        if spent > SINGLE_BUDGET_S and len(singles) >= 10:
            break
    if batch_qps is not None:  # the batch already ran (exact search made the truth)
        found, qps = truth, batch_qps
    elif batched:
        t = time.perf_counter()
        found = search(queries, k)
        qps = len(queries) / (time.perf_counter() - t)
    else:  # no batch API: queries/s of the loop
        found, qps = np.stack(results), len(results) / sum(singles)
    truth = truth[:len(found)]
    ms = np.array(singles) * 1000
    return {"recall_at_1": recall_at_k(found, truth, 1), "recall_at_10": recall_at_k(found, truth, min(10, k)),
            "qps": qps, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "queries": len(found)}


def run(dataset: str = "synthetic", n: int = 1_000_000, nq: int = 1000, k: int = 10,
        systems: tuple[str, ...] = SYSTEMS, hnsw_max: int = 1_000_000, workdir: Path | None = None,
        log=print, dim: int = 1024,
        milvus_kinds: tuple[str, ...] = ("FLAT", "IVF_SQ8", "HNSW")) -> tuple[list[Row], dict]:
    base, queries = load_dataset(dataset, n, nq, dim)
    n, dim = base.shape
    workdir = Path(workdir or cache_dir() / "work")
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    notes: dict[str, str] = {}
    truth = None
    vidsonar = None
    nprobes, efs = (4, 8, 16, 32), (16, 32, 64, 128)
    for name in ("faiss-flat", *[s for s in SYSTEMS if s != "faiss-flat"]):
        if name not in systems and not (name == "faiss-flat" and truth is None):
            continue
        if name in ("faiss-hnsw32", "hnswlib") and n > hnsw_max:
            notes[name] = (f"skipped: n={n} > --hnsw-max {hnsw_max} (HNSW holds every float "
                           "vector plus its graph in RAM, 4.3 KiB per 1024-d vector)")
            log(f"{name}: {notes[name]}")
            continue
        if name == "faiss-refine" and vidsonar is None:
            continue
        system = {
            "faiss-flat": lambda: S.Flat(workdir),
            "vidsonar": lambda: S.Vidsonar(workdir, nprobes, (5, 10, 40)),
            "faiss-refine": lambda: S.FaissRefine(workdir, vidsonar, (16, 32)),
            "faiss-hnsw32": lambda: S.FaissHNSW(workdir, efs),
            "hnswlib": lambda: S.Hnswlib(workdir, efs),
            "lancedb": lambda: S.Lance(workdir, (8, 16, 32), vidsonar.choice.nlist if vidsonar else 256,
                                       vidsonar.choice.bytes_per_vector - 16 if vidsonar else dim // 16,
                                       vidsonar.choice.k_factor if vidsonar else 20),
            "milvus-lite": lambda: S.MilvusLite(workdir, milvus_kinds),
        }[name]()
        log(f"{name}: building on {n} x {dim}")
        started = time.perf_counter()
        try:
            system.build(base)
        except ImportError as exc:
            notes[name] = f"skipped: {exc}"
            log(f"{name}: {notes[name]}")
            continue
        build_s = time.perf_counter() - started
        log(f"{name}: built in {build_s:.1f} s")
        for setting, search in system.settings():
            if name == "faiss-flat" and truth is None:
                truth, flat_qps = _exact(search, queries, k, cache_dir() / f"truth-{dataset}-{n}-{nq}-{k}.npz")
            m = measure(search, queries, truth, k, batched=name not in ("lancedb", "milvus-lite"),
                        batch_qps=flat_qps if name == "faiss-flat" else None)
            rows.append(Row(dataset, n, dim, name, setting, round(build_s, 2),
                            round(system.ram_bytes / n, 1), round(system.disk_bytes / n, 1),
                            round(m["recall_at_1"], 4), round(m["recall_at_10"], 4),
                            round(m["qps"], 1), round(m["p50_ms"], 3), round(m["p99_ms"], 3),
                            m["queries"]))
            log(f"  {setting}: recall@10 {m['recall_at_10']:.3f}  {m['qps']:.0f} q/s  "
                f"p50 {m['p50_ms']:.2f} ms  p99 {m['p99_ms']:.2f} ms")
        if name == "vidsonar":
            vidsonar = system
        elif name != "faiss-refine":
            system.close()
        # the last search closure holds its system: drop both, or one HNSW graph (4 GB at
        # 1M x 1024) outlives its turn
        search = system = None
        gc.collect()
    if vidsonar is not None:
        vidsonar.close()
    meta = {"dataset": dataset, "n": n, "dim": dim, "queries": nq, "k": k,
            "hardware": hardware(), "notes": notes}
    return rows, meta


def _exact(search: S.SearchFn, queries: np.ndarray, k: int, path: Path) -> tuple[np.ndarray, float]:
    """Exact neighbours and the batched QPS that found them, cached: at 1M they take minutes."""
    if path.exists():
        data = np.load(path)
        if data["truth"].shape == (len(queries), k):
            return data["truth"], float(data["qps"])
    t = time.perf_counter()
    truth = search(queries, k)
    qps = len(queries) / (time.perf_counter() - t)
    np.savez(path, truth=truth, qps=qps)
    return truth, qps


def hardware() -> dict:
    import faiss

    from benchmarks.machine import cpu_model
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "ram_gib": round(mem, 1), "gpu": "none", "load_average": os.getloadavg(),
            "faiss": faiss.__version__, "python": platform.python_version()}


def to_json(rows: list[Row], meta: dict) -> dict:
    results: dict[str, dict] = {}
    for r in rows:
        results.setdefault(r.system, {})[r.setting] = {
            "recall_at_10": r.recall_at_10, "recall_at_1": r.recall_at_1, "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms, "qps": r.qps, "bytes_per_vector": r.ram_bytes_per_vector,
            "disk_bytes_per_vector": r.disk_bytes_per_vector, "build_s": r.build_s}
    return {**meta, "results": results}


def save(rows: list[Row], meta: dict, out: Path = RESULTS) -> tuple[Path, Path]:
    import csv
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"ann_{meta['dataset']}_{meta['n']}"
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    stem.with_suffix(".json").write_text(json.dumps(to_json(rows, meta), indent=1))
    plot(rows, meta, stem.with_suffix(".png"))
    return stem.with_suffix(".csv"), stem.with_suffix(".png")


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both recall and QPS, by recall."""
    front, best_qps = [], -1.0
    for rec, qps in sorted(points, key=lambda p: (-p[0], -p[1])):
        if qps > best_qps:
            front.append((rec, qps))
            best_qps = qps
    return sorted(front)


def plot(rows: list[Row], meta: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for system in dict.fromkeys(r.system for r in rows):
        groups = {"": [r for r in rows if r.system == system]}
        if system == "vidsonar":
            groups = {" (PQ only)": [r for r in groups[""] if "pq-only" in r.setting],
                      " (exact rerank)": [r for r in groups[""] if "rerank" in r.setting]}
        for suffix, mine in groups.items():
            pts = [(r.recall_at_10, r.qps) for r in mine]
            front = pareto(pts)
            line, = ax.plot([p[0] for p in front], [p[1] for p in front], "-o", ms=4,
                            label=f"{system}{suffix}")
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, color=line.get_color(), alpha=0.4)
    hw = meta["hardware"]
    ax.set(xlabel="recall@10 vs exact", ylabel="queries/s (batched, log)", yscale="log",
           title=f"{meta['dataset']} {meta['n']:,} x {meta['dim']}-d; {hw['cores']} cores "
                 f"{hw['cpu'][:40]}, no GPU")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
