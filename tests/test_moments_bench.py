"""The moment benchmark's parts: IoU metrics, the shipped set's ground truth, dataset loaders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.moment_data import load_charades_sta, load_qvhighlights
from benchmarks.moments import iou, query_row, summarize
from samples.moments import REELS, MomentQuery, queries_for
from vidsonar.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "moments"


def test_iou():
    assert iou((0, 4), (0, 4)) == 1.0
    assert iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert iou((0, 4), (4, 8)) == 0.0
    assert iou((0, 23), (0, 5)) == pytest.approx(5 / 23)  # the whole reel for one scene


def test_query_row_counts_the_top_moment_and_any_of_five():
    q = MomentQuery("un chat", "fra_Latn", (("/a/reel.mp4", 5.0, 11.0),))
    hits = [{"video_path": "/a/other.mp4", "start": 5.0, "end": 11.0},  # right time, wrong video
            {"video_path": "/a/reel.mp4", "start": 4.0, "end": 12.0}]
    row = query_row(hits, q)
    assert row["R1@0.5"] == 0.0 and row["mIoU"] == 0.0 and row["R5@0.5"] == 1.0
    assert query_row(hits[1:], q) == {"R1@0.3": 1.0, "R1@0.5": 1.0, "R1@0.7": 1.0, "mIoU": 0.75, "R5@0.5": 1.0,
                                      "snapped@1": 0.0}
    assert query_row([{**hits[1], "snapped": True}, hits[0]], q)["snapped@1"] == 1.0
    table = summarize([("fra_Latn", query_row(hits, q)), ("deu_Latn", query_row(hits[1:], q))])
    assert table["all"]["R5@0.5"] == 1.0 and table["all"]["mIoU"] == 0.375 and table["all"]["queries"] == 2


def test_shipped_scenes_are_off_the_grid_and_asked_in_six_languages():
    for split, reels in REELS.items():
        lengths = [s for scenes in reels.values() for _, s in scenes]
        assert all(3.0 <= s <= 9.0 for s in lengths)
        # most scene boundaries must fall between 4 s grid lines, or the grid would answer alone
        bounds = [sum(s for _, s in scenes[:i + 1]) for scenes in reels.values() for i in range(len(scenes) - 1)]
        assert sum(b % 4 != 0 for b in bounds) >= 0.75 * len(bounds), split
    photos = {p for reels in REELS.values() for scenes in reels.values() for p, _ in scenes}
    for photo in photos:
        assert len(queries_for(photo)) >= 6
    tune = {p for scenes in REELS["tune"].values() for p, _ in scenes}
    test = {p for scenes in REELS["test"].values() for p, _ in scenes}
    assert tune == test  # every concept is asked in both splits, in other reels


def _with_videos(tmp_path: Path, ann: str, names: list[str]) -> Path:
    shutil.copy(FIXTURES / ann, tmp_path / ann)
    (tmp_path / "videos").mkdir()
    for name in names:
        (tmp_path / "videos" / name).write_bytes(b"")
    return tmp_path


def test_charades_sta_loader(tmp_path):
    root = _with_videos(tmp_path, "charades_sta_test.txt", ["AO8RW.mp4", "Y6R7T.webm"])
    videos, queries, dropped = load_charades_sta(root)
    assert dropped == 1 and [v.name for v in videos] == ["AO8RW.mp4", "Y6R7T.webm"]
    eating = next(q for q in queries if "eating" in q.text)
    assert [(s, e) for _, s, e in eating.spans] == [(2.5, 9.4), (20.0, 24.6)]  # one query, two spans
    assert len(queries) == 3 and all(q.lang == "eng_Latn" for q in queries)


def test_qvhighlights_loader(tmp_path):
    root = _with_videos(tmp_path, "highlight_val_release.jsonl",
                        ["NUsG9BgSes0_210.0_360.0.mp4", "zq7Lw_Zzz0s_60.0_210.0.mp4"])
    videos, queries, dropped = load_qvhighlights(root)
    assert dropped == 1 and len(videos) == 2
    assert [(s, e) for _, s, e in queries[0].spans] == [(0.0, 4.0), (10.0, 16.0)]


def test_loaders_name_a_missing_or_bad_layout(tmp_path):
    with pytest.raises(InputError, match="charades_sta_test.txt"):
        load_charades_sta(tmp_path)
    with pytest.raises(InputError, match="highlight_val_release.jsonl"):
        load_qvhighlights(tmp_path)
    (tmp_path / "charades_sta_test.txt").write_text("AO8RW 0.0 no-hashes\n")
    with pytest.raises(InputError, match=":1: expected"):
        load_charades_sta(tmp_path)
