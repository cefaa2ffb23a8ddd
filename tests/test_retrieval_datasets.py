"""Dataset loaders on small fixture files written in each layout (videos are empty stand-ins:
the loaders only check that they exist)."""

from __future__ import annotations

import json

import pytest

from benchmarks.retrieval.datasets import load_dataset, load_manifest
from vidsonar.errors import InputError


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0")
    return path


def test_manifest_relative_paths_languages_and_truth(tmp_path):
    _touch(tmp_path / "clips/a.mp4")
    _touch(tmp_path / "clips/b.mp4")
    rows = [{"video": "clips/a.mp4", "caption": "a cat", "language": "eng_Latn"},
            {"media": "clips/a.mp4", "caption": "un chat", "lang": "fra_Latn"},
            {"video": "clips/b.mp4", "caption": "a dog", "language": "eng_Latn"},
            {"video": "clips/gone.mp4", "caption": "lost", "language": "eng_Latn"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = load_dataset(str(tmp_path / "m.jsonl"))
    assert ds.name == "m" and ds.missing == 1
    assert ds.clips == [str(tmp_path / "clips/a.mp4"), str(tmp_path / "clips/b.mp4")]
    assert ds.languages == ["eng_Latn", "fra_Latn"]
    assert ds.truth() == [0, 0, 1]


def test_manifest_errors_name_the_line(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"video": "a.mp4", "caption": "x"}\n')
    with pytest.raises(InputError, match="m.jsonl:1"):
        load_manifest(tmp_path / "m.jsonl")
    _touch(tmp_path / "a.mp4")
    (tmp_path / "s.jsonl").write_text('{"video": "a.mp4", "caption": "x", "lang": "eng_Latn", "start": 1}\n')
    with pytest.raises(InputError, match="spans"):
        load_manifest(tmp_path / "s.jsonl")


def test_all_videos_missing_is_an_error(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"video": "a.mp4", "caption": "x", "language": "eng_Latn"}\n')
    with pytest.raises(InputError, match="no caption has its video"):
        load_manifest(tmp_path / "m.jsonl")


def test_msrvtt_1k_a(tmp_path):
    _touch(tmp_path / "videos/all/video7010.mp4")
    _touch(tmp_path / "videos/all/video7020.mp4")
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr7010,video7010,a man is talking about a car\n"
        "ret1,msr7020,video7020,a woman is cooking\n")
    ds = load_dataset(f"msrvtt={tmp_path}")
    assert [p.caption for p in ds.pairs] == ["a man is talking about a car", "a woman is cooking"]
    assert ds.languages == ["eng_Latn"] and ds.pairs[1].video.name == "video7020.mp4"


def test_multi_msrvtt_languages(tmp_path):
    _touch(tmp_path / "videos/all/video7010.mp4")
    (tmp_path / "captions").mkdir()
    (tmp_path / "captions/de.csv").write_text("video_id,sentence\nvideo7010,ein Mann spricht\n")
    (tmp_path / "captions/zh.csv").write_text("video_id,sentence\nvideo7010,一个男人在说话\n")
    ds = load_dataset(f"multi-msrvtt={tmp_path}")
    assert ds.languages == ["deu_Latn", "zho_Hans"] and ds.truth() == [0, 0]
    (tmp_path / "captions/xx.csv").write_text("video_id,sentence\n")
    with pytest.raises(InputError, match="unknown language"):
        load_dataset(f"multi-msrvtt={tmp_path}")


def test_vatex_english_and_chinese(tmp_path):
    _touch(tmp_path / "videos/Ptf_2VRj-V0_000122_000132.mp4")
    rows = [{"videoID": "Ptf_2VRj-V0_000122_000132", "enCap": ["a man plays drums", "drumming"],
             "chCap": ["一个男人在打鼓", "打鼓"]},
            {"videoID": "missing_000001_000011", "enCap": ["gone"], "chCap": ["没了"]}]
    (tmp_path / "vatex_validation_v1.0.json").write_text(json.dumps(rows, ensure_ascii=False))
    ds = load_dataset(f"vatex={tmp_path}")
    assert [(p.language, p.caption) for p in ds.pairs] == [("eng_Latn", "a man plays drums"),
                                                          ("zho_Hans", "一个男人在打鼓")]
    assert ds.missing == 2


def test_pe_video(tmp_path):
    _touch(tmp_path / "videos/abc.mp4")
    _touch(tmp_path / "other/def.mp4")
    (tmp_path / "test.jsonl").write_text(
        json.dumps({"video_id": "abc", "human_caption": "a detailed caption"}) + "\n"
        + json.dumps({"video": "other/def.mp4", "caption": "another"}) + "\n")
    ds = load_dataset(f"pe-video={tmp_path}")
    assert [p.caption for p in ds.pairs] == ["a detailed caption", "another"]
    assert ds.pairs[1].video == tmp_path / "other/def.mp4"


def test_dream1k(tmp_path):
    _touch(tmp_path / "video/DREAM-1K_videos/1.mp4")
    (tmp_path / "json").mkdir()
    (tmp_path / "json/metadata.json").write_text(json.dumps(
        [{"idx": 1, "video_file": "DREAM-1K_videos/1.mp4", "description": "A girl runs, then jumps."}]))
    ds = load_dataset(f"dream1k={tmp_path}")
    assert ds.pairs[0].caption == "A girl runs, then jumps." and ds.pairs[0].video.is_file()


def test_unknown_layout_lists_the_known(tmp_path):
    with pytest.raises(InputError, match="msrvtt"):
        load_dataset(f"kinetics={tmp_path}")
