"""Bad input to the CLI, in process: each answered with one line naming the option or the
problem (click's usage error, exit 2, or ``error: ...``, exit 1), never a traceback; bounds as
the HTTP API's validation sets them. And ``ingest``'s exit status 3 when files failed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from api.cli import FILES_FAILED, main
from encoders.registry import get_space_config
from search.archive import Archive
from tests.fakes import HASH_SPACE, add_video, hash_space
from tests.test_api import write_clip

BIG = "99999999999999999999"  # past int64


@pytest.fixture(scope="module", autouse=True)
def registered_hash_space():
    with hash_space(HASH_SPACE):
        yield


@pytest.fixture(scope="module")
def lite_home(tmp_path_factory):
    """A lite archive of one video with random vectors: summaries there are concept labels, the
    case where a language code was not checked. Nothing here loads a model."""
    home = tmp_path_factory.mktemp("cli-input")
    vectors = np.random.default_rng(0).standard_normal((3, get_space_config("lite").dim))
    video_id, snippet_ids = add_video(Archive(home, "lite").catalog, vectors, "lite", path="/v/a.mp4")
    return home, video_id, int(snippet_ids[0])


def cli(home, *args: str, space: str = "lite"):
    return CliRunner().invoke(main, ["--home", str(home), "--space", space, *args])


def assert_usage_error(result, *words: str) -> None:
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.mark.parametrize("args, name", [
    (["search", "--like", BIG], "'--like'"),
    (["search", "cat", "--video-id", BIG], "'--video-id'"),
    (["search", "--like", "-1"], "'--like'"),
    (["summarize", BIG], "'SNIPPET_ID'"),
    (["tag", BIG, "foo"], "'VIDEO_ID'"),
    (["tag", BIG], "'VIDEO_ID'"),
    (["delete", BIG], "'VIDEO_ID'"),
])
def test_ids_outside_int64_are_usage_errors(lite_home, args, name):
    assert_usage_error(cli(lite_home[0], *args), name, "0<=x<=9223372036854775807")


@pytest.mark.parametrize("args, name", [
    (["--window", "0"], "'--window'"), (["--window", "-4"], "'--window'"),
    (["--window", "nan"], "'--window'"), (["--window", "inf"], "'--window'"),
    (["--hop", "nan"], "'--hop'"), (["--hop", "-1"], "'--hop'"),
])
def test_ingest_window_and_hop_are_finite_and_positive(tmp_path, args, name):
    assert_usage_error(cli(tmp_path / "home", "ingest", str(tmp_path), *args, space=HASH_SPACE), name)


@pytest.mark.parametrize("shots, words", [("transnetv2", "TransNetV2 threshold must be in (0, 1), got -5"),
                                          ("scenedetect", "scenedetect threshold must be in (0, 255], got -5"),
                                          ("none", "needs a shot detector")])
def test_ingest_checks_the_shot_threshold(tmp_path, shots, words):
    """indexer.shots.validate_detector bounds each detector's threshold before any work."""
    out = cli(tmp_path / "home", "ingest", str(tmp_path), "--shots", shots,
              "--shot-threshold", "-5", space=HASH_SPACE)
    assert out.exit_code == 1 and words in out.output


@pytest.mark.parametrize("args, name", [
    (["--min-duration", "nan"], "'--min-duration'"),
    (["--min-duration", "-5", "--max-duration", "-10"], "'--min-duration'"),
    (["--max-duration", "-1"], "'--max-duration'"),
    (["--max-duration", "inf"], "'--max-duration'"),
    (["--min-duration", "10", "--max-duration", "5"], "--min-duration 10 is above --max-duration 5"),
])
def test_duration_filters_are_checked(lite_home, args, name):
    home, _, snippet = lite_home
    assert_usage_error(cli(home, "search", "--like", str(snippet), *args), name)


