"""Ingestion throughput: snippets per second and x real time, with the time of each stage.

    python -m benchmarks.retrieval.ingest [--videos N] [--runner sequential,local,ray]
                                          [--lite-runtime int8,fp32,torch] [--repeats 3]
                                          [--pe-core MODEL[@WEIGHTS]] [--device cuda]

Modes on the same videos (the shipped set: 21 photo pans and the real concert video; or your own
files and folders, ``--footage``):

- ``decode``: PyAV decoding into 8-frame snippets only (``indexer.decode.iter_snippets``), as
  ingestion decodes (small frames on one FFmpeg thread, ``indexer.decode.SINGLE_THREAD_PIXELS``);
- ``decode[frame threads]``: the same with FFmpeg's frame threads for every frame size, so that
  the ratios can be held against whichever of the two decodes faster (``..._over_fastest_decode``);
- ``read``: ingestion's read stage alone (``indexer.stages.read.read_video``): decoding with the
  default shot detector and shot-aware windows, what a pipeline's decoder thread does before any
  encoding, so the detector's share of the cost shows beside plain decoding;
- ``decode+lite/<runner>``: the real ingestion pipeline (``Ingestor``) with the lite space, once
  per runner: ``sequential`` (one file at a time, as before), ``local`` (decoding overlaps
  encoding, batches span videos) and ``ray`` (Ray Data on a local cluster started for the
  run: its start-up is reported apart, and counted in the wall time, as a user meets it);
- ``decode+<PE-Core>``: the pipeline (local runner) with a PE-Core image tower as a dual encoder. Offline it
  is ``PE-Core-T-16-384`` with random weights (the smallest real architecture: the cost of a
  forward pass does not depend on the weights); pass a larger one and ``--device cuda`` on a GPU.

Models are loaded and run once before timing, so load time is not counted (except in Ray's
encoder actors, which build their own). ``ratios`` puts the modes side by side: lite/local
over decode-only (issue 14's goal: >= 0.5), local over sequential, ray over local, and
``..._local_cpu_bound``: the ratio the pipeline would reach with its CPU-seconds spread over every
core this process may use and nothing idle (decode-only's wall over the pipeline's CPU per core):
no scheduling can beat it, only less CPU work can. Pipeline stages
(``hash``, ``decode``, ``encode``, ``thumbnails``, ``write``, ``index_save``) come from
``IngestReport.stage_seconds``; ``CPU s`` is the process's CPU time over all its threads
(not counted for ``ray``, whose workers are other processes), ``cores`` that over the wall
time. With ``--repeats N`` every mode runs N times, round robin; a
mode's row is its median run, and each ratio is taken within a round, then the median round.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.retrieval import results
from benchmarks.retrieval.systems import LITE_VARIANTS
from encoders.device import available_cores
from indexer.decode import iter_snippets
from indexer.sampling import DEFAULT_WINDOW, FRAMES_PER_SNIPPET

RESULTS = Path(__file__).resolve().parents[1] / "results"
DEFAULT_PE_CORE = "PE-Core-T-16-384"


def decode_only(paths: list[Path], size: int = 224, frame_threads: bool = False) -> dict:
    """Decoding alone; ``frame_threads``: FFmpeg's frame threads whatever the frame size."""
    from indexer import decode
    single = decode.SINGLE_THREAD_PIXELS
    decode.SINGLE_THREAD_PIXELS = 0 if frame_threads else single
    snippets, media, started, cpu = 0, 0.0, time.perf_counter(), time.process_time()
    try:
        for path in paths:
            end = 0.0
            for snippet in iter_snippets(path, DEFAULT_WINDOW, FRAMES_PER_SNIPPET, size):
                snippets += 1
                end = float(snippet.window.end)
            media += end  # the last window ends where the footage ends
    finally:
        decode.SINGLE_THREAD_PIXELS = single
    wall = time.perf_counter() - started
    return _row(snippets, media, wall, {"decode": wall}, size, time.process_time() - cpu)


def read_only(paths: list[Path], size: int = 224) -> dict:
    """Ingestion's read stage alone: decoding, the default shot detector, shot-aware windows."""
    from indexer.shots import DEFAULT_DETECTOR
    from indexer.stages.read import ReadSpec, read_video
    spec = ReadSpec.of(DEFAULT_WINDOW, FRAMES_PER_SNIPPET, size, DEFAULT_DETECTOR)
    snippets, media, started, cpu = 0, 0.0, time.perf_counter(), time.process_time()
    for i, path in enumerate(paths):
        end = 0.0
        for row in read_video({"video_id": i, "path": str(path)}, spec):
            if row["kind"] == "snippet":
                snippets += 1
                end = max(end, float(row["end"]))
        media += end
    wall = time.perf_counter() - started
    return _row(snippets, media, wall, {"decode": wall}, size, time.process_time() - cpu)


