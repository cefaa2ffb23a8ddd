"""What shot detection costs the read stage: scenedetect scored per frame or in blocks, side by side.

    python -m benchmarks.shot_speed [--folder DIR] [--repeats 3]

Videos: the demo footage of ``samples.footage.build_sample_archive`` (7 videos, 109 s), built
in a temporary folder unless ``--folder`` already holds it (``vidsonar demo`` leaves it in
/tmp/vidsonar-samples). Three levels, each variant timed ``--repeats`` times, the variants
interleaved repeat by repeat so that a change of load on a shared machine hits all alike:

- ``read``: the read stage itself (``indexer.stages.read.read_video``: decoding, snippets,
  thumbnails, rows) with ``--shots none`` and ``--shots scenedetect`` (the default);
- ``snippets``: the shot-aware snippet reader (``iter_shot_snippets``) with the scenedetect
  detector scoring frame by frame (``ContentDetector.process_frame``, ``block=0``) and in
  blocks of 32 (``indexer.shot_scores``), and whether both give the same snippets;
- ``detector``: the detector alone on frames decoded beforehand (96x54), per frame and in
  blocks, and whether both find the same cuts.

Reported: the best wall seconds, the CPU seconds of that process over the same repeat, and
microseconds per frame; the load average before and after. Saves benchmarks/results/shot_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.machine import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def demo_videos(folder: Path) -> list[Path]:
    """The demo footage's videos in ``folder``, built there if it holds none."""
    from samples.footage import build_sample_archive
    paths = sorted(folder.glob("**/*.mp4"))
    if not paths:
        build_sample_archive(folder)
        paths = sorted(folder.glob("**/*.mp4"))
    return paths


def _time(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run(paths: list[Path], repeats: int = 3, log: Callable[[str], None] = print) -> dict:
    from indexer.decode import iter_frames, probe
    from indexer.shots import SceneDetectDetector, iter_shot_snippets
    from indexer.stages.read import ReadSpec, read_video
    infos = {p: probe(p) for p in paths}

    def read(shots: str):
        spec = ReadSpec(shots=shots)
        return lambda: sum(1 for i, p in enumerate(paths)
                           for _ in read_video({"video_id": i, "path": str(p)}, spec))

    def snippets(block: int):
        return lambda: [[(s.window, s.frames.tobytes()) for s in
                         iter_shot_snippets(p, SceneDetectDetector(fps=infos[p].fps or 25.0, block=block),
                                            info=infos[p])] for p in paths]

    small = {p: [f.small for f in iter_frames(p, 224, (96, 54))] for p in paths}
    frames = sum(len(v) for v in small.values())

    def detect(block: int):
        def go():
            found = []
            for p in paths:
                det = SceneDetectDetector(fps=infos[p].fps or 25.0, block=block)
                cuts = [c for f in small[p] for c in det.push(f)]
                found.append(cuts + det.finish())
            return found
        return go

    variants = {"read/none": read("none"), "read/scenedetect": read("scenedetect"),
                "snippets/scenedetect-per-frame": snippets(0), "snippets/scenedetect-blocks": snippets(32),
                "detector/per-frame": detect(0), "detector/blocks": detect(32)}
    for spec in (ReadSpec(shots="none"), ReadSpec(shots="scenedetect")):  # warm: imports, codecs
        list(read_video({"video_id": 0, "path": str(paths[0])}, spec))
    best: dict[str, tuple[float, float]] = {}
    outputs: dict[str, object] = {}
    for r in range(repeats):
        for name, fn in variants.items():
            wall, cpu, out = _time(fn)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
            outputs[name] = out
        log(f"  repeat {r + 1}/{repeats} done, load {os.getloadavg()[0]:.2f}")
    rows = []
    for name, (wall, cpu) in best.items():
        rows.append({"variant": name, "best_wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "us_per_frame": round(wall / frames * 1e6, 1)})
        log(f"  {name:32s} best {wall:6.3f} s  cpu {cpu:6.3f} s  {wall / frames * 1e6:7.1f} us/frame")
    same_snippets = outputs["snippets/scenedetect-per-frame"] == outputs["snippets/scenedetect-blocks"]
    same_cuts = outputs["detector/per-frame"] == outputs["detector/blocks"]
    log(f"  same snippets per frame and in blocks: {same_snippets}; same cuts: {same_cuts}")
    return {"videos": len(paths), "frames": frames,
            "media_s": round(sum(float(i.duration or 0) for i in infos.values()), 2),
            "repeats": repeats, "rows": rows, "same_snippets": same_snippets, "same_cuts": same_cuts,
            "cuts": outputs["detector/blocks"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="the demo footage (built if empty)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = demo_videos(args.folder or Path(tmp))
        load_before = list(os.getloadavg())
        result = run(paths, args.repeats)
    result["machine"] = {"cpu": cpu_model(), "cores": os.cpu_count(), "load_before": load_before,
                         "load_after": list(os.getloadavg())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "shot_speed.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")
    return result


if __name__ == "__main__":  # pragma: no cover
    main()