def test_unknown_summary_language_is_an_error_as_on_the_api(lite_home):
    home, _, snippet = lite_home
    for args in (["summarize", str(snippet), "--lang", "xx_Yyyy"],
                 ["search", "--like", str(snippet), "--summaries", "--summary-lang", "xx_Yyyy"]):
        out = cli(home, *args)
        assert out.exit_code == 1 and out.output.startswith("error: unknown language 'xx_Yyyy'"), out.output
    good = cli(home, "summarize", str(snippet), "--lang", "fr", "--json")
    assert good.exit_code == 0 and json.loads(good.output)["lang"] == "fra_Latn", good.output


@pytest.mark.parametrize("args, name", [
    (["search", "cat", "--lang", ""], "'--lang'"),
    (["search", "cat", "--summaries", "--summary-lang", " "], "'--summary-lang'"),
    (["summarize", "1", "--lang", ""], "'--lang'"),
])
def test_an_empty_language_is_refused_not_defaulted(lite_home, args, name):
    assert_usage_error(cli(lite_home[0], *args), name, "empty")


def test_tags_of_an_unknown_video_are_an_error(lite_home):
    home, video_id, _ = lite_home
    for args in (["tag", "4242"], ["tag", "4242", "--remove", "x"], ["tag", "4242", "x"]):
        out = cli(home, *args)
        assert out.exit_code == 1 and out.output == "error: no video with id 4242\n", out.output
    assert cli(home, "tag", str(video_id)).exit_code == 0


def test_ingest_exits_3_after_the_full_report_when_files_failed(tmp_path):
    home, clip = tmp_path / "home", write_clip(tmp_path / "red.mp4", (200, 30, 30))
    out = cli(home, "ingest", str(clip), str(tmp_path / "missing.mp4"), "--json", space=HASH_SPACE)
    assert out.exit_code == FILES_FAILED == 3, out.output
    report = json.loads(out.stdout)
    assert report["ingested"] == 1 and [f["path"] for f in report["failed"]] == [str(tmp_path / "missing.mp4")]
    text = cli(home, "ingest", str(tmp_path / "missing.mp4"), space=HASH_SPACE)
    assert text.exit_code == 3 and "failed 1" in text.stdout and "no such file" in text.stderr
    assert cli(home, "ingest", str(clip), space=HASH_SPACE).exit_code == 0  # skipped, nothing failed


def test_ingest_warns_of_folders_without_video_files(tmp_path):
    empty, media = tmp_path / "empty", tmp_path / "media"
    empty.mkdir(), media.mkdir()
    (empty / "notes.txt").write_text("not a video")
    write_clip(media / "red.mp4", (200, 30, 30))
    (tmp_path / "link").symlink_to(media)  # its file is found through the link first
    out = cli(tmp_path / "home", "ingest", str(empty), str(tmp_path / "link"), str(media),
              space=HASH_SPACE)
    assert out.exit_code == 0, out.output
    assert out.stderr.splitlines() == [f"warning: no video files found in {empty}"]
    assert out.stdout.startswith("ingested 1 videos")


def test_still_images_fail_alone_by_name_and_moving_pictures_ingest(tmp_path):
    """A JPEG named .mp4 and a one-frame GIF found in a folder, and a PNG given by name, each
    fail with the reason; the clip, the camera's MJPEG .avi and the animated GIF beside them
    are ingested in the same run."""
    from samples.footage import write_video
    from tests.conftest import moving_frames, write_picture
    media = tmp_path / "media"
    media.mkdir()
    good = [write_clip(media / "red.mp4", (200, 30, 30)),
            write_video(media / "camera.avi", moving_frames(24), fps=12, codec="mjpeg"),
            write_picture(media / "moving.gif", moving_frames(20), "GIF")]
    stills = {write_picture(media / "photo.mp4", moving_frames(1), "JPEG"): "jpeg",
              write_picture(media / "logo.gif", moving_frames(1), "GIF"): "gif",
              write_picture(tmp_path / "shot.png", moving_frames(1), "PNG"): "png"}
    out = cli(tmp_path / "home", "ingest", str(media), str(tmp_path / "shot.png"), "--json",
              space=HASH_SPACE)
    assert out.exit_code == FILES_FAILED, out.output
    report = json.loads(out.stdout)
    assert report["ingested"] == len(good)
    failed = {f["path"]: f["error"] for f in report["failed"]}
    assert set(failed) == {str(p) for p in stills}
    for path, kind in stills.items():
        assert failed[str(path)].startswith(f"{path}: a still image ({kind}), not a video")
    videos = Archive(tmp_path / "home", HASH_SPACE).catalog.videos()
    assert {v.path: v.status for v in videos} == {**{str(p): "ok" for p in good},
                                                   **{str(p): "failed" for p in stills}}


