"""Decode videos into 8-frame snippets with PyAV.

One pass over the stream, frame timestamps taken from each frame's pts (so variable frame
rate is handled), frames scaled by swscale straight to the encoder's size, rotation metadata
applied. Container durations lie (raw elementary streams, truncated files), so the time line
is cut while decoding: a window closes when a frame at or past its end arrives, and the last
window ends where the frames end.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from encoders.frames import scaled_size
from indexer.discover import not_a_file
from indexer.sampling import (DEFAULT_WINDOW, FRAMES_PER_SNIPPET, Window, as_fraction, frame_times,
                              min_tail)
from indexer.stills import animated_webp, picture_demuxer, picture_kind, still_image_kind
from vidsonar.errors import DecodeError, NoVideoStreamError, StillImageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    duration: Fraction | None  # as the container claims; None if it does not say
    fps: float | None
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class DecodedSnippet:
    window: Window
    frames: np.ndarray  # (frames, H, W, 3) uint8 RGB, upright
    rotation: int = 0  # clockwise degrees applied to make the frames upright


def pyav():
    """The ``av`` module with FFmpeg's log callback into Python switched off.

    torchvision (imported by open_clip, timm...) turns PyAV's logging on at import. Then an
    FFmpeg decoder thread that logs while the main thread frees the codec (holding the GIL)
    waits for the GIL forever: a deadlock seen when a snippet generator is closed early.
    Setting the level back here, on every open, keeps FFmpeg's threads away from Python.
    """
    import av
    import av.logging
    av.logging.set_level(None)
    return av


#: frames larger than this are refused before decoding: 8192 x 8192, about twice DCI 8K. A
#: decoder keeps several frames in flight, so a forged 65535 x 65535 MJPEG header would
#: otherwise ask for tens of gigabytes
MAX_PIXELS = 8192 * 8192


def _open(path: Path):
    """The file's container, ready to decode its first video stream; raises a MediaError
    naming what makes the file no video (missing, empty, unreadable, no video stream,
    oversized frames, a still image)."""
    path = Path(path)
    if not path.is_file():
        raise DecodeError(str(path), not_a_file(path))
    if path.stat().st_size == 0:
        raise DecodeError(str(path), "empty file (0 bytes)")
    container = _container(path)
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError(str(path), "no video stream in this file")
    ctx = container.streams.video[0].codec_context
    if (ctx.width or 0) * (ctx.height or 0) > MAX_PIXELS:
        container.close()
        raise DecodeError(str(path), f"frames of {ctx.width}x{ctx.height} pixels, more than the "
                          f"{MAX_PIXELS / 1e6:.0f} million vidsonar decodes")
    if picture_demuxer(container.format.name):  # read to count its frames: open it again
        kind = still_image_kind(container)
        container.close()
        if kind:
            raise StillImageError(str(path), kind)
        container = _container(path)
    return container


def _container(path: Path):
    av = pyav()
    try:
        # absolute: FFmpeg reads a relative name such as '2024-01-01T10:30:00.mp4' as a URL
        # of protocol '2024-01-01T10'; one that starts with '/' is always a file
        return av.open(str(Path(path).absolute()), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise DecodeError(str(path), f"not a readable media file ({exc.strerror or exc})") from exc


def probe(path: Path) -> VideoInfo:
    container = _open(path)
    try:
        return _info(container)
    finally:
        container.close()


def _info(container) -> VideoInfo:
    stream = container.streams.video[0]
    duration = None
    if stream.duration and stream.time_base:
        duration = Fraction(stream.duration) * stream.time_base
    elif container.duration:
        duration = Fraction(container.duration, 1_000_000)
    rate = stream.average_rate or stream.guessed_rate
    ctx = stream.codec_context
    return VideoInfo(duration=duration if duration and duration > 0 else None,
                     fps=float(rate) if rate else None, width=ctx.width, height=ctx.height,
                     codec=ctx.codec.canonical_name)  # the format ("av1"), not the decoder ("libdav1d")


def _upright(img: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a frame by ``rotation`` degrees clockwise."""
    return np.ascontiguousarray(np.rot90(img, k=-(rotation // 90))) if rotation else img


#: frames of at most this many pixels are decoded on one thread. FFmpeg's frame threads hand
#: every frame from thread to thread, and on a small frame the hand-off costs more than the
#: decoding it spreads (2-core VM, PyAV 18 / FFmpeg 8, H.264, ms a frame, wall / CPU, frame
#: threads -> one thread): the shipped set (320x240, 176x144) 0.83-0.86 / 0.67-0.71 ->
#: 0.33-0.37 / 0.31-0.34; 640x360 0.44 / 0.63 -> 0.43 / 0.43. From 854x480 on the threads
#: decode faster (0.91 against 1.06 ms wall) and stay on: decoding bounds such footage.
SINGLE_THREAD_PIXELS = 640 * 480


def _set_threads(stream) -> None:
    """Frame and slice threads for a stream; one thread for small frames (SINGLE_THREAD_PIXELS)."""
    ctx = stream.codec_context
    if ctx.width and ctx.height and ctx.width * ctx.height <= SINGLE_THREAD_PIXELS:
        ctx.thread_count = 1
    else:
        stream.thread_type = "AUTO"


#: swscale's threads per reformat. Its default, one per core, made every call slower here for
#: the same pixels (2 cores, PyAV 18, two runs; us a frame, default -> one thread): 320x240 ->
#: 299x224 yuv420p 144-155 -> 78-125, the shot detector's 96x54 RGB 201-276 -> 66-100, a
#: 299x224 frame to RGB 142-237 -> 41-44, 1080p -> 398x224 1776 -> 944. Thread hand-offs cost
#: more than the slices save, and a decoder thread is meant to be one core's work.
SWSCALE_THREADS = 1

#: a source frame of at most this many times the pixels of its scaled size is kept as decoded,
#: and scaled only if a window samples it (8 of a window's dozens of frames): it holds at most a
#: quarter more memory than its scaled copy would, and most frames of small footage then cost
#: no swscale at all (the shipped 320x240 and 176x144 clips: 2449 scalings -> at most 344).
LAZY_SCALE_PIXELS = 1.25

#: pixel formats swscale scales in place of converting: the frame stays in its own planar
#: format until it is chosen, and only chosen frames pay for the conversion to RGB
_SCALE_IN_PLACE = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                             "nv12", "nv21", "gray", "yuv420p10le", "yuv422p10le", "yuv444p10le"})


class ScaledFrame:
    """A decoded frame at the encoder's size, converted to upright RGB only when asked.

    Scaling a 320x240 yuv420p frame to 299x224 RGB costs about 0.36 ms of one core; scaling it
    in yuv420p costs 0.1 ms and converting the scaled frame to RGB 0.08 ms (PyAV 18, one
    swscale thread).
    A window keeps every frame (it learns its true end only at the end) but samples 8 of
    them, so the conversion is left to the frames a window samples, and done once each.
    A source frame no bigger than the scaled one would be (``LAZY_SCALE_PIXELS``) is kept as
    decoded (``scaled`` False): it is scaled too only if it is sampled.
    """

    __slots__ = ("frame", "turn", "scaled", "_scaler", "_rgb")

    def __init__(self, frame, turn: int, scaler: "_Scaler", scaled: bool = True):
        self.frame, self.turn, self.scaled, self._scaler, self._rgb = frame, turn, scaled, scaler, None

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, upright. Raises DecodeError if the conversion fails."""
        if self._rgb is None:
            self._rgb = self._scaler.to_rgb(self.frame, self.turn, scale=not self.scaled)
        return self._rgb


def as_rgb(image) -> np.ndarray:
    """An RGB array from a ``ScaledFrame`` or an array (the samplers take both)."""
    return image.rgb() if isinstance(image, ScaledFrame) else image


def frames_shown_at(kept: list[tuple[Fraction, object]], targets) -> np.ndarray:
    """(len(targets), H, W, 3) RGB: for each target time, the kept (time, frame) on screen then
    (the last one at or before it; the first for a time before them all), converted to RGB."""
    times = [t for t, _ in kept]
    return np.stack([as_rgb(kept[max(0, bisect.bisect_right(times, x) - 1)][1]) for x in targets])


class _Scaler:
    """Scales frames so the short side is ``short_side`` pixels (after rotation; very long
    frames less, ``encoders.frames.scaled_size``), lazily RGB."""

    def __init__(self, short_side: int, path: Path | str = ""):
        from av.video.reformatter import VideoReformatter
        self.short_side, self.path = short_side, str(path)
        self.size: tuple[int, int] | None = None
        self.turn = 0
        self.reformatter = VideoReformatter()  # reused: a new one per frame costs 2x
        self.converter = VideoReformatter()

    def __call__(self, frame) -> ScaledFrame:
        rotation = int(getattr(frame, "rotation", 0) or 0)
        turn = self.turn = (-rotation) % 360  # PyAV reports counter-clockwise display rotation
        if self.size is None:
            w, h = frame.width, frame.height
            if turn in (90, 270):
                w, h = h, w
            w, h = scaled_size(w, h, self.short_side, least=2)
            self.size = (h, w) if turn in (90, 270) else (w, h)
        in_place = frame.format.name in _SCALE_IN_PLACE
        if in_place and frame.width * frame.height <= LAZY_SCALE_PIXELS * self.size[0] * self.size[1]:
            return ScaledFrame(frame, turn, self, scaled=False)
        return ScaledFrame(self._scale(frame, frame.format.name if in_place else "rgb24"), turn, self)

    def _scale(self, frame, fmt: str):
        return self.reformatter.reformat(frame, width=self.size[0], height=self.size[1],
                                         format=fmt, interpolation="AREA", threads=SWSCALE_THREADS)

    def to_rgb(self, frame, turn: int, scale: bool = False) -> np.ndarray:
        """``frame`` (scaled first if ``scale``: a source kept as decoded) as upright RGB."""
        av = pyav()
        try:
            if scale:
                frame = self._scale(frame, frame.format.name)
            img = self.converter.reformat(frame, format="rgb24",
                                          threads=SWSCALE_THREADS).to_ndarray()
        except av.FFmpegError as exc:
            at = f" at {float(frame.time):.3f} s" if frame.time is not None else ""
            raise DecodeError(self.path, f"converting the frame{at} to RGB failed "
                              f"({exc.strerror or exc})") from exc
        return _upright(img, turn)


def iter_snippets(path: Path, window: Fraction | float = DEFAULT_WINDOW,
                  frames: int = FRAMES_PER_SNIPPET, short_side: int = 224,
                  info: VideoInfo | None = None) -> Iterator[DecodedSnippet]:
    """Yield the snippets of a video in order. Raises DecodeError on unreadable media."""
    av = pyav()
    window = as_fraction(window)
    container = _open(path)
    try:
        info = info or _info(container)
        stream = container.streams.video[0]
        _set_threads(stream)
        scale = _Scaler(short_side, path)
        state = _WindowState(0, window, frames)
        held = None  # a closed window, held back until we know the next one is not a short tail
        tail = min_tail(window)
        last_time = None
        frame_step = Fraction(1, round(info.fps)) if info.fps else Fraction(1, 25)
        try:
            for t, frame in _timeline(path, container, stream, refuse_one_picture=True):
                while t >= state.end:
                    if held is not None:
                        yield held.close(held.end, scale.turn)
                    held, state = state, _WindowState(state.index + 1, window, frames)
                if held is not None and t - state.start >= tail:
                    yield held.close(held.end, scale.turn)
                    held = None
                state.offer(t, frame, scale)
                if last_time is not None:
                    frame_step = t - last_time
                last_time = t
        except av.FFmpegError as exc:  # converting a kept frame failed
            raise DecodeError(str(path), f"converting the frame at {float(last_time or 0):.3f} s "
                              f"failed ({exc.strerror or exc})") from exc
        end = last_time + frame_step
        if held is not None and state.has_frames and end - state.start < tail:
            held.kept.extend(state.kept)  # a short remainder joins the window before it
            yield held.close(end, scale.turn)
            return
        if held is not None:
            yield held.close(held.end, scale.turn)
        if state.has_frames:
            yield state.close(min(end, state.end), scale.turn)
    finally:
        container.close()


def _timeline(path: Path, container, stream, origin: Fraction | None = None,
              refuse_one_picture: bool = False) -> Iterator[tuple[Fraction, object]]:
    """(time, frame) of every decoded frame in order: exact times from pts, starting at the
    first frame (or at ``origin``, that frame's pts in seconds, when decoding resumes after a
    seek), duplicate or out-of-order pts dropped (the time line stays monotonic).

    The one decoding loop of ``iter_snippets``, ``iter_frames`` and ``indexer.frame_picks``; raises
    DecodeError when decoding fails part-way or no frame decodes (naming an animated WebP,
    which this FFmpeg cannot decode), and logs the packets it had to skip. With
    ``refuse_one_picture`` (ingestion), a video of one frame, none rejected, is a
    StillImageError once decoding ends (``indexer.stills``): the caller has been given that
    frame, but a window closes only after it, so no snippet of it is made.
    """
    av = pyav()
    tb = stream.time_base
    first_time, last_time = origin, None
    packet_errors: list[str] = []
    decoded = 0
    try:
        for frame in _decode(container, stream, packet_errors):
            decoded += 1
            t = Fraction(frame.pts) * tb
            if first_time is None:
                first_time = t
            t -= first_time  # time codes start at the first frame
            if last_time is not None and t <= last_time:
                continue  # duplicate or out-of-order pts: keep the time line monotonic
            yield t, frame
            last_time = t
    except av.FFmpegError as exc:
        at = f" at {float(last_time):.3f} s" if last_time is not None else ""
        raise DecodeError(str(path), f"decoding failed{at} ({exc.strerror or exc})") from exc
    if last_time is None:
        if stream.codec_context.codec.name == "webp" and animated_webp(path):
            version = ".".join(map(str, av.library_versions["libavcodec"][:2]))
            raise DecodeError(str(path), "an animated WebP, which the FFmpeg of this PyAV "
                              f"(libavcodec {version}) cannot decode as video (it decodes still "
                              "WebP pictures only); convert it to a video first, e.g. `ffmpeg "
                              "-i in.webp -pix_fmt yuv420p out.mp4`, and ingest that")
        detail = f" ({len(packet_errors)} packets rejected, first: {packet_errors[0]})" if packet_errors else ""
        raise DecodeError(str(path), f"no decodable video frames{detail}")
    if refuse_one_picture and decoded == 1 and not packet_errors:
        kind = picture_kind(stream.codec_context.codec.canonical_name)
        where = f"its {Path(path).suffix.lower()} container" if Path(path).suffix else "a video container"
        raise StillImageError(str(path), f"one {kind} frame in {where}",
                              "to search with it, save the frame as a picture (`ffmpeg -i "
                              "FILE frame.png`) and give that as an image example (search --image)")
    if packet_errors:
        log.warning("%s: skipped %d undecodable packets (first: %s)", path, len(packet_errors),
                    packet_errors[0])


def _decode(container, stream, errors: list[str]):
    """Decoded frames with a pts.

    Empty packets that carry a pts mean "repeat the previous frame" (Ogg/Theora); sending
    them would end the decoder's input, so they are skipped. A packet the decoder rejects is
    skipped too, as the ffmpeg command does, and noted in ``errors``; demuxing errors
    (a damaged container) still end decoding.
    """
    av = pyav()
    for packet in container.demux(stream):
        if packet.size == 0 and packet.pts is not None:
            continue
        try:
            frames = stream.decode(packet)
        except av.FFmpegError as exc:
            errors.append(f"pts {packet.pts}: {exc.strerror or exc}")
            continue
        for frame in frames:
            if frame.pts is not None:
                yield frame


class _WindowState:
    """The frames of one window, kept (already scaled, so small) until the window closes.

    Keeping them, rather than converting only the frames at the target times, is what lets
    a window whose end turns out earlier than claimed (the last one, or a stream that ends
    early) sample its real extent uniformly. It costs one swscale per decoded frame, in the
    frame's own pixel format; only the sampled frames are converted to RGB.
    """

    def __init__(self, index: int, window: Fraction, frames: int):
        self.index, self.frames = index, frames
        self.start, self.end = window * index, window * (index + 1)
        self.kept: list[tuple[Fraction, np.ndarray]] = []

    @property
    def has_frames(self) -> bool:
        return bool(self.kept)

    def offer(self, t: Fraction, frame, scale: _Scaler) -> None:
        self.kept.append((t, scale(frame)))

    def close(self, end: Fraction, rotation: int = 0) -> DecodedSnippet:
        """Sample the frames shown at the centres of ``frames`` equal parts of [start, end)."""
        targets = frame_times(self.start, end, self.frames)
        return DecodedSnippet(Window(self.index, self.start, end, targets),
                              frames_shown_at(self.kept, targets), rotation)


@dataclass(frozen=True)
class DecodedFrame:
    time: Fraction  # seconds from the first frame
    scaled: ScaledFrame  # at the encoder's size, converted to RGB when asked
    small: np.ndarray | None  # (h, w, 3) uint8 RGB at the shot detector's size, upright
    rotation: int = 0

    @property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB at the encoder's size, upright."""
        return self.scaled.rgb()


class _SmallScaler:
    """A second, tiny reformat of the same decoded frame (the shot detector's 48x27)."""

    def __init__(self, size: tuple[int, int]):
        from av.video.reformatter import VideoReformatter
        self.size = size
        self.reformatter = VideoReformatter()

    def __call__(self, frame, turn: int) -> np.ndarray:
        w, h = self.size
        if turn in (90, 270):
            w, h = h, w  # scale to the turned size, so the upright frame is w x h
        img = self.reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                        interpolation="AREA", threads=SWSCALE_THREADS).to_ndarray()
        return _upright(img, turn)


def iter_frames(path: Path, short_side: int = 224, small: tuple[int, int] | None = None,
                ) -> Iterator[DecodedFrame]:
    """Every decoded frame once, in time order, at the encoder's size (and ``small``, if asked).

    The same pass and time line as ``iter_snippets`` (time codes from pts, starting at the
    first frame, duplicates dropped); for readers that decide windows themselves, such as the
    shot-aware sampler. Raises DecodeError on unreadable media.
    """
    av = pyav()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _set_threads(stream)
        scale = _Scaler(short_side, path)
        tiny = _SmallScaler(small) if small else None
        for t, frame in _timeline(path, container, stream, refuse_one_picture=True):
            try:
                image = scale(frame)  # the tiny one from the frame kept (the source, if kept as decoded)
                small_image = tiny(image.frame, scale.turn) if tiny else None
            except av.FFmpegError as exc:
                raise DecodeError(str(path), f"converting the frame at {float(t):.3f} s failed "
                                  f"({exc.strerror or exc})") from exc
            yield DecodedFrame(t, image, small_image, scale.turn)
    finally:
        container.close()
