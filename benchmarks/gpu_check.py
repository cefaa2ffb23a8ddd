"""One GPU check, ready for when a GPU is lent: what vidsonar's GPU path gives, in one JSON.

    python -m benchmarks.gpu_check [--quick] [--budget-s 300] [--out benchmarks/results/gpu_check.json]
    vidsonar bench gpu [--quick]

Parts, each measured if it can be and otherwise listed under ``skipped`` with the reason:

- ``exact_topk``: brute-force top-10 in torch over 1M-10M x 1024 float16 vectors (on CPU: 20k
  float32) at query batches of 1, 64 and 1024: the memory-bandwidth (and, batched, tensor-core)
  limit that any GPU index is held against;
- ``faiss_ivfpq``: faiss IVF-PQ on the GPU at 1M x 1024 (IVF1024,PQ64 with float16 lookup
  tables, as ``storage/gpu.py`` places it): build time, batched q/s, recall@10 against exact
  float32 search, PQ alone and after the float16 exact rerank of the best k x 20 (vidsonar's
  rerank, run on the GPU here). Needs faiss with GPU support; without it the same code runs on
  CPU at a small size so the figures' shape is checked;
- ``encoders``: frames/s of PE-Core-L-14-336 and PE-Core-bigG-14-448 at bf16 through vidsonar's
  own feeding (``encoders.gpu_feed``: uint8 over pinned memory, autocast), random weights (a
  forward pass costs the same); open_clip if importable, else timm's ``vit_pe_core_*``;
- ``ingest``: x real time on the shipped sample footage (repeated) with PE-Core-L: decoder
  threads (PyAV) feeding batches that span videos to the encoder; catalog writes excluded.

It runs on a bare GPU machine where only torch, timm and numpy exist: faiss, open_clip and av
are imported guardedly. To measure more there, carry pure-Python wheels (open_clip_torch, ftfy,
wcwidth) and av's manylinux wheel and install them with ``pip install --no-deps --target``.
The faiss-gpu-cu12 wheel cannot run there: it links CUDA 12 (libcudart.so.12, libcublas.so.12,
~600 MB of wheels) and that machine's torch ships CUDA 13. Without a GPU it runs with the small
sizes (``--quick`` is implied) and says what it skipped. A time budget (default 5 minutes)
bounds the whole run: a part that would start past it is skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
PE_MODELS = {"PE-Core-L-14-336": "vit_pe_core_large_patch14_336",
             "PE-Core-bigG-14-448": "vit_pe_core_gigantic_patch14_448"}
QUICK_MODEL = "tiny-vit-test"  # the project's tiny open_clip config: the CPU run's stand-in
K = 10
FRAMES_PER_VIDEO_SECOND = 2  # 8 frames per 4 s snippet


class Skip(Exception):
    """A part (or piece of one) that cannot run here; the message says why."""


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def need(self, seconds: float, what: str) -> None:
        if self.left() < seconds:
            raise Skip(f"time budget: {self.left():.0f} s left, {what} needs about {seconds:.0f} s")


def sync(device) -> None:
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device, min_seconds: float = 1.0, max_repeats: int = 20) -> tuple[float, int]:
    """Mean seconds per call of ``fn`` after one warm-up, repeated until ``min_seconds``."""
    fn()
    sync(device)
    started, n = time.perf_counter(), 0
    while n < max_repeats and (n == 0 or time.perf_counter() - started < min_seconds):
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - started) / n, n


def _version(module: str, distribution: str | None = None) -> str | None:
    """A package's version. With ``distribution``, read from its installed metadata without
    importing it: importing open_clip pulls in torchvision and transformers (~7 s on 2 cores)
    for one string, and the encoders part reports for itself whether it could build a model."""
    if distribution is not None:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return version(distribution)
        except PackageNotFoundError:
            return None
    try:
        return __import__(module).__version__
    except Exception as exc:  # not installed, or broken (faiss-gpu without its CUDA libraries)
        return None if isinstance(exc, ImportError) and "No module" in str(exc) else f"unusable: {exc}"[:200]


def environment(device) -> dict:
    import torch
    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "device": str(device), "numpy": np.__version__, "cpu_cores": os.cpu_count(),
           "loadavg": [round(x, 2) for x in os.getloadavg()],
           "faiss": _version("faiss"), "open_clip": _version("open_clip", "open_clip_torch"),
           "timm": _version("timm", "timm"), "av": _version("av")}
    if str(device).startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   multiprocessors=props.multi_processor_count, bf16=torch.cuda.is_bf16_supported())
    return env


# --- exact top-k: the bandwidth limit ------------------------------------------------------------
def exact_topk(db, queries, k: int = K, chunk: int = 1 << 20):
    """Exact inner-product top-k of ``queries`` over ``db`` (both on one device), chunked by rows."""
    import torch
    best_s, best_i = None, None
    for start in range(0, db.shape[0], chunk):
        scores = queries @ db[start:start + chunk].T
        s, i = scores.topk(min(k, scores.shape[1]), dim=1)
        i = i + start
        if best_s is not None:
            s, pick = torch.cat([best_s, s], 1).topk(k, dim=1)
            i = torch.cat([best_i, i], 1).gather(1, pick)
        best_s, best_i = s, i
    return best_s, best_i


def random_unit(n: int, dim: int, dtype, device, seed: int = 0, block: int = 1 << 20):
    import torch
    gen = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty(n, dim, dtype=dtype, device=device)
    for start in range(0, n, block):
        x = torch.randn(min(block, n - start), dim, generator=gen, device=device)
        out[start:start + len(x)] = torch.nn.functional.normalize(x, dim=1).to(dtype)
    return out


def part_exact_topk(device, quick: bool, budget: Budget, dim: int = 1024) -> dict:
    import torch
    gpu = str(device).startswith("cuda")
    dtype = torch.float16 if gpu else torch.float32  # CPUs have no fast float16 matrix product
    sizes = [20_000] if quick or not gpu else [1_000_000, 2_000_000, 5_000_000, 10_000_000]
    batches = [1, 64] if not gpu else [1, 64, 1024]
    rows, skipped = [], []
    for n in sizes:
        need = n * dim * dtype.itemsize
        if gpu:
            free, _ = torch.cuda.mem_get_info(device)
            if need * 1.3 + (4 << 30) > free:
                skipped.append({"n": n, "reason": f"needs {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"})
                continue
        try:
            budget.need(10 if gpu else 3, f"exact top-k at n={n}")
        except Skip as exc:
            skipped.append({"n": n, "reason": str(exc)})
            continue
        db = random_unit(n, dim, dtype, device)
        # queries near known rows: the exact search must return those rows first
        probe = torch.arange(0, n, max(1, n // 1024), device=device)[:1024]
        noisy = db[probe].float() + 0.01 * torch.randn(len(probe), dim, device=device)
        queries = torch.nn.functional.normalize(noisy, dim=1).to(dtype)
        _, ids = exact_topk(db, queries)
        self_match = float((ids[:, 0] == probe).float().mean())
        for b in batches:
            q = queries[:b]
            seconds, repeats = timed(lambda: exact_topk(db, q), device, min_seconds=0.5 if gpu else 0.2)
            rows.append({"n": n, "dim": dim, "dtype": str(dtype).removeprefix("torch."), "batch": b,
                         "qps": round(b / seconds, 1), "ms_per_batch": round(seconds * 1e3, 3),
                         "db_read_gb_per_s": round(need / seconds / 1e9, 1),
                         "tflops": round(2 * b * n * dim / seconds / 1e12, 2), "repeats": repeats,
                         "top1_is_the_planted_row": self_match})
        del db, queries
        if gpu:
            torch.cuda.empty_cache()
    return {"status": "ok" if rows else "skipped", "rows": rows, "sizes_skipped": skipped, "k": K,
            **({} if rows else {"reason": "; ".join(s["reason"] for s in skipped)})}


# --- faiss IVF-PQ ---------------------------------------------------------------------------------
def part_faiss(device, quick: bool, budget: Budget) -> dict:
    try:
        import faiss
    except (ImportError, OSError) as exc:  # OSError: a faiss-gpu whose CUDA libraries are missing
        raise Skip(f"faiss is not installed ({exc}); on a GPU machine install requirements-gpu.txt "
                   "(make FAISS=gpu), which needs CUDA 12 runtime libraries") from exc
    import torch

    from benchmarks.synthetic import Generator
    ngpu = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    gpu = str(device).startswith("cuda")
    out: dict = {"faiss": faiss.__version__, "faiss_gpus": ngpu}
    if gpu and ngpu == 0:
        out["gpu_skipped"] = (f"faiss {faiss.__version__} has no GPU support here (faiss-cpu, or no GPU "
                              "visible to it): the GPU IVF-PQ figures need faiss-gpu-cu12 with CUDA 12; "
                              "the CPU figures below use the same code at a small size")
    on_gpu = gpu and ngpu > 0
    if not on_gpu and not out.get("gpu_skipped"):
        out["gpu_skipped"] = "no CUDA device: faiss runs on CPU at a small size (the GPU figures need a GPU)"
    # the GPU run: vidsonar's choice at 1M x 1024 (IVF1024,PQ64); the small run: the same shape
    # of index (nlist = sqrt(n), d/16 bytes per code) at a size two CPU cores train in seconds
    n, nq, dim = (1_000_000, 10_000, 1024) if on_gpu and not quick else (4_000, 200, 256)
    nlist, m, k_factor = int(np.sqrt(n)), dim // 16, 20
    budget.need(60 if on_gpu else 5, f"faiss IVF-PQ at n={n}")
    gen = Generator(dim=dim)
    started = time.perf_counter()
    xb, xq = gen.sample(n, stream=0), gen.sample(nq, stream=1)
    data_s = time.perf_counter() - started
    tdev = device if gpu else "cpu"
    db16 = torch.from_numpy(xb).to(tdev).half()  # the float16 full vectors the rerank reads
    _, truth = exact_topk(torch.from_numpy(xb).to(tdev), torch.from_numpy(xq).to(tdev))
    truth = truth.cpu().numpy()

    if not on_gpu and quick:
        faiss.omp_set_num_threads(1)  # OpenMP's spinning threads crawl on a small, shared CPU
    factory = f"IVF{nlist},PQ{m}np"
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if on_gpu:
        res = faiss.StandardGpuResources()
        co = faiss.GpuClonerOptions()
        co.useFloat16 = True  # PQ64: the 64 x 256 lookup tables fit shared memory only in float16
        index = faiss.index_cpu_to_gpu(res, 0, index, co)
    started = time.perf_counter()
    index.train(xb[: min(n, 256 * nlist, 200_000)])
    index.add(xb)
    build_s = time.perf_counter() - started
    params = faiss.GpuParameterSpace() if on_gpu else faiss.ParameterSpace()
    rows = []
    for nprobe in (8, 16, 32, 64):
        if budget.left() < 5:
            out["nprobe_skipped"] = f"time budget: stopped before nprobe={nprobe}"
            break
        params.set_index_parameter(index, "nprobe", nprobe)
        index.search(xq[:100], K * k_factor)  # warm-up
        started = time.perf_counter()
        _, cand = index.search(xq, K * k_factor)
        search_s = time.perf_counter() - started
        started = time.perf_counter()
        final = rerank(db16, torch.from_numpy(xq).to(tdev).half(), cand)
        rerank_s = time.perf_counter() - started
        rows.append({"nprobe": nprobe, "k_factor": k_factor, "recall_at_10_pq": recall(cand[:, :K], truth),
                     "recall_at_10_reranked": recall(final, truth),
                     "qps_pq": round(nq / search_s, 1), "qps_reranked": round(nq / (search_s + rerank_s), 1),
                     "search_s": round(search_s, 4), "rerank_s": round(rerank_s, 4)})
    best = max((r for r in rows if r["recall_at_10_reranked"] >= 0.9), key=lambda r: r["qps_reranked"], default=None)
    out.update(status="ok", where="gpu" if on_gpu else "cpu", factory=factory, n=n, dim=dim, queries=nq,
               data="benchmarks.synthetic (clustered, unit norm)", data_s=round(data_s, 2),
               build_s=round(build_s, 2), truth="exact float32 inner product (torch)", rows=rows,
               goal={"qps": 20_000, "recall_at_10": 0.9, "n": 1_000_000},
               meets_goal=bool(on_gpu and n >= 1_000_000 and best and best["qps_reranked"] >= 20_000))
    return out


def rerank(db16, queries16, cand: np.ndarray, k: int = K, chunk: int = 1000) -> np.ndarray:
    """vidsonar's exact rerank: rescore each query's candidates on the float16 full vectors."""
    import torch
    ids = torch.from_numpy(cand).to(db16.device)
    out = []
    for i in range(0, len(ids), chunk):
        c = ids[i:i + chunk].clamp(min=0)  # -1 pads (fewer candidates than asked) score as row 0...
        scores = torch.einsum("bkd,bd->bk", db16[c].float(), queries16[i:i + chunk].float())
        scores[ids[i:i + chunk] < 0] = -torch.inf  # ...and are then ruled out
        out.append(c.gather(1, scores.topk(k, dim=1).indices))
    return torch.cat(out).cpu().numpy()


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return round(hits / truth.size, 4)


# --- encoders -------------------------------------------------------------------------------------
class Tower:
    """A vision tower with vidsonar's GPU feeding: open_clip through OpenClipBackbone, else timm."""

    def __init__(self, name: str, device, batch_size: int):
        import torch
        self.name, self.device, self.batch_size = name, device, batch_size
        try:
            from encoders.openclip import OpenClipBackbone, open_clip
            open_clip()
        except ImportError as exc:
            self.source, reason = "timm", str(exc)
        else:
            self.source, reason = "open_clip", None
        started = time.perf_counter()
        with torch.device(device):  # random init directly on the GPU: seconds, not minutes
            if self.source == "open_clip":
                self.backbone = OpenClipBackbone(name, None, device=str(device), batch_size=batch_size,
                                                 autocast="auto")
                self.image_size = self.backbone.image_size
            else:
                self._timm(name, reason)
        self.build_s = time.perf_counter() - started
        params = self.backbone.module.parameters() if self.source == "open_clip" else self.model.parameters()
        self.vision_params = sum(p.numel() for p in params)

    def _timm(self, name: str, reason: str | None) -> None:
        try:
            import timm
        except ImportError as exc:
            raise Skip(f"neither open_clip ({reason}) nor timm is installed") from exc
        import torch
        timm_name = PE_MODELS.get(name) or "vit_pe_core_tiny_patch16_384"
        self.model = timm.create_model(timm_name, pretrained=False, num_classes=0).eval()
        cfg = self.model.pretrained_cfg
        self.image_size = int(cfg.get("input_size", (3, 224, 224))[-1])
        self.mean = torch.tensor(cfg.get("mean", (0.5,) * 3)).view(1, 3, 1, 1).to(self.device)
        self.std = torch.tensor(cfg.get("std", (0.5,) * 3)).view(1, 3, 1, 1).to(self.device)
        self.source = f"timm:{timm_name} (open_clip missing: {reason})"

    def features(self, frames: np.ndarray) -> np.ndarray:
        """Square uint8 frames of image_size -> (n, D) float32, in batches, under bf16 autocast."""
        if self.source == "open_clip":
            return self.backbone.features(frames, self.batch_size)
        import torch

        from encoders.gpu_feed import autocast, to_device_pixels
        with torch.inference_mode(), autocast(self.device, "auto"):
            out = [self.model(to_device_pixels(frames[i:i + self.batch_size], self.device, self.mean, self.std)).float()
                   for i in range(0, len(frames), self.batch_size)]
        return torch.cat(out).cpu().numpy()


