from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from indexer.decode import iter_frames, iter_snippets, probe
from samples.footage import write_video
from tests.conftest import moving_frames, write_picture, write_rotated_video, write_vfr_video
from vidsonar.errors import DecodeError, NoVideoStreamError, StillImageError


def test_constant_rate_video_gives_exact_windows(tmp_path):
    path = write_video(tmp_path / "cfr.mp4", moving_frames(120), fps=12)  # 10 s
    snippets = list(iter_snippets(path, window=4, frames=8, short_side=64))
    assert [(s.window.start, s.window.end) for s in snippets] == [(0, 4), (4, 8), (8, 10)]
    assert all(s.frames.shape == (8, 64, 96, 3) for s in snippets)
    # frames differ within a snippet: they are really sampled across it
    assert len({s.frames[i].tobytes() for s in snippets for i in range(8)}) > 20


def test_video_shorter_than_a_window_is_one_snippet(tmp_path):
    path = write_video(tmp_path / "short.mp4", moving_frames(18), fps=12)  # 1.5 s
    (only,) = list(iter_snippets(path, window=4, short_side=64))
    assert (only.window.start, only.window.end) == (0, Fraction(3, 2))
    assert only.frames.shape[0] == 8


def test_variable_frame_rate_uses_timestamps(tmp_path):
    # 1 s at 2 fps, then 3 s at 30 fps: frame index / fps would put time codes wrong
    times = [Fraction(i, 2) for i in range(2)] + [1 + Fraction(i, 30) for i in range(90)]
    path = write_vfr_video(tmp_path / "vfr.mp4", times)
    snippets = list(iter_snippets(path, window=2, frames=8, short_side=64))
    assert [s.window.start for s in snippets] == [0, 2]
    assert snippets[0].window.end == 2
    assert abs(snippets[1].window.end - 4) < Fraction(1, 500)  # last pts + last frame gap (ms pts)
    first = snippets[0].frames
    # targets at 0.125..0.875 s all show the first frame (the next comes at 0.5 s)
    assert np.array_equal(first[0], first[1])


def test_odd_sizes_are_scaled_to_the_short_side(tmp_path):
    path = write_video(tmp_path / "odd.mp4", moving_frames(24, w=178, h=98), fps=12, codec="mpeg4")
    (s,) = list(iter_snippets(path, short_side=49))
    assert s.frames.shape[1] == 49 and s.frames.shape[2] in (88, 89)


def test_rotation_metadata_is_applied_like_ffmpeg(tmp_path):
    import imageio_ffmpeg
    rotated = write_rotated_video(tmp_path)
    (s,) = list(iter_snippets(rotated, short_side=64))
    assert s.frames.shape[1:3] == (96, 64) and s.rotation in (90, 270)
    # ffmpeg's own autorotation is the reference for which way is up
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(rotated),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    ref = np.frombuffer(raw, np.uint8).reshape(96, 64, 3).astype(int)
    ours = s.frames[0].astype(int)
    assert np.abs(ours - ref).mean() < np.abs(np.rot90(ours, 2) - ref).mean()


@pytest.mark.slow
def test_every_container_of_the_real_sample_decodes():
    import iscc_samples
    for path in iscc_samples.videos():
        snippets = list(iter_snippets(path, short_side=64))
        end = float(snippets[-1].window.end)
        expected = 5.0 if path.suffix == ".gif" else 60.0
        assert abs(end - expected) < 1.0, (path.name, end)


def test_bad_files_fail_with_clear_errors(bad_files):
    cases = {"empty": (DecodeError, "empty file"), "text": (DecodeError, "not a readable media"),
             "audio_only": (NoVideoStreamError, "no video stream"),
             "truncated": (DecodeError, "not a readable media")}
    for name, (error, words) in cases.items():
        with pytest.raises(error, match=words) as info:
            list(iter_snippets(bad_files[name]))
        assert str(bad_files[name]) in str(info.value)


