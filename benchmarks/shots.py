"""Shot detection and shot-aware snippets, measured side by side in one run.

1. Detection: precision / recall / F1 of cut positions (a found cut within ``TOL`` frames of a
   true one, each matched once) for TransNetV2 (several thresholds from one pass of its
   probabilities) and PySceneDetect's ContentDetector (several thresholds, one pass each; on
   its 96x54 reformat as ingestion runs it, and on the 224 px frames for reference), on
   generated multi-scene reels with hard cuts at known frames: steady pans (24 fps) and the
   shipped sample reels (``samples.footage.make_clip``: 12 fps, a zoom that moves in whole
   pixels). The real concert clip of ``iscc-samples`` has no cut list: its detections are
   counted. Cost: detector seconds per second of footage (x real time), frames already decoded.
2. Retrieval: the steady-pan reels ingested with the lite space three ways (``--shots none``,
   ``scenedetect``, ``transnetv2``); one English query per scene. R@1 and MRR of the snippet
   ranking (a snippet is relevant when most of it lies in the query's scene); R1@IoU0.5 and
   mIoU of the top snippet's and the top moment's time range against the scene (the moment:
   the top 3 hits merged as the search does, then snapped to shots by ``search.shot_snap``);
   ingestion x real time of each.

Run: ``vidsonar bench shots`` (writes benchmarks/results/shots.json and shots.csv).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_model

RESULTS = Path(__file__).parent / "results"
TOL = 2  # frames
FPS = 24
#: two reels, every photo once; scene lengths that a 4 s grid straddles
REELS: dict[str, list[tuple[str, float]]] = {
    "reel-a": [("astronaut", 5.5), ("clock", 3.0), ("rocket", 6.5), ("page", 2.5)],
    "reel-b": [("coffee", 4.5), ("chelsea", 6.0), ("motorcycle", 2.5), ("camera", 5.0)],
}
TRANSNET_THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
SCENEDETECT_THRESHOLDS = (15.0, 27.0, 40.0)
MOMENT_HITS = 3  # the top hits merged into moments (the archive holds ~10 snippets)


def steady_pan(photo: np.ndarray, n: int, size: tuple[int, int] = (320, 180)) -> list[np.ndarray]:
    """``n`` frames of a steady pan (1 px right, 1/2 px down per frame) over ``photo``."""
    from PIL import Image
    w, h = size
    photo = np.dstack([photo] * 3) if photo.ndim == 2 else photo[..., :3]
    ih, iw = photo.shape[:2]
    scale = max((w + n + 2) / iw, (h + n // 2 + 2) / ih)
    img = np.asarray(Image.fromarray(photo).resize((round(iw * scale) + 1, round(ih * scale) + 1),
                                                             Image.BICUBIC))
    return [np.ascontiguousarray(img[i // 2:i // 2 + h, i:i + w]) for i in range(n)]


def make_reel(path: Path, scenes: list[tuple[str, float]], fps: int = FPS,
              size: tuple[int, int] = (320, 180)) -> tuple[Path, list[int], list[tuple[str, float, float]]]:
    """A reel of steady pans with hard cuts; returns (path, cut frames, (photo, start, end) s)."""
    from samples.footage import load_photo, write_video
    frames, cuts, spans, at = [], [], [], 0
    for photo, seconds in scenes:
        n = round(seconds * fps)
        if at:
            cuts.append(at)
        frames += steady_pan(load_photo(photo), n, size)
        spans.append((photo, at / fps, (at + n) / fps))
        at += n
    write_video(path, frames, fps)
    return path, cuts, spans


def prf(found: list[int], truth: list[int], tol: int = TOL) -> tuple[float, float, float]:
    """Precision, recall, F1 of cut frames, each true cut matched by at most one found cut."""
    free = sorted(truth)
    hits = 0
    for f in sorted(found):
        match = next((t for t in free if abs(t - f) <= tol), None)
        if match is not None:
            free.remove(match)
            hits += 1
    p = hits / len(found) if found else (1.0 if not truth else 0.0)
    r = hits / len(truth) if truth else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def cuts_from_probabilities(probs: list[float], threshold: float) -> list[int]:
    """TransNetV2Detector's rule: a new shot starts at the first frame after a transition."""
    cuts, inside = [], False
    for i, p in enumerate(probs):
        if p > threshold:
            inside = True
        elif inside:
            inside = False
            cuts.append(i)
    return cuts


