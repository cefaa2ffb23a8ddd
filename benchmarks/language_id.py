"""Short-query language identification: py3langid against lingua, side by side in one run.

    python -m benchmarks.language_id [--languages e5|flores200] [--json]

The queries are ``encoders/data/short_queries.tsv``: one to three words in 15 languages, as
people type them to find a moment. For each identifier (``encoders.language_id.BACKENDS``),
built for the lite space's languages (e5's) unless told otherwise:

- accuracy: top-1 language right, overall, by number of words and by language;
  ``searched_right``: the language the searcher would use is right (the detection when its
  confidence reaches ``search.searcher.MIN_DETECT_CONFIDENCE``, else the default eng_Latn);
  ``confident_wrong``: a wrong detection above that threshold (SONAR is told a wrong code);
- start-up, each in a fresh interpreter: import, build, first query, the whole set (lingua
  loads its models on first use), and resident memory after each step;
- per-query time over the set once warm.

Prints a table and saves ``benchmarks/results/language_id.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from importlib import resources
from pathlib import Path

from benchmarks.machine import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_LANG = "eng_Latn"


def short_queries() -> list[tuple[str, int, str]]:
    """(FLORES code, words, query) rows of the shipped query set."""
    text = resources.files("encoders").joinpath("data/short_queries.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            lang, words, query = line.split("\t")
            rows.append((lang, int(words), query))
    return rows


def _supported(name: str) -> tuple[str, ...]:
    from encoders.languages import language_set
    return language_set(name)


_STARTUP = r"""
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
backend, langs, queries = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
out = {"rss_start_mib": rss()}
t = time.perf_counter()
from encoders import language_id
from encoders.languages import language_set
supported = language_set(langs)
out["import_s"] = time.perf_counter() - t; out["rss_import_mib"] = rss()
t = time.perf_counter()
det = language_id.make_detector(backend, supported)
out["build_s"] = time.perf_counter() - t; out["rss_build_mib"] = rss()
t = time.perf_counter()
det.detect(queries[0])
out["first_query_s"] = time.perf_counter() - t; out["rss_first_query_mib"] = rss()
t = time.perf_counter()
for q in queries:
    det.detect(q)
out["all_queries_cold_s"] = time.perf_counter() - t; out["rss_after_set_mib"] = rss()
print(json.dumps(out))
"""


def startup(backend: str, langs: str, queries: list[str]) -> dict:
    """Start-up costs of one identifier, measured in a fresh interpreter."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _STARTUP, backend, langs], input=json.dumps(queries),
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["memory_mib"] = round(data["rss_after_set_mib"] - data["rss_start_mib"], 1)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def accuracy(backend: str, langs: str, rows: list[tuple[str, int, str]], min_confidence: float) -> dict:
    from encoders.language_id import make_detector
    det = make_detector(backend, _supported(langs))
    for _, _, q in rows:  # warm: lingua loads its models on first use
        det.detect(q)
    by_words: dict[int, list[int]] = defaultdict(list)
    by_lang: dict[str, list[int]] = defaultdict(list)
    searched, confident_wrong, wrong = [], [], []
    started = time.perf_counter()
    found = [det.detect(q) for _, _, q in rows]
    per_query_us = (time.perf_counter() - started) / len(rows) * 1e6
    for (lang, words, query), got in zip(rows, found):
        ok = int(got is not None and got.code == lang)
        by_words[words].append(ok)
        by_lang[lang].append(ok)
        used = got.code if got is not None and got.confidence >= min_confidence else DEFAULT_LANG
        searched.append(int(used == lang))
        confident_wrong.append(int(not ok and got is not None and got.confidence >= min_confidence))
        if not ok:
            wrong.append({"query": query, "lang": lang, "detected": got.code if got else None,
                          "confidence": got.confidence if got else None})
    mean = lambda v: round(sum(v) / len(v), 3)  # noqa: E731
    return {"accuracy": mean([x for v in by_words.values() for x in v]),
            "searched_right": mean(searched), "confident_wrong": mean(confident_wrong),
            "by_words": {str(w): mean(v) for w, v in sorted(by_words.items())},
            "by_language": {lang: mean(v) for lang, v in sorted(by_lang.items())},
            "per_query_us": round(per_query_us, 1), "wrong": wrong}


def main(argv: list[str] | None = None) -> dict:
    from encoders.language_id import BACKENDS, DEFAULT_BACKEND
    from search.searcher import MIN_DETECT_CONFIDENCE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", default="e5", help="Language set the identifiers are built for "
                    "(e5: the lite space's; flores200: a SONAR space's).")
    ap.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = ap.parse_args(argv)
    rows = short_queries()
    queries = [q for _, _, q in rows]
    systems = {}
    for backend in BACKENDS:
        systems[backend] = {**accuracy(backend, args.languages, rows, MIN_DETECT_CONFIDENCE),
                            "startup": startup(backend, args.languages, queries)}
    result = {"queries": len(rows), "languages": sorted({lang for lang, _, _ in rows}),
              "built_for": args.languages, "min_confidence": MIN_DETECT_CONFIDENCE,
              "default_backend": DEFAULT_BACKEND, "systems": systems,
              "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load": os.getloadavg()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "language_id.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return result
    print(f"{len(rows)} queries, {len(result['languages'])} languages; identifiers built for {args.languages}")
    print(f"{'system':<11} {'acc':>5} {'1w':>5} {'2w':>5} {'3w':>5} {'searched':>8} {'conf.wrong':>10} {'us/q':>7} "
          f"{'import s':>8} {'build s':>7} {'1st q s':>7} {'cold set s':>10} {'MiB':>6}")
    for name, s in systems.items():
        st, w = s["startup"], s["by_words"]
        print(f"{name:<11} {s['accuracy']:>5.3f} {w['1']:>5.3f} {w['2']:>5.3f} {w['3']:>5.3f} "
              f"{s['searched_right']:>8.3f} {s['confident_wrong']:>10.3f} {s['per_query_us']:>7.1f} {st['import_s']:>8.3f} "
              f"{st['build_s']:>7.3f} {st['first_query_s']:>7.3f} {st['all_queries_cold_s']:>10.3f} "
              f"{st['memory_mib']:>6.1f}")
    print(f"saved {RESULTS / 'language_id.json'}")
    return result


if __name__ == "__main__":
    main()