@pytest.mark.parametrize("name, fmt, kind", [
    ("photo.mp4", "JPEG", "jpeg"),  # FFmpeg probes the bytes: jpeg_pipe, whatever the name
    ("photo.jpg", "JPEG", "jpeg"),  # by its own name: the image2 demuxer
    ("photo.png", "PNG", "png"), ("photo.webp", "WEBP", "webp"), ("photo.bmp", "BMP", "bmp"),
    ("still.gif", "GIF", "gif"),  # a GIF of one frame
])
def test_a_still_image_is_refused_by_name_not_decoded_as_a_short_video(tmp_path, name, fmt, kind):
    path = write_picture(tmp_path / name, moving_frames(1), fmt)
    for read in (probe, lambda p: list(iter_snippets(p))):
        with pytest.raises(StillImageError, match=rf"a still image \({kind}\), not a video") as info:
            read(path)
        assert str(info.value).startswith(f"{path}: ")


def _raw_mjpeg(path, frames):
    """JPEGs one after another: FFmpeg reads them as one Motion JPEG stream (jpeg_pipe)."""
    import io
    from PIL import Image
    parts = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, "JPEG")
        parts.append(buf.getvalue())
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.parametrize("make, seconds", [
    (lambda d: write_video(d / "camera.avi", moving_frames(24), fps=12, codec="mjpeg"), 2),
    (lambda d: write_picture(d / "moving.gif", moving_frames(20), "GIF", ms=100), 2),
    (lambda d: write_picture(d / "moving.png", moving_frames(20), "PNG", ms=100), 2),  # APNG
    (lambda d: _raw_mjpeg(d / "stream.mjpeg", moving_frames(25)), 1),  # 25 fps, FFmpeg's guess
])
def test_moving_pictures_in_image_codecs_still_decode(tmp_path, make, seconds):
    """The rule is one frame in a picture format, not the codec: MJPEG in an AVI, an animated
    GIF or PNG and a raw MJPEG stream are footage."""
    path = make(tmp_path)
    snippets = list(iter_snippets(path, window=1, frames=4, short_side=32))
    assert snippets[-1].window.end == seconds and len(snippets) == seconds
    assert len({s.frames[0].tobytes() for s in snippets} | {snippets[0].frames[-1].tobytes()}) > 1


@pytest.mark.parametrize("suffix, codec, kind", [(".avi", "mjpeg", "jpeg"), (".mp4", "libx264", "h264")])
def test_one_frame_in_a_video_container_is_a_still_image_too(tmp_path, suffix, codec, kind):
    """The rule is what the file holds: one picture wrapped in a video container (one frame,
    no packet rejected) is refused as a picture file is, by both of ingestion's readers, with
    advice that works for it (an .avi is no image example); two frames are footage."""
    path = write_video(tmp_path / f"one{suffix}", moving_frames(1), fps=12, codec=codec)
    for read in (lambda p: list(iter_snippets(p)), lambda p: list(iter_frames(p))):
        with pytest.raises(StillImageError, match=rf"a still image \(one {kind} frame in its "
                                                  rf"\{suffix} container\), not a video") as info:
            read(path)
        assert str(info.value).startswith(f"{path}: ") and "frame.png" in str(info.value)
    two = write_video(tmp_path / f"two{suffix}", moving_frames(2), fps=12, codec=codec)
    assert len(list(iter_snippets(two, window=1, frames=4, short_side=32))) == 1


def test_an_animated_webp_is_named_rather_than_told_as_no_frames(tmp_path):
    """PyAV's FFmpeg reads an animated WebP as one packet it cannot decode: the error says so,
    naming the format; a PyAV that decodes it ingests it as footage, as an animated GIF."""
    path = write_picture(tmp_path / "moving.webp", moving_frames(6), "WEBP", ms=100)
    try:
        snippets = list(iter_snippets(path, window=1, frames=4, short_side=32))
    except DecodeError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: an animated WebP, which the FFmpeg of this PyAV")
        assert "cannot decode" in message and "ffmpeg -i" in message
    else:
        assert len({s.frames[0].tobytes() for s in snippets} | {snippets[0].frames[-1].tobytes()}) > 1


