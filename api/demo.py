"""``vidsonar demo``: sample footage, ingested and searched in six languages."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from api.clikit import timecode
from samples.footage import QUERIES, build_sample_archive, is_relevant
from search.archive import Archive

TOP = 3


def run_demo(archive: Archive, folder: str | None, as_json: bool, echo: Callable[[str], None]) -> dict:
    folder_path = Path(folder) if folder else Path(tempfile.gettempdir()) / "vidsonar-samples"
    say = (lambda *_: None) if as_json else echo
    say(f"building sample footage in {folder_path} ...")
    videos = build_sample_archive(folder_path)
    # the models first, timed apart: on first use lite exports and quantizes its vision graph
    # (seconds, once per home), which would otherwise hide the ingest speed of every later run
    say(f"loading the {archive.space_name} space's models ...")
    started = time.perf_counter()
    archive.space.prepare()
    loaded = time.perf_counter() - started
    say(f"  ready in {loaded:.1f} s")
    say(f"ingesting {len(videos)} videos into {archive.home.root} ({archive.space_name} space) ...")
    report = archive.ingestor().ingest([v.path for v in videos])
    say(f"  {report.ingested} ingested, {report.skipped} already there, {len(report.failed)} failed, "
        f"{report.snippets} snippets, {report.realtime_factor:.1f}x real time")
    searcher = archive.searcher()
    per_lang: dict[str, list[int]] = {}
    queries = []
    for photo, by_lang in QUERIES.items():
        say(f"\n{photo}:")
        for lang, text in by_lang.items():
            result = searcher.search(text, lang=lang, k=TOP)
            found = [is_relevant(videos, h.video_path, h.start, h.end, photo) for h in result.hits]
            per_lang.setdefault(lang, []).append(int(any(found)))
            queries.append({"photo": photo, "lang": lang, "query": text, "found_in_top3": any(found),
                            "hits": [h.__dict__ for h in result.hits]})
            best = result.hits[0]
            mark = "ok " if any(found) else "-- "
            say(f"  {mark}[{lang}] {text}  ->  {Path(best.video_path).name} "
                f"{timecode(best.start)}-{timecode(best.end)} ({best.score:.3f})")
    rates = {lang: round(sum(v) / len(v), 3) for lang, v in per_lang.items()}
    overall = round(sum(sum(v) for v in per_lang.values()) / sum(len(v) for v in per_lang.values()), 3)
    say(f"\nright moment in the top {TOP}: " + ", ".join(f"{k} {v:.0%}" for k, v in rates.items())
        + f"; overall {overall:.0%}")
    summary = {"models_seconds": round(loaded, 3), "ingest": report.to_json(), "hit_rate_top3": rates, "overall_top3": overall,
               "queries": queries}
    if as_json:
        echo(json.dumps(summary, ensure_ascii=False))
    return summary
