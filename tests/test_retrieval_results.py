"""Results go into one DuckDB table and come back out of it, and out as CSV."""

from __future__ import annotations

import csv
import json
import math

import pytest

from benchmarks.retrieval import results


def test_write_read_and_export(tmp_path):
    db = tmp_path / "r.duckdb"
    first, second = results.Run.new("a"), results.Run.new("b")
    rows = [{"system": "lite", "dataset": "shipped", "language": "eng_Latn", "metric": "R@1", "value": 0.5},
            {"system": "lite", "dataset": "shipped", "language": "all", "metric": "AC", "value": float("nan")},
            {"system": "decode", "dataset": "shipped", "metric": "snippets_per_s", "value": 12}]
    assert results.write(db, first, rows) == 3
    results.write(db, second, rows[:1])
    back = results.read(db, first.run_id)
    assert len(back) == 3 and len(results.read(db)) == 4
    got = {(r["system"], r["language"], r["metric"]): r for r in back}
    assert got[("lite", "eng_Latn", "R@1")]["value"] == 0.5
    assert got[("decode", "-", "snippets_per_s")]["value"] == 12.0
    assert math.isnan(got[("lite", "all", "AC")]["value"])
    row = got[("lite", "eng_Latn", "R@1")]
    assert (row["run_id"], row["hardware"], row["git_revision"]) == (first.run_id, first.hardware,
                                                                     first.git_revision)
    assert row["time"] == first.time
    out = results.export_csv(db, tmp_path / "o.csv", second.run_id)
    with out.open() as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == list(results.COLUMNS) and len(lines) == 1 and lines[0]["run_id"] == second.run_id


@pytest.mark.slow
def test_benchmark_run_end_to_end(tmp_path):
    """The CLI on three real clips with the tiny random dual encoder: JSON, rows, CSV, plots."""
    from click.testing import CliRunner

    from api.cli import main
    from benchmarks.retrieval.datasets import write_manifest
    from samples.footage import make_clip
    rows = []
    for name, caption in (("chelsea", "a cat"), ("coffee", "a cup of coffee"), ("rocket", "a rocket")):
        make_clip(tmp_path / f"{name}.mp4", [name], seconds=1.0, fps=8, size=(96, 64))
        rows += [{"video": f"{name}.mp4", "caption": caption, "language": "eng_Latn"},
                 {"video": f"{name}.mp4", "caption": caption.upper(), "language": "fra_Latn"}]
    manifest = write_manifest(tmp_path / "tiny.jsonl", rows)
    res = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "bench", "retrieval", "--dataset",
                                    str(manifest), "--systems", "dual-test", "--work", str(tmp_path / "w"),
                                    "--out", str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(next(line for line in res.output.splitlines() if line.startswith("{")))
    table = report["results"]["tiny"]["systems"]["dual-test"]
    assert set(table) == {"eng_Latn", "fra_Latn", "all"}
    assert table["all"]["queries"] == 6 and 0 <= table["all"]["R@1"] <= table["all"]["R@10"] == 1.0
    stored = results.read(tmp_path / "out" / "retrieval.duckdb", report["run_id"])
    assert {r["metric"] for r in stored} >= {"R@1", "R@5", "R@10", "MRR", "AC", "V.trace", "T.logdet"}
    for suffix in ("recall", "languages", "projection"):
        assert (tmp_path / "out" / f"retrieval-tiny-{suffix}.png").stat().st_size > 1000
    assert (tmp_path / "out" / "retrieval.csv").is_file()