def test_probe_reports_geometry(tmp_path):
    path = write_video(tmp_path / "p.mp4", moving_frames(24, w=96, h=64), fps=12)
    info = probe(path)
    assert (info.width, info.height, info.codec) == (96, 64, "h264")
    assert info.fps == pytest.approx(12)


def test_closing_a_generator_early_after_torchvision_does_not_deadlock(tmp_path):
    """torchvision turns PyAV's log callback on; closing a decoder mid-stream then deadlocked
    (a decoder thread logging waits for the GIL the freeing main thread holds). Runs in a
    subprocess so that a regression fails by timeout instead of hanging the suite."""
    import sys
    path = write_video(tmp_path / "c.mp4", moving_frames(48, w=96, h=64), fps=6)
    script = ("import sys, torchvision; from indexer.decode import iter_snippets\n"
              f"for _ in range(150): next(iter_snippets({str(path)!r}, 1.0, 4, 224))\n"
              "print('done')")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]


def test_one_swscale_thread_gives_the_pixels_of_ffmpegs_threads(tmp_path, monkeypatch):
    """SWSCALE_THREADS is a speed choice only: the frames are those of swscale's own threading
    (0: one thread per core), at a size that splits into slices unevenly."""
    import indexer.decode as decode
    path = write_video(tmp_path / "clip.mp4", moving_frames(36, w=320, h=240), fps=12)
    ours = [s.frames for s in iter_snippets(path, window=1, frames=4, short_side=112)]
    monkeypatch.setattr(decode, "SWSCALE_THREADS", 0)
    theirs = [s.frames for s in iter_snippets(path, window=1, frames=4, short_side=112)]
    assert len(ours) == 3 and all(f.shape == (4, 112, 149, 3) for f in ours)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_scaled_size_holds_the_long_side_of_strips_only():
    from encoders.frames import MAX_ASPECT, scaled_size
    assert scaled_size(320, 240, 224) == (299, 224) and scaled_size(1920, 1080, 224) == (398, 224)
    assert scaled_size(224 * MAX_ASPECT, 224, 224) == (896, 224)  # at the limit: as before
    assert scaled_size(4000, 64, 224) == (896, 14)  # not 14000 x 224
    assert scaled_size(8, 16384, 224, least=2) == (2, 896)


def test_a_strip_video_decodes_at_a_bounded_size_and_encodes(tmp_path):
    """16384 x 8 at a 224-pixel short side would be 460,000 pixels long: gigabytes a snippet."""
    from encoders.frames import center_crop
    frames = [np.full((8, 16384, 3), 40 * i % 256, np.uint8) for i in range(24)]
    path = write_video(tmp_path / "strip.mp4", frames, fps=12)
    (snippet,) = list(iter_snippets(path, 2.0, 8, 224))
    assert snippet.frames.shape == (8, 2, 896, 3)
    assert center_crop(snippet.frames, 224).shape == (8, 224, 224, 3)  # padded, as encoders see it


def test_frames_larger_than_the_limit_are_refused_by_name(tmp_path, monkeypatch):
    import indexer.decode as decode
    path = write_video(tmp_path / "big.mp4", moving_frames(12, 96, 64), fps=12)
    monkeypatch.setattr(decode, "MAX_PIXELS", 96 * 64 - 1)
    with pytest.raises(DecodeError, match=r"frames of 96x64 pixels, more than"):
        list(iter_snippets(path, 4, 8, 224))


def test_a_path_that_is_not_a_regular_file_says_so(tmp_path):
    with pytest.raises(DecodeError, match="not a regular file"):
        probe(tmp_path)


