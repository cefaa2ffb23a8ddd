"""Thumbnails that went missing or were cut short are made again from the video files, byte for
byte as ingestion wrote them: on demand by the server's thumbnail route, all at once by
`vidsonar thumbs --repair`, and counted by `vidsonar info --check-thumbnails` and
`GET /api/info?check_thumbnails=true`; never from a file that no longer holds the footage."""

from __future__ import annotations

import errno
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.cli import main
from api.server import create_app
from indexer.decode import iter_snippets
from indexer.frame_picks import FramePick, frames_at
from search.archive import Archive
from storage.ids import pack_snippet_id
from tests.conftest import moving_frames, write_rotated_video, write_vfr_video
from tests.test_api import KEY, SPACE, settings_for

pytestmark = pytest.mark.usefixtures("registered_hash_space")


def write_gop_video(path: Path, seconds: float, fps: int = 12, keyint: int = 6) -> Path:
    """H.264 with a keyframe every ``keyint`` frames and B-frames, so a seek lands mid-video."""
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.options = {"preset": "veryfast", "x264-params": f"keyint={keyint}:min-keyint={keyint}:mbtree=0"}
        for img in moving_frames(int(seconds * fps)):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def thumbs_of(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home / "thumbs")): p.read_bytes()
            for p in sorted((home / "thumbs").rglob("*.jpg"))}


def ingest(home: Path, paths: list[Path], **options) -> Archive:
    archive = Archive(home, SPACE)
    report = archive.ingestor(**options).ingest(paths)
    assert report.ingested == len(paths) and not report.failed, report.failed
    return archive


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    from samples.footage import write_video
    d = tmp_path_factory.mktemp("thumb-media")
    # a gap from 1.9 to 2.6 s: the window [2, 3) samples its middle (2.5625 s) before its first
    # frame, so it takes that frame (2.6 s), not the one on screen then (1.9 s)
    gap = [Fraction(i, 10) for i in range(20)] + [Fraction(26 + i, 10) for i in range(15)]
    return {"scaled": write_video(d / "scaled.mp4", moving_frames(36), fps=12),
            "rotated": write_rotated_video(d),
            "gap": write_vfr_video(d / "gap.mp4", gap),
            "gop": write_gop_video(d / "gop.mp4", 6.0)}