def _decode(path: Path, small: tuple[int, int]):
    from indexer.decode import iter_frames
    t = time.perf_counter()
    frames = list(iter_frames(path, 224, small))
    return frames, time.perf_counter() - t


def detection(videos: list[tuple[str, Path, list[int] | None, float]], log: Callable[[str], None]) -> list[dict]:
    from indexer.shots import SceneDetectDetector, TransNetV2Detector
    rows = []
    for name, path, truth, fps in videos:
        frames, decode_s = _decode(path, (48, 27))
        media = len(frames) / fps
        det = TransNetV2Detector(keep_probabilities=True)
        t = time.perf_counter()
        for f in frames:
            det.push(f.small)
        det.finish()
        cost = time.perf_counter() - t
        for th in TRANSNET_THRESHOLDS:
            found = cuts_from_probabilities(det.probabilities, th)
            rows.append(_row(name, "transnetv2", th, found, truth, media, cost, decode_s))
        small, small_decode_s = _decode(path, (96, 54))
        for label, images, d_s in (("scenedetect", [f.small for f in small], small_decode_s),
                                   ("scenedetect@224", [f.image for f in frames], decode_s)):
            for th in SCENEDETECT_THRESHOLDS:
                sd = SceneDetectDetector(th, fps)
                t = time.perf_counter()
                found = []
                for img in images:
                    found += sd.push(img)
                found += sd.finish()
                rows.append(_row(name, label, th, found, truth, media, time.perf_counter() - t, d_s))
        del frames, small
        for r in rows[-len(TRANSNET_THRESHOLDS) - 2 * len(SCENEDETECT_THRESHOLDS):]:
            log(f"  {name:18s} {r['detector']:15s} th={r['threshold']:<5} cuts={r['cuts']:3d} "
                f"P={r['precision']} R={r['recall']} F1={r['f1']} cost={r['x_realtime']}x rt")
    return rows