@pytest.mark.parametrize("codec, name", [("libsvtav1", "av1"), ("libvpx-vp9", "vp9")])
def test_codec_is_the_format_not_the_decoder(tmp_path, codec, name):
    """PyAV decodes AV1 with libdav1d: the stream page must still see "av1" and serve it as is."""
    import av

    from indexer.previews import browser_playable
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV build has no {codec} encoder to make the clip with")
    path = write_video(tmp_path / "clip.webm", moving_frames(24, 64, 64), fps=12, codec=codec)
    assert probe(path).codec == name and browser_playable(path)


@pytest.mark.parametrize("w,h,one_thread", [(320, 240, True), (640, 480, True), (854, 480, False)])
def test_small_frames_decode_on_one_thread(tmp_path, w, h, one_thread):
    """Frame threads only for frames past SINGLE_THREAD_PIXELS (a speed choice, see decode.py)."""
    import indexer.decode as decode
    path = write_video(tmp_path / "clip.mp4", moving_frames(4, w=w, h=h), fps=12)
    with decode.pyav().open(str(path)) as container:
        stream = container.streams.video[0]
        decode._set_threads(stream)
        assert (stream.codec_context.thread_count == 1) is one_thread
        assert (stream.thread_type.name == "AUTO") is not one_thread


@pytest.mark.parametrize("w,h,side,rotated", [(320, 240, 224, False), (176, 144, 224, False), (96, 64, 60, True)])
def test_sources_kept_as_decoded_give_the_frames_of_eager_scaling(tmp_path, monkeypatch, w, h, side, rotated):
    """LAZY_SCALE_PIXELS is a speed choice only: frames a window samples are scaled when
    sampled, to the same pixels as frames scaled on arrival; with shots, the cuts agree too."""
    import indexer.decode as decode
    from indexer.shots import iter_shot_snippets, make_detector
    path = (write_rotated_video(tmp_path) if rotated else
            write_video(tmp_path / "clip.mp4", moving_frames(60, w=w, h=h), fps=12))
    kept = []
    real_init = decode.ScaledFrame.__init__

    def spy(self, frame, turn, scaler, scaled=True):
        kept.append(scaled)
        real_init(self, frame, turn, scaler, scaled)
    monkeypatch.setattr(decode.ScaledFrame, "__init__", spy)

    def read():
        kept.clear()
        grid = [s.frames for s in iter_snippets(path, window=1, frames=4, short_side=side)]
        segs: list = []
        cut = [s.frames for s in iter_shot_snippets(path, make_detector("scenedetect", None, 12.0), 1, 4, side,
                                                    probe(path), segs)]
        return grid + cut, segs[0].shots, list(kept)

    lazy, lazy_shots, lazy_kept = read()
    monkeypatch.setattr(decode, "LAZY_SCALE_PIXELS", 0)
    eager, eager_shots, eager_kept = read()
    assert not any(lazy_kept) and all(eager_kept) and eager_kept  # the paths compared both ran
    assert lazy_shots == eager_shots and len(lazy) == len(eager) > 2
    for a, b in zip(lazy, eager):
        np.testing.assert_array_equal(a, b)


def test_a_relative_name_with_a_colon_is_a_file_not_a_protocol(tmp_path, monkeypatch):
    """``vidsonar ingest 2024-01-01T10:30:00.mp4`` (a camera's time-stamped name, given from
    its folder): FFmpeg read '2024-01-01T10' as a URL protocol and the file failed with
    'Protocol not found'."""
    write_video(tmp_path / "2024-01-01T10:30:00.mp4", moving_frames(24, seed=3), fps=12)
    monkeypatch.chdir(tmp_path)
    assert probe(Path("2024-01-01T10:30:00.mp4")).duration == pytest.approx(2.0, abs=0.1)
    assert len(list(iter_snippets(Path("2024-01-01T10:30:00.mp4")))) == 1
