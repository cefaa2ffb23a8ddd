"""Query-layer figures on the real sample footage: reranker effect and cross-lingual overlap.

    python -m benchmarks.query_layer [--home DIR] [--json]

The archive is the demo's sample footage plus distractor clips of every other skimage photo.
Each of the 8 concepts is asked in 6 languages (48 queries); a hit is relevant when its video
shows the concept during the hit's time range (``samples.footage.is_relevant``).

- rerank: R@1 and MRR of the first relevant snippet (moments off, so snippets are ranked as
  they are), for no reranking and each alignment-consistency variant at several weights.
- cross-lingual consistency: for each concept, overlap@10 of the top-10 snippet sets of every
  pair of languages, averaged (1.0: every language finds the same moments).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from samples.footage import QUERIES, SampleVideo, build_sample_archive, is_relevant, make_clip
from search.archive import Archive

DISTRACTORS = ("brick", "grass", "gravel", "moon", "hubble_deep_field", "coins", "horse", "retina",
               "immunohistochemistry", "cell", "colorwheel", "logo", "text", "microaneurysms")
VARIANTS = [("none", 0.0)] + [(m, w) for m in ("ac-candidates", "ac-anchors") for w in (0.05, 0.1, 0.2, 0.5)]
RESULTS = Path(__file__).resolve().parent / "results"


def build(home: Path, folder: Path) -> tuple[Archive, list[SampleVideo]]:
    videos = build_sample_archive(folder)
    videos += [make_clip(folder / "distractors" / f"{p}.mp4", [p], seconds=8.0) for p in DISTRACTORS]
    archive = Archive(home, "lite")
    archive.ingestor().ingest([v.path for v in videos])
    return archive, videos


def rerank_table(archive: Archive, videos: list[SampleVideo]) -> list[dict]:
    rows = []
    total = archive.store.index.count
    for method, weight in VARIANTS:
        searcher = archive.searcher()
        searcher.rerank_weight = weight
        searcher.candidates = total  # rerank the whole (small) archive: isolates the reranker
        ranks, started = [], time.perf_counter()
        for photo, by_lang in QUERIES.items():
            for lang, text in by_lang.items():
                hits = searcher.search(text, lang=lang, k=total, rerank=method, moments=False,
                                       collapse=False).hits
                ranks.append(next((h.rank for h in hits
                                   if is_relevant(videos, h.video_path, h.start, h.end, photo)), total + 1))
        r = np.array(ranks)
        rows.append({"rerank": method, "weight": weight, "queries": len(r),
                     "r_at_1": round(float((r == 1).mean()), 4), "r_at_5": round(float((r <= 5).mean()), 4),
                     "mrr": round(float((1.0 / r).mean()), 4),
                     "ms_per_query": round((time.perf_counter() - started) * 1000 / len(r), 1)})
    return rows


def crosslingual_overlap(archive: Archive, k: int = 10) -> dict:
    searcher = archive.searcher()
    per_concept = {}
    for photo, by_lang in QUERIES.items():
        tops = {lang: {h.snippet_id for h in searcher.search(text, lang=lang, k=k, moments=False,
                                                              collapse=False).hits}
                for lang, text in by_lang.items()}
        pairs = [len(tops[a] & tops[b]) / k for a, b in itertools.combinations(tops, 2)]
        per_concept[photo] = round(float(np.mean(pairs)), 4)
    return {"k": k, "mean_overlap": round(float(np.mean(list(per_concept.values()))), 4),
            "per_concept": per_concept}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="Archive to (re)use; default: a fresh temporary one")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="vidsonar-ql-"))
    archive, videos = build(home, home / "footage")
    result = {"snippets": archive.store.index.count, "rerank": rerank_table(archive, videos),
              "crosslingual": crosslingual_overlap(archive)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "query_layer.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"{result['snippets']} snippets, 48 queries (8 concepts x 6 languages)")
        print(f"{'rerank':<15}{'weight':>7}{'R@1':>7}{'R@5':>7}{'MRR':>7}{'ms/q':>7}")
        for row in result["rerank"]:
            print(f"{row['rerank']:<15}{row['weight']:>7}{row['r_at_1']:>7.3f}{row['r_at_5']:>7.3f}"
                  f"{row['mrr']:>7.3f}{row['ms_per_query']:>7}")
        cl = result["crosslingual"]
        print(f"cross-lingual overlap@10: {cl['mean_overlap']:.3f} "
              + " ".join(f"{k}={v:.2f}" for k, v in cl["per_concept"].items()))
    return result


if __name__ == "__main__":
    main()