def pipeline(paths: list[Path], space_name: str, home: Path, runner: str = "local") -> dict:
    from benchmarks.gpu_util import GpuUtilSampler
    from search.archive import Archive
    archive = Archive(home, space_name)
    space = archive.space
    warm = np.zeros((1, FRAMES_PER_SNIPPET, space.frame_size, space.frame_size, 3), np.uint8)
    space.encode_snippets(warm)  # loads the models (and lite's label cache) outside the timing
    ingestor = archive.ingestor(runner=runner)
    cpu = time.process_time()  # over the span IngestReport.wall_seconds times
    with GpuUtilSampler() as gpu:
        report = ingestor.ingest(paths)
    cpu = time.process_time() - cpu
    if report.failed:
        raise RuntimeError(f"ingestion failed: {report.failed}")
    # Ray's workers are other processes: this one's CPU time would undercount them
    row = _row(report.snippets, report.media_seconds, report.wall_seconds, dict(report.stage_seconds),
               space.frame_size, None if runner == "ray" else cpu)
    row["runner"], row["startup_seconds"] = runner, round(report.startup_seconds, 3)
    row["gpu_utilisation"] = gpu.summary()
    if getattr(getattr(space, "vision", None), "runtime", None):  # lite: torch or ONNX Runtime
        row["vision_runtime"] = space.vision.runtime
    return row


#: lite's vision encoder per ``--lite-runtime`` value, as the variables that override its config
#: ($VIDSONAR_LITE_RUNTIME, $VIDSONAR_LITE_PRECISION): the retrieval benchmark's variants
LITE_RUNTIMES = {"auto": {}, **{name: {f"VIDSONAR_LITE_{key.upper()}": value for key, value in vision.items()}
                                for name, vision in LITE_VARIANTS.items()}}


def _warm_reader(path: Path, frame_size: int = 224) -> None:
    """Read one video as ingestion does, once, so the first mode timed does not pay the imports
    (PyAV, the shot detector)."""
    from indexer.shots import DEFAULT_DETECTOR
    from indexer.stages.read import ReadSpec, read_video
    for _ in read_video({"video_id": 0, "path": str(path)},
                        ReadSpec.of(DEFAULT_WINDOW, FRAMES_PER_SNIPPET, frame_size, DEFAULT_DETECTOR)):
        pass


def lite_pipeline(paths: list[Path], home: Path, runtime: str, runner: str = "local") -> dict:
    """decode + lite with its vision encoder as ``runtime`` says (``LITE_RUNTIMES``: auto is the
    space's own choice, torch, ONNX Runtime in fp32 or int8)."""
    before = _set_env({"VIDSONAR_LITE_RUNTIME": None, "VIDSONAR_LITE_PRECISION": None, **LITE_RUNTIMES[runtime]})
    try:
        return pipeline(paths, "lite", home, runner)
    finally:
        _set_env(before)


def _set_env(values: dict[str, str | None]) -> dict[str, str | None]:
    """Set (a value) or unset (None) environment variables; what they were, to put back."""
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return before


FRAME_THREADS = "decode[frame threads]"


