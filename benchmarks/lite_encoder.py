"""The lite vision encoder, torch vs ONNX Runtime (fp32 and int8): images/s at batch 8 and 32 on real photos.

    python -m benchmarks.lite_encoder [--images 256] [--batches 8,32] [--repeats 3] [--threads N]

All three get the same frames: the ``skimage.data`` photos of the sample footage, scaled to
the space's 224 px and cut into shifted 224 x 224 crops (so no two frames are equal), in one
run, side by side. Each (runtime, batch) is timed ``--repeats`` times after a warm-up; the
median is reported with the best and worst. Also written: the largest absolute difference
between torch's and the float graph's logits, the int8 graph's top-1 agreement with torch,
and the machine's load average, since timings on a shared machine mean little without it. Saves ``benchmarks/results/lite_encoder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def real_frames(n: int, size: int = 224) -> np.ndarray:
    """(n, size, size + 32, 3) uint8 frames: real photos, each seen through shifted windows."""
    from encoders.frames import fit_frame
    from samples.footage import PHOTOS, load_photo
    photos = [fit_frame(load_photo(name), size + 32) for name in PHOTOS]
    frames = []
    for i in range(n):
        img = photos[i % len(photos)]
        dy, dx = (i * 7) % (img.shape[0] - size + 1), (i * 13) % (img.shape[1] - size - 31)
        frames.append(img[dy:dy + size, dx:dx + size + 32])
    return np.stack(frames)


def time_runtime(encoder, frames: np.ndarray, batch: int, repeats: int) -> dict:
    encoder.logits(frames[:batch], batch)  # warm-up: allocations, thread pools
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        encoder.logits(frames, batch)
        rates.append(len(frames) / (time.perf_counter() - started))
    return {"images_per_s": round(statistics.median(rates), 1), "best": round(max(rates), 1),
            "worst": round(min(rates), 1), "repeats": repeats}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batches", default="8,32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: available cores)")
    ap.add_argument("--cache", type=Path, help="folder for the exported graph (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from encoders.efficientnet import EfficientNetLite0
    from encoders.device import available_cores
    from encoders.onnx_lite import OnnxLite0
    frames = real_frames(args.images)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="vidsonar-lite-onnx-"))
    started = time.perf_counter()
    onnx = OnnxLite0.load(cache, threads=args.threads, precision="fp32")
    first_use_s = time.perf_counter() - started  # export (or cache check) + session start
    started = time.perf_counter()
    int8 = OnnxLite0.load(cache, threads=args.threads, precision="int8")
    quantize_s = time.perf_counter() - started  # quantization (or cache check) + session start
    runtimes = {"torch": EfficientNetLite0(), "onnx": onnx, "onnx-int8": int8}
    batches = [int(b) for b in args.batches.split(",")]
    load_before = os.getloadavg()
    rows = []
    for batch in batches:  # interleaved, so a change in machine load hits both runtimes alike
        for name, encoder in runtimes.items():
            rows.append({"runtime": name, "detail": encoder.runtime, "batch": batch,
                         **time_runtime(encoder, frames, batch, args.repeats)})
    reference = runtimes["torch"].logits(frames[:64], 8)
    diff = float(np.abs(reference - onnx.logits(frames[:64], 8)).max())
    int8_top1 = float((int8.logits(frames[:64], 8).argmax(1) == reference.argmax(1)).mean())
    report = {"images": len(frames), "image_size": 224, "rows": rows, "max_abs_logit_diff": diff,
              "int8_top1_agreement": round(int8_top1, 3), "onnx_first_use_s": round(first_use_s, 2),
              "int8_first_use_s": round(quantize_s, 2), "cores": available_cores(),
              "torch_threads": torch.get_num_threads(), "cpu": cpu_model(),
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lite_encoder.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        print("| runtime | batch | images/s (median) | best | worst |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['detail']} | {r['batch']} | {r['images_per_s']} | {r['best']} | {r['worst']} |")
        print(f"{len(frames)} real photo crops; max |logit diff| fp32 {diff:.2e}; int8 top-1 agreement "
              f"{int8_top1:.3f}; first use: export {first_use_s:.1f} s, quantize {quantize_s:.1f} s; load {report['loadavg_before']} -> {report['loadavg_after']}; {report['cpu']}")
    return report


if __name__ == "__main__":
    main()
