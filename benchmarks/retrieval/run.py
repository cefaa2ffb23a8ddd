"""Text->video retrieval benchmark: the paper's Table 2 protocol on any captioned video set.

    python -m benchmarks.retrieval.run [--dataset KIND=PATH ...] [--systems lite,dual-test] [--json]

For each dataset, every video becomes one 8-frame snippet (decoded once, shared by all
systems) and every caption a text query. Per system and per caption language (and ``all``,
pooled): R@1/5/10 and MRR; AC, and trace and logdet of the vision and text covariances (see
``metrics``). For ``all``, V.* is taken over the distinct videos, T.* over every caption, and
AC is the mean of the per-language values. Rows go to DuckDB (``--db``), the run is exported to
CSV, and three PNGs are drawn. With no ``--dataset`` it runs on the set the project ships
(``shipped``: 22 real videos, captions in 6 languages), offline.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.retrieval import metrics, plots, results
from benchmarks.retrieval.datasets import Dataset, load_dataset, load_manifest
from benchmarks.retrieval.systems import encode_vision, iter_decoded, load_system
from vidsonar.errors import UnknownLanguageError

log = logging.getLogger(__name__)
RESULTS = Path(__file__).resolve().parents[1] / "results"
DEFAULT_SYSTEMS = "lite,dual-test"
TABLE_METRICS = ("R@1", "R@5", "R@10", "MRR", "AC", "V.trace", "V.logdet", "T.trace", "T.logdet")


def shipped_dataset(work: Path) -> Dataset:
    from benchmarks.retrieval.shipped import build_shipped_set
    return load_manifest(build_shipped_set(work / "shipped"), name="shipped")


def evaluate(dataset: Dataset, system: str, space, vision: np.ndarray, text_side: str) -> dict:
    """{language: {metric: value}} for one system on one dataset, given its video vectors."""
    started = time.perf_counter()
    truth = np.array(dataset.truth())
    out: dict[str, dict[str, float]] = {}
    texts, truths, acs, paired = [], [], [], {}
    for lang in dataset.languages:
        idx = [i for i, p in enumerate(dataset.pairs) if p.language == lang]
        captions = [dataset.pairs[i].caption for i in idx]
        try:
            encode = space.encode_source if text_side == "source" else space.encode_query
            text = encode(captions, lang)
        except UnknownLanguageError as exc:
            log.warning("%s skips %s: %s", system, lang, exc)
            continue
        row = metrics.retrieval_metrics(text, vision, truth[idx])
        row.update(metrics.space_metrics(vision[truth[idx]], text))
        out[lang] = row
        texts.append(text)
        truths.append(truth[idx])
        acs.append(row["AC"])
        paired[lang] = (vision[truth[idx]], text)
    if texts:
        text_all, truth_all = np.concatenate(texts), np.concatenate(truths)
        row = metrics.retrieval_metrics(text_all, vision, truth_all)
        row.update({"AC": float(np.nanmean(acs)) if not np.all(np.isnan(acs)) else float("nan"),
                    "V.trace": metrics.cov_trace(vision), "V.logdet": metrics.cov_logdet(vision),
                    "T.trace": metrics.cov_trace(text_all), "T.logdet": metrics.cov_logdet(text_all)})
        row.update({"videos": float(len(vision)), "dim": float(vision.shape[1]),
                    "text_seconds": time.perf_counter() - started})
        out["all"] = row
    return {"metrics": out, "paired": paired}


def markdown(table: dict[str, dict[str, dict[str, float]]], dataset: str) -> str:
    """system -> language -> metrics as a Markdown table (R@k and MRR in %)."""
    head = "| dataset | system | language | " + " | ".join(TABLE_METRICS) + " |"
    lines = [head, "|" + "---|" * (3 + len(TABLE_METRICS))]
    for system, by_lang in table.items():
        for lang, row in by_lang.items():
            cells = []
            for m in TABLE_METRICS:
                v = row.get(m, float("nan"))
                cells.append(f"{100 * v:.1f}" if m.startswith(("R@", "MRR")) else
                             f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}")
            lines.append(f"| {dataset} | {system} | {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", default=[],
                    help="KIND=PATH (manifest, msrvtt, multi-msrvtt, vatex, pe-video, dream1k), a .jsonl "
                         "manifest, or 'shipped' (default)")
    ap.add_argument("--systems", default=DEFAULT_SYSTEMS,
                    help="comma-separated spaces or open_clip:MODEL[@WEIGHTS] (default: %(default)s)")
    ap.add_argument("--home", help="VIDSONAR_HOME whose trained spaces and cache to use")
    ap.add_argument("--device", help="torch device for the models (default: each space's own)")
    ap.add_argument("--text-side", choices=("source", "query"), default="source",
                    help="encode captions as passages (default) or as queries")
    ap.add_argument("--work", type=Path, help="where the shipped clips are made (default: a temporary folder)")
    ap.add_argument("--decode-workers", type=int, default=4, help="decoding threads (default: %(default)s)")
    ap.add_argument("--db", type=Path, help="DuckDB file (default: OUT/retrieval.duckdb)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV and PNGs")
    ap.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    args = ap.parse_args(argv)
    args.db = args.db or args.out / "retrieval.duckdb"

    work = args.work or Path(tempfile.mkdtemp(prefix="vidsonar-bench-"))
    run = results.Run.new("retrieval")
    datasets = [shipped_dataset(work) if d in ("", "shipped") else load_dataset(d)
                for d in (args.dataset or ["shipped"])]
    import torch
    torch.manual_seed(0)  # the tiny test models are random-initialised: same seed, same baseline
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    spaces = {name: load_system(name, args.home, args.device) for name in names}
    size = max(int(space.frame_size) for space in spaces.values())
    report: dict = {"run_id": run.run_id, "hardware": run.hardware, "git_revision": run.git_revision,
                    "frames": 8, "frame_size": size, "text_side": args.text_side, "results": {}, "files": []}
    rows = []
    for ds in datasets:
        vision: dict[str, list[np.ndarray]] = {name: [] for name in spaces}
        seconds = dict.fromkeys(["decode", *spaces], 0.0)
        started = time.perf_counter()
        for chunk in iter_decoded(ds.clips, size, workers=args.decode_workers):
            seconds["decode"] += time.perf_counter() - started
            for name, space in spaces.items():
                started = time.perf_counter()
                vision[name].append(encode_vision(space, chunk))
                seconds[name] += time.perf_counter() - started
            started = time.perf_counter()
        log.info("%s: %d videos decoded in %.1f s", ds.name, len(ds.clips), seconds["decode"])
        table, paired = {}, {}
        for name, space in spaces.items():
            got = evaluate(ds, name, space, np.concatenate(vision[name]), args.text_side)
            got["metrics"].get("all", {})["vision_seconds"] = seconds[name]
            table[name] = got["metrics"]
            lang = "eng_Latn" if "eng_Latn" in got["paired"] else next(iter(got["paired"]), None)
            if lang:
                paired[name] = got["paired"][lang]
            rows += [{"system": name, "dataset": ds.name, "language": lg, "metric": m, "value": v}
                     for lg, row in got["metrics"].items() for m, v in row.items()]
        report["results"][ds.name] = {"videos": len(ds.clips), "captions": len(ds.pairs),
                                      "missing": ds.missing, "systems": table}
        stem = args.out / f"retrieval-{ds.name}"
        report["files"] += [str(p) for p in (
            plots.recall_by_system({s: t.get("all", {}) for s, t in table.items()},
                                   Path(f"{stem}-recall.png"), f"{ds.name}: text -> video, all languages"),
            plots.per_language({s: {lg: r["R@1"] for lg, r in t.items() if lg != "all"} for s, t in table.items()},
                               Path(f"{stem}-languages.png"), f"{ds.name}: R@1 per caption language"),
            plots.paired_projection(paired, Path(f"{stem}-projection.png"),
                                    f"{ds.name}: videos and their captions (PCA)"))]
        report["markdown"] = report.get("markdown", "") + markdown(table, ds.name) + "\n"
    results.write(args.db, run, rows)
    csv = results.export_csv(args.db, args.out / "retrieval.csv", run.run_id)
    report["files"] += [str(csv), str(args.db)]
    report = _finite(report)
    if args.json:
        print(json.dumps(report))
    else:
        print(report["markdown"])
        print(f"R@k and MRR in %; run {run.run_id} on {run.hardware} at {run.git_revision}")
        print("wrote " + ", ".join(report["files"]))
    return report


def _finite(x):
    """NaN and infinities as null: JSON has no spelling for them."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


if __name__ == "__main__":
    main()