def ratios(modes: dict[str, dict], cores: int | None = None) -> dict[str, float]:
    """Throughput ratios between modes of this run (x real time over x real time), for each
    lite runtime in it (``decode+lite/...``, ``decode+lite[onnx]/...``); ``cores``: those the
    CPU bound spreads the pipeline's work over (default: this process's)."""
    cores = cores or available_cores()
    def x(mode):
        return (modes.get(mode) or {}).get("x_realtime")
    out = {}
    fastest = max(filter(None, (x("decode"), x(FRAME_THREADS))), default=None)
    for tag in sorted({m[len("decode+lite"):].split("/")[0] for m in modes if m.startswith("decode+lite")}):
        lite, name = f"decode+lite{tag}", "lite" + tag.strip("[]").join("[]" if tag else "")
        pairs = {f"{name}_local_over_decode": (f"{lite}/local", "decode"),
                 f"{name}_sequential_over_decode": (f"{lite}/sequential", "decode"),
                 f"{name}_local_over_sequential": (f"{lite}/local", f"{lite}/sequential"),
                 f"{name}_ray_over_local": (f"{lite}/ray", f"{lite}/local")}
        pairs[f"{name}_local_over_read"] = (f"{lite}/local", "read")
        out.update({k: round(x(a) / x(b), 3) for k, (a, b) in pairs.items() if x(a) and x(b)})
        if x(f"{lite}/local") and fastest:
            out[f"{name}_local_over_fastest_decode"] = round(x(f"{lite}/local") / fastest, 3)
        local = modes.get(f"{lite}/local") or {}
        if x("decode") and local.get("cpu_seconds"):  # all its CPU work spread over every core
            best_wall = local["cpu_seconds"] / cores
            out[f"{name}_local_cpu_bound"] = round(local["media_seconds"] / best_wall / x("decode"), 3)
    return out


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time, with the spread of x real time over all ``runs``."""
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    xs = [r["x_realtime"] for r in runs]
    row.update(repeats=len(runs), x_realtime_min=min(xs), x_realtime_max=max(xs))
    return row


def _row(snippets: int, media: float, wall: float, stages: dict[str, float], size: int,
         cpu: float | None = None) -> dict:
    """A mode's figures; ``cpu``: the process's CPU-seconds over all its threads (``cores`` is
    cpu / wall), the figure that shows busy-waiting threads, which wall time alone hides."""
    return {"snippets": snippets, "media_seconds": round(media, 2), "wall_seconds": round(wall, 3),
            "snippets_per_s": round(snippets / wall, 2) if wall else None,
            "x_realtime": round(media / wall, 2) if wall else None, "frame_size": size,
            "cpu_seconds": None if cpu is None else round(cpu, 3),
            "cores": round(cpu / wall, 2) if cpu is not None and wall else None,
            "stage_seconds": {k: round(v, 3) for k, v in sorted(stages.items())}}


def pe_core_space(spec: str, device: str) -> str:
    """Register ``spec`` (MODEL[@WEIGHTS]) as a dual-encoder space for the pipeline; its name."""
    from encoders.openclip import open_clip
    from encoders.registry import add_space_config
    model, _, weights = spec.partition("@")
    dim = int((open_clip().get_model_config(model) or {}).get("embed_dim", 0))
    name = f"bench-{model.lower()}"
    add_space_config({"name": name, "family": "open-clip-dual", "dim": dim,
                      "description": f"ingest benchmark: {spec}",
                      "vision": {"model": model, "weights": weights or None}, "options": {"device": device}})
    return name


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, help="use only the first N videos of the set")
    ap.add_argument("--footage", action="append", type=Path, default=[],
                    help="time these files or folders (repeatable) instead of the shipped set: your "
                         "own footage, at its own sizes and codecs")
    ap.add_argument("--pe-core", default=DEFAULT_PE_CORE,
                    help="open_clip MODEL[@WEIGHTS] for the backbone mode, 'none' to skip (default: %(default)s)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runner", default="sequential,local",
                    help="comma-separated runners for decode+lite: sequential, local, ray (default: %(default)s)")
    ap.add_argument("--lite-runtime", default="auto",
                    help="lite's vision encoder(s), comma-separated: auto (the space's default), torch, "
                         "fp32 or int8 (ONNX Runtime) (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds over every mode, interleaved; each mode's row is its median-wall run "
                         "(x real time min and max beside it): on a shared or noisy machine give 3+")
    ap.add_argument("--work", type=Path, help="folder for the clips and the throwaway archives")
    ap.add_argument("--db", type=Path, help="DuckDB file (default: OUT/retrieval.duckdb)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.db = args.db or args.out / "retrieval.duckdb"

    from benchmarks.retrieval.datasets import load_manifest
    from benchmarks.retrieval.shipped import build_shipped_set
    work = args.work or Path(tempfile.mkdtemp(prefix="vidsonar-ingest-"))
    if args.footage:
        from indexer.discover import discover
        paths, dataset = discover(args.footage)[:args.videos], "footage"
        if not paths:
            ap.error(f"no video files in {', '.join(map(str, args.footage))}")
    else:
        paths, dataset = load_manifest(build_shipped_set(work / "shipped")).clips[:args.videos], "shipped"
    paths = [Path(p) for p in paths]
    run = results.Run.new("ingest")
    runners = [r.strip() for r in args.runner.split(",") if r.strip()]
    unknown = sorted(set(runners) - {"sequential", "local", "ray"})
    if unknown:
        ap.error(f"unknown runner(s) {', '.join(unknown)}; choose from sequential, local, ray")
    lite_runtimes = [r.strip() for r in args.lite_runtime.split(",") if r.strip()]
    unknown = sorted(set(lite_runtimes) - set(LITE_RUNTIMES))
    if unknown:
        ap.error(f"unknown lite runtime(s) {', '.join(unknown)}; choose from {', '.join(LITE_RUNTIMES)}")
    _warm_reader(paths[0])
    rounds: dict[str, list[dict]] = {}
    for r in range(max(1, args.repeats)):  # round robin: a slow spell of the machine hits every mode
        rounds.setdefault("decode", []).append(decode_only(paths))
        rounds.setdefault(FRAME_THREADS, []).append(decode_only(paths, frame_threads=True))
        rounds.setdefault("read", []).append(read_only(paths))
        for runtime in lite_runtimes:
            for runner in runners:  # every runner x runtime in one run, side by side
                tag = "" if runtime == "auto" else f"[{runtime}]"
                rounds.setdefault(f"decode+lite{tag}/{runner}", []).append(lite_pipeline(
                    paths, work / f"home-{run.run_id}-lite-{runtime}-{runner}-{r}", runtime, runner))
        if args.pe_core != "none":
            rounds.setdefault(f"decode+{args.pe_core}", []).append(pipeline(
                paths, pe_core_space(args.pe_core, args.device), work / f"home-{run.run_id}-pe-{r}"))
    modes = {mode: median_run(runs) for mode, runs in rounds.items()}
    by_round = [ratios({mode: runs[r] for mode, runs in rounds.items()}) for r in range(max(1, args.repeats))]
    round_ratios = {k: sorted(rr[k] for rr in by_round)[(len(by_round) - 1) // 2]
                    for k in by_round[0]}  # each ratio within one round, then the median round
    rows = []
    for mode, r in modes.items():
        rows += [{"system": mode, "dataset": dataset, "metric": k, "value": r[k]}
                 for k in ("snippets", "media_seconds", "wall_seconds", "snippets_per_s", "x_realtime",
                           "x_realtime_min", "x_realtime_max", "repeats", "frame_size",
                           "startup_seconds", "cpu_seconds", "cores") if r.get(k) is not None]
        rows += [{"system": mode, "dataset": dataset, "metric": f"stage.{k}_s", "value": v}
                 for k, v in r["stage_seconds"].items()]
    results.write(args.db, run, rows)
    csv = results.export_csv(args.db, args.out / "ingest.csv", run.run_id)
    report = {"run_id": run.run_id, "hardware": run.hardware, "git_revision": run.git_revision,
              "videos": len(paths), "dataset": dataset, "device": args.device, "load_average": list(os.getloadavg()),
              "modes": modes, "ratios": round_ratios, "ratios_by_round": by_round, "repeats": max(1, args.repeats),
              "files": [str(csv), str(args.db)]}
    (args.out / "ingest.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        print(markdown(modes))
        print("ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
        for mode, r in modes.items():
            gpu = r.get("gpu_utilisation")
            if gpu is not None and not mode.startswith("decode["):
                print(f"{mode}: " + (f"GPU {gpu['mean_util_pct']}% mean, {gpu['max_util_pct']}% max ({gpu['source']})"
                                     if gpu["available"] else f"GPU utilisation not available: {gpu['reason']}")
                      + (f"; vision on {r['vision_runtime']}" if r.get("vision_runtime") else ""))
        print(f"{len(paths)} videos ({dataset}); run {run.run_id} on {run.hardware} ({args.device}) at {run.git_revision}")
    return report


def markdown(modes: dict[str, dict]) -> str:
    stages = sorted({s for r in modes.values() for s in r["stage_seconds"]})
    lines = ["| mode | snippets | footage s | wall s | CPU s | cores | start-up s | snippets/s | x real time | "
             + " | ".join(f"{s} s" for s in stages) + " |",
             "|" + "---|" * (9 + len(stages))]
    for mode, r in modes.items():
        cpu = "" if r.get("cpu_seconds") is None else r["cpu_seconds"]
        cores = "" if r.get("cores") is None else r["cores"]
        lines.append(f"| {mode} | {r['snippets']} | {r['media_seconds']} | {r['wall_seconds']} | "
                     f"{cpu} | {cores} | "
                     f"{r.get('startup_seconds', '')} | {r['snippets_per_s']} | {r['x_realtime']}"
                     + (f" ({r['x_realtime_min']}-{r['x_realtime_max']})" if r.get("repeats", 1) > 1 else "") + " | "
                     + " | ".join(str(r["stage_seconds"].get(s, "")) for s in stages) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
