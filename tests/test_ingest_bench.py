"""``vidsonar bench ingest``'s arithmetic: ratios within a round, the median run."""

from __future__ import annotations

from benchmarks.retrieval.ingest import median_run, ratios


def mode(x: float, wall: float = 1.0) -> dict:
    return {"x_realtime": x, "wall_seconds": wall}


def test_ratios_put_the_runners_beside_decode_only_and_each_other():
    modes = {"decode": mode(120.0), "decode+lite/local": mode(60.0), "decode+lite/sequential": mode(40.0)}
    got = ratios(modes)
    assert got == {"lite_local_over_decode": 0.5, "lite_sequential_over_decode": round(40 / 120, 3),
                   "lite_local_over_sequential": 1.5}


def test_ratios_name_each_lite_runtime_and_skip_missing_modes():
    modes = {"decode": mode(50.0), "decode+lite[int8]/local": mode(25.0), "decode+lite[torch]/local": mode(5.0)}
    assert ratios(modes) == {"lite[int8]_local_over_decode": 0.5, "lite[torch]_local_over_decode": 0.1}


def test_the_median_run_is_the_median_wall_time_with_the_spread():
    runs = [mode(10.0, 3.0), mode(30.0, 1.0), mode(20.0, 2.0)]
    row = median_run(runs)
    assert row["wall_seconds"] == 2.0 and row["x_realtime"] == 20.0
    assert (row["x_realtime_min"], row["x_realtime_max"], row["repeats"]) == (10.0, 30.0, 3)
