"""Moment retrieval (``vidsonar bench moments``): do time codes point at the scene?

    python -m benchmarks.moments [--split tune|test|both] [--tune] [--long] [--dataset KIND=PATH] [--json]

Metrics of the moment-retrieval literature, per query language and pooled: R1@IoU 0.3/0.5/0.7
and mean IoU of the top moment, R5@IoU0.5 (any of the top 5); ``snapped@1``: the share of top
moments that snapping moved. A moment's IoU is its best temporal IoU with a ground-truth span
of the query in the same video (0 in another video).
Systems side by side in one run, over the same archive:

- ``snippets``: the best single snippets (``--snippets``);
- ``merge``: the former rule, adjacent snippets that both rank among the best 2k merged;
- ``grounding``: score-aware grounding (search.grounding), moments left where the snippets put them;
- ``grounding-snap``: the same, each video's moments snapped to its shots (search.shot_snap;
  search's default; the plain archive is ingested with shots, the overlapping one has none);
- ``*-hopH``: the same over an archive ingested with overlapping windows (``ingest --hop H``).

Data: the shipped reels (samples.moments; ``tune`` and ``test`` splits, each its own archive;
``--long`` adds reels of 10-15 s scenes, ``LONG_REELS``), or Charades-STA / QVHighlights
(benchmarks.moment_data). ``--tune`` searches the grounding margin and maximum length (with
and without snapping) on the tune split and prints the grid; the constants in search.moments
are then fixed by hand and reported on the test split. Results go to the
DuckDB table of ``bench retrieval`` (dataset ``moments-<split>``), a CSV and two plots.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.moment_data import LOADERS
from benchmarks.retrieval import plots, results
from samples.moments import SPLITS, MomentQuery, build_reels, moment_queries
from search import moments as moments_
from search.archive import Archive

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = (0.3, 0.5, 0.7)
MARGINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
MAX_LENGTHS = (8.0, 12.0, 16.0, 24.0)
#: ``--long``: reels of long scenes (10-15 s: three or four windows a shot), where a moment can
#: stop part-way through its shot; the photos of the tune split, never used for tuning
LONG_REELS: dict[str, list[tuple[str, float]]] = {
    "l1-space": [("astronaut", 12.0), ("clock", 10.5), ("rocket", 14.0)],
    "l2-home": [("chelsea", 13.5), ("coffee", 11.0), ("motorcycle", 15.0)],
    "l3-studio": [("page", 10.5), ("camera", 14.5), ("astronaut", 11.5)],
    "l4-road": [("motorcycle", 12.5), ("rocket", 10.0), ("chelsea", 14.5)],
}


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def hit_iou(hit: dict, query: MomentQuery) -> float:
    path = str(Path(hit["video_path"]).resolve())
    return max((iou((hit["start"], hit["end"]), (s, e)) for p, s, e in query.spans
                if str(Path(p).resolve()) == path), default=0.0)


def query_row(hits: list[dict], query: MomentQuery) -> dict:
    ious = [hit_iou(h, query) for h in hits[:5]]
    top = ious[0] if ious else 0.0
    row = {f"R1@{t}": float(top >= t) for t in THRESHOLDS}
    row.update({"mIoU": top, "R5@0.5": float(any(x >= 0.5 for x in ious))})
    row["snapped@1"] = float(bool(hits and hits[0].get("snapped")))  # the top moment moved to its shot
    return row


def summarize(rows: list[tuple[str, dict]]) -> dict[str, dict[str, float]]:
    """(language, row) pairs -> {language | "all": {metric: mean}}."""
    by: dict[str, list[dict]] = {}
    for lang, row in rows:
        by.setdefault(lang, []).append(row)
        by.setdefault("all", []).append(row)
    return {lang: {m: round(float(np.mean([r[m] for r in rs])), 4) for m in rs[0]} | {"queries": len(rs)}
            for lang, rs in by.items()}


def merged_hits(searcher, vector: np.ndarray, k: int) -> list[dict]:
    """The former moments: adjacent snippets among the best 2k (widened until k remain) merged."""
    pool = [h.__dict__ for h in searcher.search_vector(vector, max(4 * k, searcher.candidates),
                                                       moments=False, collapse=False)]
    m = 2 * k
    while True:
        hits = moments_.merge_adjacent(pool[:m])
        if len(hits) >= k or m >= len(pool):
            return hits
        m += k


def system_hits(system: str, searcher, vector: np.ndarray, k: int = 5) -> list[dict]:
    if system.startswith("snippets"):
        return [h.__dict__ for h in searcher.search_vector(vector, k, moments=False)]
    if system.startswith("merge"):
        return merged_hits(searcher, vector, k)
    snap = system.startswith("grounding-snap")
    return [h.__dict__ for h in searcher.search_vector(vector, k, snap_shots=snap)]


def ingest(home: Path, paths: list[Path], hop: float | None) -> tuple[Archive, dict]:
    archive = Archive(home, "lite")
    # warm up (model load, label-prompt embeddings) before timing: the costs compare ingests
    space = archive.space
    getattr(space, "label_embeddings", None)
    space.encode_snippets(np.zeros((1, 8, space.frame_size, space.frame_size, 3), np.uint8))
    report = archive.ingestor(hop=hop).ingest(paths)
    from storage.shots import shot_spans
    shots = shot_spans(archive.catalog, [v.id for v in archive.catalog.videos()])
    cost = {"snippets": archive.store.index.count, "shots": sum(len(s) for s in shots.values()),
            "ingest_s": round(report.wall_seconds, 2),
            "encode_s": round(report.stage_seconds.get("encode", 0.0), 2),
            "media_s": round(report.media_seconds, 2), "failed": len(report.failed)}
    return archive, cost


def evaluate(archive: Archive, queries: list[MomentQuery], systems: list[str]) -> dict[str, dict]:
    searcher = archive.searcher()
    vectors = [archive.space.encode_query([q.text], q.lang)[0] for q in queries]
    out = {}
    for system in systems:
        rows = [(q.lang, query_row(system_hits(system, searcher, v), q)) for q, v in zip(queries, vectors)]
        out[system] = summarize(rows)
    return out


def tune(archive: Archive, queries: list[MomentQuery]) -> list[dict]:
    searcher = archive.searcher()
    vectors = [archive.space.encode_query([q.text], q.lang)[0] for q in queries]
    grid = []
    for snap in (False, True):
        system = "grounding-snap" if snap else "grounding"
        for margin in MARGINS:
            for max_length in MAX_LENGTHS:
                searcher.margin, searcher.max_moment = margin, max_length
                rows = [(q.lang, query_row(system_hits(system, searcher, v), q)) for q, v in zip(queries, vectors)]
                grid.append({"snap": snap, "margin": margin, "max_length": max_length} | summarize(rows)["all"])
    return grid


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=(*SPLITS, "both"), default="both", help="Shipped split(s) to run")
    ap.add_argument("--dataset", help="KIND=PATH instead of the shipped set; KIND: " + ", ".join(LOADERS))
    ap.add_argument("--hop", type=float, action="append", help="Overlapping variant(s) (default: 2)")
    ap.add_argument("--tune", action="store_true", help="Print the margin x max-length grid on the tune split")
    ap.add_argument("--long", action="store_true", help="Also run reels of long scenes (10-15 s shots)")
    ap.add_argument("--work", type=Path, help="Folder for reels and archives (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--db", type=Path, help="DuckDB file (default: OUT/retrieval.duckdb)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="vidsonar-moments-"))
    os.environ.setdefault("VIDSONAR_CACHE", str(work / "cache"))  # label prompts made once
    hops = args.hop or [2.0]
    db = args.db or args.out / "retrieval.duckdb"
    run = results.Run.new("moments")
    if args.dataset:
        kind, _, path = args.dataset.partition("=")
        if kind not in LOADERS:
            raise SystemExit(f"unknown dataset kind {kind!r}; choose one of {', '.join(LOADERS)}")
        paths, queries, dropped = LOADERS[kind](path)
        sets = {kind: (paths, queries)}
        print(f"{kind}: {len(queries)} queries over {len(paths)} videos ({dropped} dropped: video missing)")
    else:
        splits = SPLITS if args.split == "both" else (args.split,)
        sets = {}
        for split in splits:
            videos = build_reels(work / "reels" / split, split)
            sets[f"moments-{split}"] = ([v.path for v in videos], moment_queries(videos))
        if args.long:
            videos = build_reels(work / "reels" / "long", "long", reels=LONG_REELS)
            sets["moments-long"] = ([v.path for v in videos], moment_queries(videos))
    report: dict = {"run_id": run.run_id, "datasets": {}}
    rows_out = []
    for name, (paths, queries) in sets.items():
        entry: dict = {"queries": len(queries), "cost": {}, "systems": {}}
        variants = [(None, "")] + [(h, f"-hop{h:g}") for h in hops]
        for hop, suffix in variants:
            started = time.perf_counter()
            archive, cost = ingest(work / "homes" / f"{name}{suffix or '-plain'}", paths, hop)
            entry["cost"][f"hop{hop:g}" if hop else "plain"] = cost
            systems = ["snippets", "merge", "grounding", "grounding-snap"] if not suffix else ["snippets", "grounding"]
            found = evaluate(archive, queries, systems)
            entry["systems"].update({f"{s}{suffix}": v for s, v in found.items()})
            if args.tune and name == "moments-tune" and hop is None:
                entry["tuning"] = tune(archive, queries)
            print(f"{name}{suffix}: {cost['snippets']} snippets, evaluated in {time.perf_counter() - started:.1f} s")
        for system, by_lang in entry["systems"].items():
            for lang, metrics in by_lang.items():
                rows_out += [{"system": f"lite/{system}", "dataset": name, "language": lang, "metric": m,
                              "value": v} for m, v in metrics.items()]
        for variant, cost in entry["cost"].items():
            rows_out += [{"system": f"lite/{variant}", "dataset": name, "metric": m, "value": v}
                         for m, v in cost.items()]
        report["datasets"][name] = entry
    results.write(db, run, rows_out)
    args.out.mkdir(parents=True, exist_ok=True)
    csv = results.export_csv(db, args.out / "moments.csv", run.run_id)
    files = [str(csv), str(db)]
    for name, entry in report["datasets"].items():
        table = {s: {lang: v["R1@0.5"] for lang, v in by.items()} for s, by in entry["systems"].items()}
        files.append(str(plots.per_language(table, args.out / f"{name}-r1-iou05.png",
                                            f"{name}: R1@IoU0.5 by language", "R1@IoU0.5")))
    report["files"] = files
    (args.out / "moments.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_report(report)
    return report


def print_report(report: dict) -> None:
    metrics = ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "R5@0.5", "snapped@1"]
    for name, entry in report["datasets"].items():
        print(f"\n{name} ({entry['queries']} queries); cost: "
              + "; ".join(f"{k}: {v['snippets']} vectors, {v.get('shots', 0)} shots, "
                          f"ingest {v['ingest_s']} s (encode {v['encode_s']} s)"
                          for k, v in entry["cost"].items()))
        print(f"{'system':<18}{'language':<10}" + "".join(f"{m:>8}" for m in metrics))
        for system, by_lang in entry["systems"].items():
            for lang, v in by_lang.items():
                print(f"{system:<18}{lang:<10}" + "".join(f"{v[m]:>8.3f}" for m in metrics))
        if "tuning" in entry:
            print(f"\ntuning grid on {name} (grounding, pooled):")
            print(f"{'snap':>5}{'margin':>7}{'maxlen':>7}" + "".join(f"{m:>8}" for m in metrics))
            for row in entry["tuning"]:
                print(f"{'yes' if row.get('snap') else 'no':>5}{row['margin']:>7}{row['max_length']:>7}"
                      + "".join(f"{row[m]:>8.3f}" for m in metrics))


if __name__ == "__main__":
    main()
