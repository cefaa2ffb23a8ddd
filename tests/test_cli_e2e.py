"""The real CLI in a subprocess: ingest real and generated clips with bad files among them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_ingest_reports_every_file(ingested_archive, sample_videos, bad_files):
    _, report = ingested_archive
    assert report["ingested"] == len(sample_videos)
    assert report["skipped"] == 0
    failed = {f["path"]: f["error"] for f in report["failed"]}
    assert set(failed) == {str(p) for p in bad_files.values()}
    assert "empty file" in failed[str(bad_files["empty"])]
    assert "no video stream" in failed[str(bad_files["audio_only"])]
    # 4 clips of 6 s (2 snippets each), reels of 15 s and 10 s (3 + 2... see sampling), concert 60 s
    assert report["snippets"] >= 8 + 4 + 2 + 15


def test_failures_are_recorded_and_nothing_is_lost(ingested_archive, bad_files):
    home, report = ingested_archive
    info = json.loads(run_cli("info", "--json", home=home).stdout)
    assert info["failed"] == len(bad_files)
    assert info["videos"] == report["ingested"]
    assert info["snippets"] == report["snippets"] == info["index"]["count"]
    assert info["space"] == "lite" and info["index"]["factory"] == "IDMap2,Flat"
    # one encoder made every vector, and the archive says which
    (maker,) = info["vector_makers"]
    assert maker["videos"] == report["ingested"] and len(maker["fingerprint"]) == 16
    assert maker["encoder"].startswith("label-bridge: text e5") and info["mixed_encoders"] is False
    out = run_cli("info", home=home).stdout
    assert f"made by {maker['encoder']} [{maker['fingerprint']}]" in out


def test_reingesting_unchanged_files_adds_nothing(ingested_archive, sample_videos, tmp_path):
    home, first = ingested_archive
    again = json.loads(run_cli("ingest", str(sample_videos[0].path), "--json", home=home).stdout)
    assert (again["ingested"], again["skipped"], again["snippets"]) == (0, 1, 0)
    info = json.loads(run_cli("info", "--json", home=home).stdout)
    assert info["snippets"] == first["snippets"]


def test_search_json_contract(ingested_archive):
    home, _ = ingested_archive
    out = json.loads(run_cli("search", "une tasse de café", "--lang", "fra_Latn", "-k", "4", "--json",
                             home=home).stdout)
    assert (out["query"], out["lang"], out["space"]) == ("une tasse de café", "fra_Latn", "lite")
    assert [h["rank"] for h in out["hits"]] == [1, 2, 3, 4]
    for hit in out["hits"]:
        assert set(hit) >= {"rank", "score", "snippet_id", "video_id", "video_path", "start", "end"}
        assert 0 <= hit["start"] < hit["end"]
    scores = [h["score"] for h in out["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert out["hits"][0]["video_path"].endswith(("coffee.mp4", "reel-reading.mp4"))


def test_search_errors_are_one_clear_line(ingested_archive):
    home, _ = ingested_archive
    proc = run_cli("search", "a cat", "--lang", "fra_Latm", home=home, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: unknown language 'fra_Latm'") and "fra_Latn" in proc.stderr
    proc = run_cli("--space", "nope", "search", "a cat", home=home, check=False)
    assert proc.returncode == 1 and "unknown concept space 'nope'" in proc.stderr


def test_readable_table(ingested_archive):
    home, _ = ingested_archive
    out = run_cli("search", "a motorcycle", "-k", "2", home=home).stdout.splitlines()
    assert out[0].startswith("2 hits for 'a motorcycle'")
    assert "motorcycle.mp4" in out[1] and "00:0" in out[1]


def test_query_layer_through_the_cli(ingested_archive):
    home, _ = ingested_archive
    out = json.loads(run_cli("search", "a band playing electric guitars on stage", "-k", "2",
                             "--summaries", "--json", home=home).stdout)
    assert (out["lang"], out["lang_source"]) == ("eng_Latn", "detected")  # lite needs no code, still reports it
    assert out["detected_language"]["code"] == "eng_Latn"
    top = out["hits"][0]
    assert top["video_path"].endswith("concert.mp4") and top["snippet_id"] in top["snippet_ids"]
    assert top["summary"]["kind"] == "labels" and "not a caption" in top["summary"]["text"]
    # tags filter, then query by example from a hit
    video_id = top["video_id"]
    assert run_cli("tag", str(video_id), "live", "music", home=home).stdout.split() == ["live", "music"]
    tagged = json.loads(run_cli("search", "a cat", "--tag", "live", "--json", home=home).stdout)
    assert {h["video_id"] for h in tagged["hits"]} == {video_id}
    like = json.loads(run_cli("search", "--like", str(top["snippet_id"]), "-k", "3", "--snippets",
                              "--json", home=home).stdout)
    assert top["snippet_id"] not in [h["snippet_id"] for h in like["hits"]]
    assert like["hits"][0]["video_id"] == video_id  # the concert's other snippets look most alike
    first = json.loads(run_cli("summarize", str(top["snippet_id"]), "--lang", "fra_Latn", "--json",
                               home=home).stdout)
    again = json.loads(run_cli("summarize", str(top["snippet_id"]), "--lang", "fra_Latn", "--json",
                               home=home).stdout)
    assert first["kind"] == "labels" and (first["cached"], again["cached"]) == (False, True)
    assert again["text"] == first["text"]