def part_encoders(device, quick: bool, budget: Budget) -> dict:
    import torch
    gpu = str(device).startswith("cuda")
    rows, skipped = [], []
    if not gpu:
        skipped += [{"model": m, "reason": "no CUDA device: PE-Core-L/bigG are measured on a GPU only"}
                    for m in PE_MODELS]
    plan = ([(QUICK_MODEL, 16, 2)] if not gpu else []) + \
        ([("PE-Core-L-14-336", 256, 4), ("PE-Core-bigG-14-448", 128, 3)] if gpu else [])
    from encoders.gpu_feed import autocast_dtype
    for name, batch, batches in plan:
        try:
            budget.need(40 if gpu else 2, f"building and timing {name}")
            tower = Tower(name, device, batch)
        except Exception as exc:  # Skip, or a timm too old to know the architecture: the next model still runs
            skipped.append({"model": name, "reason": str(exc) if isinstance(exc, Skip) else
                            f"cannot build it: {type(exc).__name__}: {exc}"[:500]})
            continue
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (batch * batches, tower.image_size, tower.image_size, 3), np.uint8)
        if gpu:
            torch.cuda.reset_peak_memory_stats(device)
        seconds, repeats = timed(lambda: tower.features(frames), device, min_seconds=2.0 if gpu else 0.2, max_repeats=5)
        fps = len(frames) / seconds
        rows.append({"model": name, "source": tower.source, "image_size": tower.image_size,
                     "vision_params_m": round(tower.vision_params / 1e6, 1), "batch": batch,
                     "autocast": str(autocast_dtype(device, "auto") or "none (float32)").removeprefix("torch."),
                     "frames_per_s": round(fps, 1), "video_s_per_s_if_encoder_bound": round(fps / FRAMES_PER_VIDEO_SECOND, 1),
                     "build_s": round(tower.build_s, 1), "repeats": repeats, "weights": "random (same cost)",
                     **({"peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)} if gpu else {})})
        del tower
        if gpu:
            torch.cuda.empty_cache()
    return {"status": "ok" if rows else "skipped", "rows": rows, "models_skipped": skipped,
            **({} if rows else {"reason": "; ".join(s["reason"] for s in skipped)})}


# --- ingest ---------------------------------------------------------------------------------------
def footage(folder: Path, quick: bool) -> tuple[list[Path], list[str]]:
    """The shipped sample footage (photo clips, reels, the concert video where iscc-samples is)."""
    from samples.footage import concert_video, make_clip
    notes = []
    plan = [("coffee", ["coffee"], 6.0), ("chelsea", ["chelsea"], 6.0)] if quick else [
        ("coffee", ["coffee"], 6.0), ("chelsea", ["chelsea"], 6.0), ("motorcycle", ["motorcycle"], 6.0),
        ("camera", ["camera"], 6.0), ("reel-space-and-clock", ["astronaut", "clock", "rocket"], 5.0),
        ("reel-reading", ["page", "coffee"], 5.0)]
    paths = [make_clip(folder / f"{name}.mp4", photos, seconds=s).path for name, photos, s in plan]
    if not quick:
        try:
            paths.append(concert_video())
        except ImportError:
            notes.append("the 60 s concert video was left out: iscc-samples is not installed")
    return paths, notes


def decode_all(paths: list[Path], size: int, threads: int, out: "queue.Queue") -> threading.Thread:
    """Decoder threads (one video each at a time) put (frames, seconds) per snippet, then None."""
    from concurrent.futures import ThreadPoolExecutor

    from indexer.decode import iter_snippets

    def one(path: Path) -> None:
        for snippet in iter_snippets(path, short_side=size):
            out.put((snippet.frames, float(snippet.window.end - snippet.window.start)))

    def run() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, paths))
        out.put(None)
    thread = threading.Thread(target=run, name="decoders", daemon=True)
    thread.start()
    return thread


def part_ingest(device, quick: bool, budget: Budget, repeat: int) -> dict:
    try:
        import av  # noqa: F401
    except ImportError as exc:
        raise Skip(f"PyAV (av) is not installed ({exc}): decoding needs it; carry its manylinux wheel") from exc
    import torch

    from benchmarks.gpu_util import GpuUtilSampler
    from encoders.frames import center_crop
    gpu = str(device).startswith("cuda")
    name, batch = ("PE-Core-L-14-336", 256) if gpu else (QUICK_MODEL, 32)
    budget.need(60 if gpu else 5, f"ingest with {name}")
    tower = Tower(name, device, batch)
    work = Path(tempfile.mkdtemp(prefix="vidsonar-gpu-check-"))
    paths, notes = footage(work, quick)
    paths = paths * (1 if quick else repeat)
    threads = max(1, min(len(paths), (os.cpu_count() or 2) - 1))
    tower.features(np.zeros((batch, tower.image_size, tower.image_size, 3), np.uint8))  # warm-up

    def run(encode: bool) -> dict:
        q: queue.Queue = queue.Queue(maxsize=4 * batch)
        started = time.perf_counter()
        decoders = decode_all(paths, tower.image_size, threads, q)
        pending, seconds, snippets, frames_done = [], 0.0, 0, 0

        def flush() -> None:
            nonlocal pending, frames_done
            if pending and encode:
                stack = np.concatenate([center_crop(f, tower.image_size) for f in pending])
                feats = tower.features(stack)
                frames_done += len(feats)
            pending = []
        while (item := q.get()) is not None:
            frames, length = item
            pending.append(frames)
            seconds += length
            snippets += 1
            if sum(len(f) for f in pending) >= batch:  # a batch may span videos
                flush()
        flush()
        decoders.join()
        wall = time.perf_counter() - started
        return {"snippets": snippets, "footage_s": round(seconds, 1), "wall_s": round(wall, 3),
                "x_realtime": round(seconds / wall, 1), "frames_encoded": frames_done}
    decode_only = run(encode=False)
    with GpuUtilSampler() as util:
        full = run(encode=True)
    del tower
    if gpu:
        torch.cuda.empty_cache()
    return {"status": "ok", "model": name, "batch": batch, "decoder_threads": threads, "videos": len(paths),
            "footage_repeats": 1 if quick else repeat, "decode_only": decode_only, "decode_and_encode": full,
            "gpu_utilisation": util.summary(), "notes": notes + ["catalog writes and thumbnails are not included"],
            "goal_video_s_per_s": 200, "meets_goal": bool(gpu and full["x_realtime"] >= 200)}


# --- the run --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (implied without a GPU)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="time for the whole run (default 300)")
    ap.add_argument("--device", default="auto", help="auto (cuda if torch sees one), cuda, cuda:1 or cpu")
    ap.add_argument("--parts", default="exact_topk,faiss_ivfpq,encoders,ingest")
    ap.add_argument("--ingest-repeat", type=int, default=4, help="times the footage is ingested (GPU run)")
    ap.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    ap.add_argument("--json", action="store_true", help="print the JSON")
    args = ap.parse_args(argv)

    import torch
    started = time.perf_counter()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    quick = args.quick or device.type != "cuda"
    budget = Budget(args.budget_s)
    report: dict = {"check": "vidsonar gpu_check", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "quick": quick, "budget_s": args.budget_s, "environment": environment(device),
                    "parts": {}, "skipped": []}
    if device.type != "cuda":
        report["skipped"].append({"part": "gpu", "reason": "no CUDA device visible to torch "
                                  f"(torch {torch.__version__}, CUDA build {torch.version.cuda}): CPU figures at "
                                  "small sizes only"})
    runners = {"exact_topk": lambda: part_exact_topk(device, quick, budget),
               "faiss_ivfpq": lambda: part_faiss(device, quick, budget),
               "encoders": lambda: part_encoders(device, quick, budget),
               "ingest": lambda: part_ingest(device, quick, budget, args.ingest_repeat)}
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        if part not in runners:
            raise SystemExit(f"unknown part {part!r}; known: {', '.join(runners)}")
        t0 = time.perf_counter()
        try:
            result = runners[part]()
        except Skip as exc:
            result = {"status": "skipped", "reason": str(exc)}
        except Exception as exc:  # one part failing must not cost the others' figures
            result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
        result["seconds"] = round(time.perf_counter() - t0, 2)
        report["parts"][part] = result
        if result["status"] != "ok":
            report["skipped"].append({"part": part, "reason": result.get("reason", "")})
        for key, what in (("gpu_skipped", part + ".gpu"), ("sizes_skipped", part), ("models_skipped", part)):
            value = result.get(key)
            for item in (value if isinstance(value, list) else [{"reason": value}] if value else []):
                report["skipped"].append({"part": what, **item})
        _write(args.out, report)  # after every part: a run cut short still leaves its figures
        print(f"[gpu_check] {part}: {result['status']} in {result['seconds']} s", file=sys.stderr, flush=True)
    report["total_s"] = round(time.perf_counter() - started, 2)
    _write(args.out, report)
    print(json.dumps(report, indent=1) if args.json else summary(report))
    return report


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)


def summary(report: dict) -> str:
    lines = [f"gpu_check on {report['environment'].get('gpu', 'CPU')} ({report['environment']['device']}), "
             f"{report.get('total_s')} s"]
    for part, r in report["parts"].items():
        lines.append(f"- {part}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else ""))
        for row in r.get("rows", [])[:12]:
            lines.append("    " + ", ".join(f"{k}={v}" for k, v in row.items()))
        if r.get("decode_and_encode"):
            lines.append(f"    decode only {r['decode_only']['x_realtime']}x real time, decode + {r['model']} "
                         f"{r['decode_and_encode']['x_realtime']}x; GPU utilisation: {r['gpu_utilisation']}")
    lines += [f"skipped: {s['part']}" + "".join(f" {k}={v}" for k, v in s.items() if k not in ("part", "reason"))
              + f": {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
