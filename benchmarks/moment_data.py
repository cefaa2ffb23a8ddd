"""Moment-retrieval data sets: the shipped reels, Charades-STA and QVHighlights.

Each loader gives ``(video paths, [MomentQuery])``; paths are the user's (nothing is
downloaded). Layouts:

- **Charades-STA** (Gao et al. 2017): ``ROOT/charades_sta_test.txt`` (or ``_train``), one query
  a line, ``VIDEO START END##sentence`` (seconds), and the videos as
  ``ROOT/videos/VIDEO.mp4`` (the Charades v1 480p release, renamed folder, any of .mp4/.webm).
- **QVHighlights** (Lei et al. 2021): ``ROOT/highlight_val_release.jsonl`` (or another
  ``*.jsonl`` given as the path), one object a line with ``query``, ``vid`` and
  ``relevant_windows`` ([[start, end], ...] seconds), and the clips as ``ROOT/videos/VID.mp4``.

Queries are English (``eng_Latn``). Queries whose video file is missing are dropped and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from samples.moments import MomentQuery
from vidsonar.errors import InputError

VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov")


def _video(root: Path, name: str) -> Path | None:
    for ext in VIDEO_EXTS:
        p = root / "videos" / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def _group(rows: list[tuple[str, Path, float, float]]) -> list[MomentQuery]:
    spans: dict[str, list] = {}
    for text, path, s, e in rows:
        spans.setdefault(text, []).append((str(path), s, e))
    return [MomentQuery(text, "eng_Latn", tuple(v), "") for text, v in spans.items()]


def load_charades_sta(path: str | Path) -> tuple[list[Path], list[MomentQuery], int]:
    """(videos, queries, dropped) from a Charades-STA folder or its annotation file."""
    path = Path(path)
    ann = path if path.is_file() else next((path / n for n in ("charades_sta_test.txt", "charades_sta_train.txt")
                                            if (path / n).is_file()), None)
    if ann is None:
        raise InputError(f"{path}: no charades_sta_test.txt (or _train.txt); see benchmarks/moment_data.py for the layout")
    root, rows, dropped = ann.parent, [], 0
    for n, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            head, text = line.split("##", 1)
            vid, start, end = head.split()
            start, end = float(start), float(end)
        except ValueError as exc:
            raise InputError(f"{ann}:{n}: expected 'VIDEO START END##sentence', got {line[:80]!r}") from exc
        video = _video(root, vid)
        if video is None:
            dropped += 1
            continue
        rows.append((f"{vid}|{text.strip()}", video, start, end))
    queries = [MomentQuery(q.text.split("|", 1)[1], q.lang, q.spans) for q in _group(rows)]
    return sorted({Path(s[0]) for q in queries for s in q.spans}), queries, dropped


def load_qvhighlights(path: str | Path) -> tuple[list[Path], list[MomentQuery], int]:
    """(videos, queries, dropped) from a QVHighlights folder or one of its JSONL files."""
    path = Path(path)
    ann = path if path.is_file() else path / "highlight_val_release.jsonl"
    if not ann.is_file():
        raise InputError(f"{path}: no highlight_val_release.jsonl; see benchmarks/moment_data.py for the layout")
    root, queries, dropped = ann.parent, [], 0
    for n, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, vid, windows = row["query"], row["vid"], row["relevant_windows"]
        except (ValueError, KeyError) as exc:
            raise InputError(f"{ann}:{n}: expected an object with query, vid, relevant_windows") from exc
        video = _video(root, vid)
        if video is None:
            dropped += 1
            continue
        queries.append(MomentQuery(text, "eng_Latn", tuple((str(video), float(s), float(e)) for s, e in windows)))
    return sorted({Path(s[0]) for q in queries for s in q.spans}), queries, dropped


LOADERS = {"charades-sta": load_charades_sta, "qvhighlights": load_qvhighlights}