def _row(video, detector, threshold, found, truth, media, seconds, decode_s) -> dict:
    row = {"video": video, "detector": detector, "threshold": threshold, "cuts": len(found),
           "true_cuts": None if truth is None else len(truth), "media_s": round(media, 2),
           "detector_s": round(seconds, 2), "x_realtime": round(media / seconds, 2) if seconds else None,
           "decode_s": round(decode_s, 2)}
    if truth is not None:
        p, r, f = prf(found, truth)
        row.update(precision=round(p, 3), recall=round(r, 3), f1=round(f, 3))
    else:
        row.update(precision=None, recall=None, f1=None)
    return row


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def retrieval(reels: dict[str, tuple[Path, list[int], list[tuple[str, float, float]]]], work: Path,
              variants: tuple[str, ...], log: Callable[[str], None]) -> list[dict]:
    from encoders.registry import load_space
    from indexer.pipeline import Ingestor
    from samples.footage import PHOTOS
    from search.archive import Archive
    from search.moments import merge_adjacent
    from search.shot_snap import snap_to_shots
    from storage.shots import shots_of
    cache = work / "cache"
    space = load_space("lite", cache_dir=cache)
    rows = []
    for variant in variants:
        home = work / f"home-{variant}"
        archive = Archive(str(home), "lite")
        ingestor = Ingestor(archive.catalog, space, archive.store, archive.home.thumbs, shots=variant)
        report = ingestor.ingest([p for p, _, _ in reels.values()])
        if report.failed:
            raise RuntimeError(f"ingest failed: {report.failed}")
        ids, vecs = next(archive.catalog.embeddings(space.name))
        snippets = archive.catalog.snippets(ids)
        meta = [(Path(snippets[i].video.path).stem, snippets[i].video_id, snippets[i].start, snippets[i].end)
                for i in ids.tolist()]
        shots = {vid: [(s.start, s.end) for s in shots_of(archive.catalog, vid)]
                 for vid in {m[1] for m in meta}}
        r1 = rr = snip_hit = snip_iou = mom_hit = mom_iou = 0.0
        n = 0
        for reel, (_, _, spans) in reels.items():
            for photo, s, e in spans:
                q = space.encode_query([PHOTOS[photo]], "eng_Latn")[0]
                scores = vecs @ q
                order = np.argsort(-scores)

                def relevant(j):
                    name, _, a, b = meta[j]
                    return name == reel and max(0.0, min(b, e) - max(a, s)) > (b - a) / 2
                rank = next((k for k, j in enumerate(order) if relevant(j)), None)
                r1 += rank == 0
                rr += 1.0 / (rank + 1) if rank is not None else 0.0
                top = order[0]
                right_video = meta[top][0] == reel
                iou = _iou((meta[top][2], meta[top][3]), (s, e)) if right_video else 0.0
                snip_iou += iou
                snip_hit += iou >= 0.5
                hits = [{"snippet_id": int(ids[j]), "video_id": meta[j][1], "start": meta[j][2],
                         "end": meta[j][3], "score": float(scores[j])} for j in order[:MOMENT_HITS]]
                moment = merge_adjacent(hits)[0]
                vid = moment["video_id"]
                scored = [(meta[j][2], meta[j][3], float(scores[j])) for j in range(len(meta))
                          if meta[j][1] == vid]
                span = snap_to_shots(moment["start"], moment["end"], shots.get(vid, []), scored)
                name = next(m[0] for m in meta if m[1] == vid)
                iou = _iou(span, (s, e)) if name == reel else 0.0
                mom_iou += iou
                mom_hit += iou >= 0.5
                n += 1
        row = {"shots": variant, "queries": n, "snippets": len(ids),
               "R@1": round(r1 / n, 3), "MRR": round(rr / n, 3),
               "snippet_R1@IoU0.5": round(snip_hit / n, 3), "snippet_mIoU": round(snip_iou / n, 3),
               "moment_R1@IoU0.5": round(mom_hit / n, 3), "moment_mIoU": round(mom_iou / n, 3),
               "ingest_x_realtime": round(report.realtime_factor, 2),
               "ingest_wall_s": round(report.wall_seconds, 2),
               "media_s": round(report.media_seconds, 2),
               "stage_s": {k: round(v, 2) for k, v in report.stage_seconds.items()}}
        log(f"  shots={variant:11s} snippets={row['snippets']:3d} R@1={row['R@1']} MRR={row['MRR']} "
            f"snippet R1@IoU.5={row['snippet_R1@IoU0.5']} mIoU={row['snippet_mIoU']} "
            f"moment R1@IoU.5={row['moment_R1@IoU0.5']} mIoU={row['moment_mIoU']} "
            f"ingest={row['ingest_x_realtime']}x rt")
        rows.append(row)
    return rows


def run(work: Path, variants: tuple[str, ...] = ("none", "scenedetect", "transnetv2"),
        real: bool = True, log: Callable[[str], None] = print) -> dict:
    """Both parts, in one process on one machine; returns what ``save`` writes."""
    from samples.footage import concert_video, make_clip
    work.mkdir(parents=True, exist_ok=True)
    reels = {name: make_reel(work / f"{name}.mp4", scenes) for name, scenes in REELS.items()}
    shipped = make_clip(work / "shipped-reel.mp4", ["astronaut", "clock", "rocket", "page", "coffee"], seconds=5.0)
    videos = [(name, p, cuts, float(FPS)) for name, (p, cuts, _) in reels.items()]
    videos.append(("shipped-reel-12fps", shipped.path, [60, 120, 180, 240], 12.0))
    if real:
        videos.append(("iscc-concert", concert_video(), None, 24.0))
    log("detection (cut frames, tolerance 2 frames):")
    det_rows = detection(videos, log)
    log("retrieval with the lite space, one English query per scene:")
    ret_rows = retrieval(reels, work, variants, log)
    return {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                        "load_average": list(os.getloadavg())},
            "detection": det_rows, "retrieval": ret_rows}


def save(result: dict, out: Path = RESULTS) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js = out / "shots.json"
    js.write_text(json.dumps(result, indent=2))
    path = out / "shots.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        keys = list(result["detection"][0])
        w.writerow(["part"] + keys)
        for r in result["detection"]:
            w.writerow(["detection"] + [r[k] for k in keys])
        keys = [k for k in result["retrieval"][0] if k != "stage_s"]
        w.writerow(["part"] + keys)
        for r in result["retrieval"]:
            w.writerow(["retrieval"] + [r[k] for k in keys])
    return js, path


if __name__ == "__main__":  # pragma: no cover
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        print(save(run(Path(tmp))))
