"""``vidsonar bench ingest``'s arithmetic: ratios within a round, the median run."""

from __future__ import annotations

import pytest

from benchmarks.retrieval.ingest import median_run, ratios


def mode(x: float, wall: float = 1.0) -> dict:
    return {"x_realtime": x, "wall_seconds": wall}


def test_ratios_put_the_runners_beside_decode_only_and_each_other():
    modes = {"decode": mode(120.0), "decode+lite/local": mode(60.0), "decode+lite/sequential": mode(40.0)}
    got = ratios(modes)
    assert got == {"lite_local_over_decode": 0.5, "lite_sequential_over_decode": round(40 / 120, 3),
                   "lite_local_over_sequential": 1.5, "lite_local_over_fastest_decode": 0.5}


@pytest.mark.parametrize("threaded,fastest", [(100.0, 120.0), (150.0, 150.0)])
def test_the_fastest_decode_ratio_takes_the_faster_of_the_two_decodes(threaded, fastest):
    modes = {"decode": mode(120.0), "decode[frame threads]": mode(threaded), "decode+lite/local": mode(60.0)}
    got = ratios(modes)
    assert got["lite_local_over_decode"] == 0.5
    assert got["lite_local_over_fastest_decode"] == round(60.0 / fastest, 3)


def test_ratios_name_each_lite_runtime_and_skip_missing_modes():
    modes = {"decode": mode(50.0), "decode+lite[int8]/local": mode(25.0), "decode+lite[torch]/local": mode(5.0)}
    assert ratios(modes) == {"lite[int8]_local_over_decode": 0.5, "lite[torch]_local_over_decode": 0.1,
                             "lite[int8]_local_over_fastest_decode": 0.5,
                             "lite[torch]_local_over_fastest_decode": 0.1}


def test_the_cpu_bound_spreads_the_pipelines_cpu_over_every_core():
    """The best ratio any scheduling could give: the pipeline's CPU-seconds over ``cores`` cores,
    nothing idle, against decode-only (here 12 s of footage, 3 CPU-s on 2 cores: 8x; 0.4 of 20x)."""
    local = {**mode(6.0, wall=2.0), "media_seconds": 12.0, "cpu_seconds": 3.0}
    modes = {"decode": mode(20.0), "read": mode(15.0), "decode+lite/local": local}
    got = ratios(modes, cores=2)
    assert got["lite_local_cpu_bound"] == 0.4
    assert got["lite_local_over_read"] == 0.4 and got["lite_local_over_decode"] == 0.3
    assert ratios(modes, cores=4)["lite_local_cpu_bound"] == 0.8
    assert "lite_local_cpu_bound" not in ratios({**modes, "decode+lite/local": mode(6.0, wall=2.0)}, cores=2)


def test_the_read_mode_cuts_shot_aware_windows_over_the_whole_footage(tmp_path):
    from benchmarks.retrieval.ingest import decode_only, read_only
    from samples.footage import write_video
    from tests.conftest import moving_frames
    path = write_video(tmp_path / "clip.mp4", moving_frames(60, w=160, h=120), fps=12)
    row, grid = read_only([path], size=64), decode_only([path], size=64)
    assert row["media_seconds"] == grid["media_seconds"] == 5.0
    assert row["snippets"] >= 1 and row["cpu_seconds"] > 0


def test_the_median_run_is_the_median_wall_time_with_the_spread():
    runs = [mode(10.0, 3.0), mode(30.0, 1.0), mode(20.0, 2.0)]
    row = median_run(runs)
    assert row["wall_seconds"] == 2.0 and row["x_realtime"] == 20.0
    assert (row["x_realtime_min"], row["x_realtime_max"], row["repeats"]) == (10.0, 30.0, 3)


def test_decode_only_counts_the_cpu_seconds_of_every_thread(tmp_path):
    """``cores`` is CPU time over wall time: the figure that shows threads busy-waiting."""
    from benchmarks.retrieval.ingest import decode_only
    from samples.footage import write_video
    from tests.conftest import moving_frames
    path = write_video(tmp_path / "clip.mp4", moving_frames(48, w=160, h=120), fps=12)
    row = decode_only([path], size=64)
    assert row["snippets"] == 1 and row["cpu_seconds"] > 0
    assert decode_only([path], size=64, frame_threads=True)["snippets"] == 1
    # both figures are rounded before they are shown: the quotient agrees to rounding
    assert row["cores"] == pytest.approx(row["cpu_seconds"] / row["wall_seconds"], rel=0.1)


def test_a_ray_row_has_no_cpu_figure():
    from benchmarks.retrieval.ingest import _row, markdown
    row = _row(4, 8.0, 2.0, {"decode": 1.0}, 224, None)
    assert row["cpu_seconds"] is None and row["cores"] is None
    local = _row(4, 8.0, 2.0, {"decode": 1.0}, 224, 3.0)
    assert local["cores"] == 1.5
    table = markdown({"decode+lite/ray": row, "decode+lite/local": local})
    assert "| decode+lite/local | 4 | 8.0 | 2.0 | 3.0 | 1.5 |" in table
    assert "| decode+lite/ray | 4 | 8.0 | 2.0 |  |  |" in table


def test_the_benchmark_times_footage_given_to_it(tmp_path):
    """``--footage``: the same modes on the user's own files, recorded as that dataset."""
    import json

    from benchmarks.retrieval.ingest import main
    from samples.footage import write_video
    from tests.conftest import moving_frames
    folder = tmp_path / "mine"
    write_video(folder / "a.mp4", moving_frames(24, w=96, h=64), fps=12)
    report = main(["--footage", str(folder), "--pe-core", "none", "--runner", "sequential",
                   "--lite-runtime", "torch", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    assert report["videos"] == 1 and report["dataset"] == "footage"
    assert set(report["modes"]) == {"decode", "decode[frame threads]", "read", "decode+lite[torch]/sequential"}
    assert all(m["media_seconds"] == 2.0 for m in report["modes"].values())
    assert json.loads((tmp_path / "out" / "ingest.json").read_text())["dataset"] == "footage"
    with pytest.raises(SystemExit):
        main(["--footage", str(tmp_path / "work"), "--pe-core", "none", "--out", str(tmp_path / "out")])
