"""The read stage: a path -> the video's snippet rows, or one error row. Pure: runs anywhere.

Rows are flat dicts of scalars, strings and bytes (no nested arrays), so the same rows travel
through a Python queue or a Ray Data block unchanged:

- ``kind="snippet"``: ``idx``, exact ``start``/``end`` and ``frame_times`` (JSON list of seconds),
  the 8 frames as raw RGB bytes with their ``shape`` ("f,h,w,3") and the thumbnail as JPEG bytes;
- ``kind="end"``: the video is read: ``n`` snippets, ``fps``, ``width``, ``height``, ``rotation``,
  its grid (``window_seconds``, ``hop_seconds``),
  and, when a shot detector ran, its ``shots`` (JSON list of [start, end] seconds), ``detector``
  and ``threshold``;
- ``kind="error"``: the video cannot be read; ``error`` says why.

Snippet rows stream as they are decoded (memory stays one snippet deep, whatever the video's
length); a failure part-way ends the stream with an error row and the writer drops the rows
before it, so a bad file fails alone and leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from indexer.sampling import DEFAULT_WINDOW, FRAMES_PER_SNIPPET, as_fraction
from indexer.thumbs import thumbnail_jpeg
from storage.ids import MAX_SNIPPETS_PER_VIDEO
from vidsonar.errors import MediaError, VidsonarError

#: every row has every column, so a Ray block has one schema
_EMPTY = {"video_id": 0, "path": "", "kind": "", "idx": -1, "start": 0.0, "end": 0.0,
          "frame_times": "[]", "frames": b"", "shape": "", "thumb": b"", "n": 0,
          "fps": -1.0, "width": 0, "height": 0, "rotation": 0, "error": "",
          "shots": "", "detector": "", "threshold": -1.0, "window_seconds": 0.0,
          "hop_seconds": 0.0}


@dataclass(frozen=True)
class ReadSpec:
    """How to cut videos into snippets; picklable, sent to every reader."""
    window: str = str(DEFAULT_WINDOW)  # a Fraction as text: exact, and survives any transport
    frames: int = FRAMES_PER_SNIPPET
    frame_size: int = 224
    shots: str = "none"  # shot detector (indexer.shots): no window crosses a cut it finds
    shot_threshold: float | None = None
    hop: str = ""  # a Fraction as text: snippet starts this far apart (overlap); "": the window

    @classmethod
    def of(cls, window: Fraction | float, frames: int, frame_size: int, shots: str = "none",
           shot_threshold: float | None = None, hop: Fraction | float | None = None) -> "ReadSpec":
        return cls(str(as_fraction(window)), int(frames), int(frame_size), shots, shot_threshold,
                   "" if hop is None else str(as_fraction(hop)))


def row(**values) -> dict:
    return {**_EMPTY, **values}


def error_message(path, exc: BaseException) -> str:
    """The message recorded for a failed file (as the sequential pipeline always wrote it)."""
    return str(exc) if isinstance(exc, MediaError) else f"{path}: {type(exc).__name__}: {exc}"


#: what counts as one file's failure (anything else is a bug and stops the run)
FILE_ERRORS = (VidsonarError, OSError, ValueError, RuntimeError)


def read_video(task: dict, spec: ReadSpec) -> Iterator[dict]:
    """Rows of ``task`` (``video_id``, ``path``): snippet rows then an end row, or an error row."""
    from indexer.decode import probe
    from indexer.overlap import iter_windows
    from indexer.shots import iter_shot_snippets, make_detector
    video_id, path = int(task["video_id"]), str(task["path"])
    n, rotation, info, detector, segmenter = 0, 0, None, None, []
    try:
        info = probe(path)
        detector = make_detector(spec.shots, spec.shot_threshold, info.fps)
        window, hop = Fraction(spec.window), Fraction(spec.hop) if spec.hop else None
        if detector is None:  # the fixed grid, overlapping when hop < window
            snippets = iter_windows(path, window, hop, spec.frames, spec.frame_size, info)
        else:  # windows inside the shots the detector finds while decoding
            snippets = iter_shot_snippets(path, detector, window, spec.frames,
                                          spec.frame_size, info, segmenter)
        for snippet in snippets:
            w, rotation = snippet.window, snippet.rotation
            if w.index >= MAX_SNIPPETS_PER_VIDEO:
                raise MediaError(path, f"longer than {MAX_SNIPPETS_PER_VIDEO} snippets")
            frames = np.ascontiguousarray(snippet.frames, dtype=np.uint8)
            yield row(video_id=video_id, path=path, kind="snippet", idx=w.index,
                      start=float(w.start), end=float(w.end),
                      frame_times=json.dumps([float(t) for t in w.frame_times]),
                      frames=frames.tobytes(), shape=",".join(map(str, frames.shape)),
                      thumb=thumbnail_jpeg(frames[len(frames) // 2]))
            n += 1
    except FILE_ERRORS as exc:
        yield row(video_id=video_id, path=path, kind="error", error=error_message(path, exc))
        return
    shots = {} if detector is None else {
        "shots": json.dumps([[float(a), float(b)] for a, b in segmenter[0].shots]),
        "detector": detector.name,
        "threshold": -1.0 if detector.threshold is None else float(detector.threshold)}
    yield row(video_id=video_id, path=path, kind="end", n=n,
              fps=-1.0 if info.fps is None else float(info.fps), width=int(info.width),
              height=int(info.height), rotation=int(rotation), window_seconds=float(window),
              hop_seconds=float(hop if hop is not None else window), **shots)


def frames_of(r: dict) -> np.ndarray:
    """A snippet row's frames as an (f, h, w, 3) uint8 array (no copy)."""
    shape = tuple(int(x) for x in str(r["shape"]).split(","))
    return np.frombuffer(r["frames"], dtype=np.uint8).reshape(shape)