@pytest.mark.parametrize("options", [
    {"window": 1.0},  # the default: shot-aware windows
    {"window": 1.0, "shots": "none"},
    {"window": 2.0, "hop": 1.0},  # overlapping windows on the fixed grid
], ids=["shots", "grid", "overlap"])
def test_repair_makes_the_thumbnails_ingestion_wrote(tmp_path, media, options):
    home = tmp_path / "home"
    archive = ingest(home, list(media.values()), **options)
    written = thumbs_of(home)
    assert len(written) == archive.catalog.counts()["snippets"] > 8
    shutil.rmtree(home / "thumbs")
    (home / "thumbs" / "1").mkdir(parents=True)  # a video's folder there, but empty

    out = CliRunner().invoke(main, ["--home", str(home), "--space", SPACE, "thumbs", "--repair",
                                    "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"missing": len(written), "damaged": 0, "made": len(written),
                                      "failed": []}
    assert thumbs_of(home) == written
    assert not list((home / "thumbs").rglob(".*.tmp"))  # written atomically, nothing left over


def as_mpeg_ts(src: Path) -> Path:
    """The same packets in MPEG-TS, which has no index: a seek there may land past its time."""
    import av
    dst = src.with_suffix(".ts")
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        outs = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = outs
                out.mux(packet)
    return dst


@pytest.mark.parametrize("container", ["mp4", "ts"])
def test_seeking_decodes_the_frames_walking_does(media, container):
    path = media["gop"] if container == "mp4" else as_mpeg_ts(media["gop"])
    snippets = list(iter_snippets(path, window=Fraction(1, 2), short_side=48))
    picks = [FramePick(float(s.window.frame_times[4]), float(s.window.start)) for s in snippets]
    picks += [FramePick(float(s.window.frame_times[1])) for s in reversed(snippets)]  # backwards
    walked = dict(frames_at(path, picks, 48, seek_seconds=float("inf")))
    sought = dict(frames_at(path, picks, 48, seek_seconds=0.0))
    assert sorted(walked) == sorted(sought) == list(range(len(picks)))
    for i, pick in enumerate(picks):
        assert np.array_equal(walked[i], sought[i]), pick
    for i, s in enumerate(snippets):
        assert np.array_equal(walked[i], s.frames[4])  # what ingestion's window sampled


def test_the_route_remakes_a_missing_thumbnail_and_404s_only_without_the_video(tmp_path, media):
    home = tmp_path / "home"
    clips = tmp_path / "clips"
    clips.mkdir()
    kept, lost = shutil.copy(media["scaled"], clips / "kept.mp4"), shutil.copy(media["gop"], clips / "lost.mp4")
    archive = ingest(home, [Path(kept), Path(lost)], window=1.0)
    (kept_id, lost_id) = [v.id for v in archive.catalog.videos("ok")]
    written = thumbs_of(home)
    shutil.rmtree(home / "thumbs")
    Path(lost).unlink()
    with TestClient(create_app(settings_for(home))) as client:
        remade = client.get(f"/api/snippets/{pack_snippet_id(kept_id, 1)}/thumbnail",
                            headers={"X-API-Key": KEY})
        assert remade.status_code == 200 and remade.headers["content-type"] == "image/jpeg"
        assert remade.content == written[f"{kept_id}/1.jpg"]
        assert (home / "thumbs" / str(kept_id) / "1.jpg").read_bytes() == remade.content
        gone = client.get(f"/api/snippets/{pack_snippet_id(lost_id, 1)}/thumbnail",
                          headers={"X-API-Key": KEY})
        assert gone.status_code == 404
        assert "lost.mp4" in gone.json()["detail"] and "gone" in gone.json()["detail"]
        none = client.get(f"/api/snippets/{pack_snippet_id(kept_id, 999)}/thumbnail",
                          headers={"X-API-Key": KEY})
        assert none.status_code == 404 and "no snippet" in none.json()["detail"]


def test_repair_and_info_report_missing_thumbnails_and_the_video_that_failed(tmp_path, media):
    home = tmp_path / "home"
    clips = tmp_path / "clips"
    clips.mkdir()
    paths = [Path(shutil.copy(media[name], clips / f"{name}.mp4")) for name in ("scaled", "gop")]
    archive = ingest(home, paths, window=1.0)
    ids = {Path(v.path).name: v.id for v in archive.catalog.videos("ok")}
    written = thumbs_of(home)
    for name in ("0.jpg", "2.jpg"):
        (home / "thumbs" / str(ids["scaled.mp4"]) / name).unlink()
    shutil.rmtree(home / "thumbs" / str(ids["gop.mp4"]))
    gop_count = sum(1 for k in written if k.startswith(f"{ids['gop.mp4']}/"))
    paths[1].unlink()  # the gop video's file is gone: it fails, alone
    cli = ["--home", str(home), "--space", SPACE]

    info = json.loads(CliRunner().invoke(main, [*cli, "info", "--json"]).output)
    assert info["missing_thumbnails"] is None  # not counted unless asked: it walks every folder
    checked = CliRunner().invoke(main, [*cli, "info", "--check-thumbnails"])
    assert checked.exit_code == 0, checked.output
    assert f"thumbs:   {2 + gop_count} missing, 0 damaged" in checked.output

    out = CliRunner().invoke(main, [*cli, "thumbs", "--repair"])
    assert out.exit_code == 3, out.output
    assert f"made 2 of {2 + gop_count} thumbnails ({2 + gop_count} missing, 0 damaged); " \
           "1 videos failed" in out.output
    assert f"video {ids['gop.mp4']} ({paths[1]})" in out.output and "gone" in out.output
    assert thumbs_of(home) == {k: v for k, v in written.items() if k.startswith(f"{ids['scaled.mp4']}/")}
    after = json.loads(CliRunner().invoke(main, [*cli, "info", "--json", "--check-thumbnails"]).output)
    assert after["missing_thumbnails"] == gop_count


def test_a_damaged_thumbnail_is_counted_remade_and_never_served(tmp_path, media):
    """A JPEG cut short (a crash while a thumbnail was written in place; an empty file after a
    power loss) is no thumbnail: counted as damaged, made again, and not sent as it is."""
    home = tmp_path / "home"
    archive = ingest(home, [media["scaled"]], window=1.0)
    video_id = archive.catalog.videos("ok")[0].id
    written = thumbs_of(home)
    folder = home / "thumbs" / str(video_id)
    (folder / "0.jpg").write_bytes(written[f"{video_id}/0.jpg"][:300])
    (folder / "1.jpg").write_bytes(b"")
    cli = ["--home", str(home), "--space", SPACE]
    counted = CliRunner().invoke(main, [*cli, "thumbs", "--json"])
    assert json.loads(counted.output) == {"missing": 0, "damaged": 2, "videos": 1}
    with TestClient(create_app(settings_for(home))) as client:
        info = client.get("/api/info", headers={"X-API-Key": KEY}).json()
        assert info["missing_thumbnails"] is None and info["damaged_thumbnails"] is None
        checked = client.get("/api/info", params={"check_thumbnails": True},
                             headers={"X-API-Key": KEY}).json()
        assert (checked["missing_thumbnails"], checked["damaged_thumbnails"]) == (0, 2)
        sent = client.get(f"/api/snippets/{pack_snippet_id(video_id, 0)}/thumbnail",
                          headers={"X-API-Key": KEY})
        assert sent.status_code == 200 and sent.content == written[f"{video_id}/0.jpg"]
    out = CliRunner().invoke(main, [*cli, "thumbs", "--repair", "--json"])
    assert json.loads(out.output) == {"missing": 0, "damaged": 1, "made": 1, "failed": []}
    assert thumbs_of(home) == written
    after = json.loads(CliRunner().invoke(main, [*cli, "info", "--json", "--check-thumbnails"]).output)
    assert (after["missing_thumbnails"], after["damaged_thumbnails"]) == (0, 0)


def test_the_info_route_counts_missing_thumbnails_when_asked(tmp_path, media):
    """`GET /api/info?check_thumbnails=true` means what `vidsonar info --check-thumbnails` does."""
    home = tmp_path / "home"
    archive = ingest(home, [media["scaled"]], window=1.0)
    video_id = archive.catalog.videos("ok")[0].id
    for name in ("0.jpg", "2.jpg"):
        (home / "thumbs" / str(video_id) / name).unlink()
    with TestClient(create_app(settings_for(home))) as client:
        key = {"X-API-Key": KEY}
        assert client.get("/api/info", headers=key).json()["missing_thumbnails"] is None
        asked = client.get("/api/info", params={"check_thumbnails": "true"}, headers=key).json()
        assert asked["missing_thumbnails"] == 2
        assert client.get("/api/info", params={"check_thumbnails": "maybe"}, headers=key).status_code == 422
        param = next(p for p in client.get("/openapi.json").json()["paths"]["/api/info"]["get"]
                     ["parameters"] if p["name"] == "check_thumbnails")
        assert param["in"] == "query" and "missing or damaged" in param["description"]


def test_a_file_holding_other_bytes_of_the_same_size_is_refused_and_a_touched_one_is_not(tmp_path):
    """Repair tells the file ingested as ingestion does: size, then the size and mtime it
    recorded, then the SHA-256. Other footage padded to the ingested size would otherwise give
    thumbnails of the wrong pictures."""
    from samples.footage import write_video
    clips = tmp_path / "clips"
    ingested = write_video(clips / "clip.mp4", moving_frames(36, seed=1), fps=12)
    other = write_video(tmp_path / "other.mp4", moving_frames(30, seed=2), fps=12)
    assert other.stat().st_size < ingested.stat().st_size
    home = tmp_path / "home"
    archive = ingest(home, [ingested], window=1.0, shots="none")
    video_id = archive.catalog.videos("ok")[0].id
    written, original = thumbs_of(home), ingested.read_bytes()
    ingested.write_bytes(other.read_bytes().ljust(len(original), b"\0"))
    assert ingested.stat().st_size == len(original)
    shutil.rmtree(home / "thumbs")
    cli = ["--home", str(home), "--space", SPACE]

    out = CliRunner().invoke(main, [*cli, "thumbs", "--repair", "--json"])
    assert out.exit_code == 3, out.output
    failed = json.loads(out.output)["failed"]
    assert [f["video_id"] for f in failed] == [video_id] and failed[0]["made"] == 0
    assert "other bytes" in failed[0]["error"] and "re-ingest" in failed[0]["error"]
    assert thumbs_of(home) == {}  # no thumbnail of the wrong footage
    with TestClient(create_app(settings_for(home))) as client:
        resp = client.get(f"/api/snippets/{pack_snippet_id(video_id, 0)}/thumbnail",
                          headers={"X-API-Key": KEY})
        assert resp.status_code == 422 and "other bytes" in resp.json()["detail"], resp.text

    ingested.write_bytes(original)  # the bytes ingested again, with a new mtime: hashed, taken
    os.utime(ingested, ns=(1, 10**18))
    out = CliRunner().invoke(main, [*cli, "thumbs", "--repair", "--json"])
    assert out.exit_code == 0, out.output
    assert thumbs_of(home) == written


def damage_tail_in_place(path: Path) -> None:
    """Zero the second half of an AVI's frames, keeping its size and mtime (a disk's bit rot):
    the file still passes as the one ingested, and decoding fails part-way."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    movi, idx1 = data.find(b"movi"), data.find(b"idx1")
    half = movi + (idx1 - movi) // 2
    data[half:idx1 - 8] = bytes(idx1 - 8 - half)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_video_that_fails_part_way_counts_the_thumbnails_it_made(tmp_path, media):
    from samples.footage import write_video
    camera = write_video(tmp_path / "clips" / "camera.avi", moving_frames(48), fps=12, codec="mjpeg")
    home = tmp_path / "home"
    archive = ingest(home, [camera, media["scaled"]], window=1.0, shots="none")
    ids = {Path(v.path).name: v.id for v in archive.catalog.videos("ok")}
    damage_tail_in_place(camera)
    shutil.rmtree(home / "thumbs")

    out = CliRunner().invoke(main, ["--home", str(home), "--space", SPACE, "thumbs", "--repair", "--json"])
    assert out.exit_code == 3, out.output
    report = json.loads(out.output)
    on_disk = thumbs_of(home)
    made_for_camera = sum(1 for k in on_disk if k.startswith(f"{ids['camera.avi']}/"))
    assert 0 < made_for_camera < 4  # some made before decoding failed
    assert report["made"] == len(on_disk)
    assert report["failed"][0]["video_id"] == ids["camera.avi"]
    assert report["failed"][0]["made"] == made_for_camera


def test_thumbnails_are_written_whole_or_not_at_all_on_a_full_disk(tmp_path):
    """Ingestion writes a video's thumbnails with ``atomic_write_files``: all temporary files
    written and synced, then renamed. A disk that fills part-way leaves every thumbnail as it
    was (written in place, the first would be cut at the last page that fitted)."""
    from storage.atomic import FILE_MODE, atomic_write_files
    from tests.full_disk import PAGE, full_tmpfs
    with full_tmpfs(tmp_path / "thumbs", room_pages=3) as thumbs:
        folder = thumbs / "7"
        old = {folder / f"{i}.jpg": b"old %d" % i for i in range(2)}  # a page each
        folder.mkdir()
        for path, data in old.items():
            path.write_bytes(data)
        new = {path: os.urandom(PAGE + 1000) for path in old}  # two pages each; one is left
        with pytest.raises(OSError) as info:
            atomic_write_files(new)
        assert info.value.errno == errno.ENOSPC
        assert {path: path.read_bytes() for path in old} == old
        assert sorted(os.listdir(folder)) == ["0.jpg", "1.jpg"]  # no temporary file left
        (thumbs / "filler").unlink()
        atomic_write_files(new)
        assert {path: path.read_bytes() for path in new} == new
        assert sorted(os.listdir(folder)) == ["0.jpg", "1.jpg"]
        assert all(path.stat().st_mode & 0o777 == FILE_MODE for path in new)