def test_links_to_nothing_in_a_folder_fail_alone_by_name(tmp_path):
    """A link loop (a.mp4 -> b.mp4 -> a.mp4) and a dangling link beside a good clip: the clip is
    ingested, each link fails naming what it is (not "no such file"), and the failures are in
    the catalog. A loop used to end the whole ingest with a traceback from Path.resolve."""
    home, media = tmp_path / "home", tmp_path / "media"
    write_clip(media / "red.mp4", (200, 30, 30))
    (media / "a.mp4").symlink_to(media / "b.mp4")
    (media / "b.mp4").symlink_to(media / "a.mp4")
    (media / "gone.mp4").symlink_to(media / "nothing-here.mp4")
    out = cli(home, "ingest", str(media), "--json", space=HASH_SPACE)
    assert out.exit_code == FILES_FAILED, out.output
    report = json.loads(out.stdout)
    assert report["ingested"] == 1
    errors = {f["path"]: f["error"] for f in report["failed"]}
    assert set(errors) == {str(media / n) for n in ("a.mp4", "b.mp4", "gone.mp4")}
    assert "link loop" in errors[str(media / "a.mp4")], errors
    assert "nothing-here.mp4" in errors[str(media / "gone.mp4")] and "does not exist" in errors[str(media / "gone.mp4")]
    failed = Archive(home, HASH_SPACE).catalog.videos(status="failed")
    assert sorted(v.path for v in failed) == sorted(errors)


def test_a_relative_path_is_recorded_absolute(tmp_path, monkeypatch):
    """``vidsonar ingest clips/red.mp4`` recorded the video at 'clips/red.mp4': a server or a
    thumbnail repair started from another folder then found the file "gone" (and re-ingesting
    it, as that message says, skipped it as unchanged). The catalog holds absolute paths."""
    home = tmp_path / "home"
    clip = write_clip(tmp_path / "clips" / "red.mp4", (200, 30, 30))
    (tmp_path / "clips" / "bad.mp4").write_bytes(b"not a video" * 10)
    monkeypatch.chdir(tmp_path)
    out = cli(home, "ingest", "clips/red.mp4", "clips/bad.mp4", "--json", space=HASH_SPACE)
    assert out.exit_code == FILES_FAILED and json.loads(out.stdout)["ingested"] == 1, out.output
    videos = {v.status: v.path for v in Archive(home, HASH_SPACE).catalog.videos()}
    assert videos == {"ok": str(clip), "failed": str(tmp_path / "clips" / "bad.mp4")}


def test_the_video_ids_that_tag_and_delete_take_are_shown(lite_home):
    """``tag`` and ``delete`` take a video id, which the CLI's text output showed nowhere (the
    delete error sent the user to ``info``, which lists no video): each hit names its video."""
    home, video_id, snippet_id = lite_home
    out = cli(home, "search", "--like", str(snippet_id), "-k", "1")
    assert out.exit_code == 0 and f"[video {video_id}, snippet " in out.output, out.output
    missing = cli(home, "delete", "4242")
    assert missing.exit_code == 1 and "info" not in missing.output and "vidsonar search" in missing.output
