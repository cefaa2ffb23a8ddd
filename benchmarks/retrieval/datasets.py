"""Captioned video sets from local files, in the layouts they are distributed in.

Every loader returns a ``Dataset``: caption/video pairs, each caption in a FLORES-200
language. Videos are not opened here; pairs whose video file is missing are dropped and
counted (``Dataset.missing``), since public sets routinely lose YouTube clips.

Layouts read (``root`` is the folder given with ``--dataset NAME=ROOT``):

- ``manifest``: a JSONL file, one pair a line: ``{"video": "clips/a.mp4", "caption": "...",
  "language": "eng_Latn"}`` (``media``/``lang`` are accepted too, as ``vidsonar align`` writes
  them). Paths are relative to the manifest's folder. A video is one item, sampled whole:
  rows with ``start``/``end`` spans are refused (cut the spans into files first).
- ``msrvtt`` (1k-A split): ``ROOT/MSRVTT_JSFUSION_test.csv`` (columns ``video_id,sentence``),
  videos in ``ROOT/videos/all/`` or ``ROOT/videos/``.
- ``multi-msrvtt``: the 1k-A videos as for ``msrvtt``, captions translated into 9 languages
  in ``ROOT/captions/<iso>.csv`` (``video_id,sentence``; iso in en de fr cs es ru vi sw zh).
- ``vatex``: ``ROOT/vatex_validation_v1.0.json`` (or any ``vatex_*.json``): a list of
  ``{"videoID", "enCap": [...], "chCap": [...]}``; videos ``ROOT/videos/<videoID>.mp4``.
  English and Chinese captions (the first ``captions_per_video`` of each).
- ``pe-video``: ``ROOT/test.jsonl`` rows with ``video`` (a path) or ``video_id``, and
  ``human_caption`` (else ``caption``); videos ``ROOT/videos/<video_id>.mp4``.
- ``dream1k``: ``ROOT/json/metadata.json`` (a list with ``video_file`` and ``description``),
  videos in ``ROOT/video/DREAM-1K_videos/``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.jsonl import read_jsonl, write_jsonl
from vidsonar.errors import InputError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")

#: Multi-MSRVTT's ISO 639-1 file names -> FLORES-200
MULTI_MSRVTT_LANGUAGES = {"en": "eng_Latn", "de": "deu_Latn", "fr": "fra_Latn", "cs": "ces_Latn",
                          "es": "spa_Latn", "ru": "rus_Cyrl", "vi": "vie_Latn", "sw": "swh_Latn",
                          "zh": "zho_Hans"}


@dataclass(frozen=True)
class Pair:
    video: Path
    caption: str
    language: str

    @property
    def clip(self) -> str:
        """What identifies the visual item (one whole video file)."""
        return str(self.video)


@dataclass(frozen=True)
class Dataset:
    name: str
    pairs: tuple[Pair, ...]
    missing: int = 0  # pairs dropped because their video file is absent

    @property
    def clips(self) -> list[str]:
        """The distinct visual items, in first-seen order: the retrieval gallery."""
        return list(dict.fromkeys(p.clip for p in self.pairs))

    @property
    def languages(self) -> list[str]:
        return list(dict.fromkeys(p.language for p in self.pairs))

    def truth(self) -> list[int]:
        """For each pair, the index of its clip in ``clips``."""
        index = {c: i for i, c in enumerate(self.clips)}
        return [index[p.clip] for p in self.pairs]


def _finish(name: str, pairs: Iterable[Pair]) -> Dataset:
    kept, missing = [], 0
    for p in pairs:
        if p.video.is_file():
            kept.append(p)
        else:
            missing += 1
    if missing:
        log.warning("%s: %d pairs dropped, their videos are missing", name, missing)
    if not kept:
        raise InputError(f"dataset {name!r}: no caption has its video on disk "
                         f"({missing} missing); check the folder layout (see benchmarks/retrieval/datasets.py)")
    return Dataset(name, tuple(kept), missing)


def _find_video(folders: list[Path], video_id: str) -> Path:
    """The first existing ``<folder>/<video_id><ext>``; else the first candidate (counted missing)."""
    if Path(video_id).suffix.lower() in VIDEO_EXTENSIONS:
        candidates = [f / video_id for f in folders]
    else:
        candidates = [f / f"{video_id}{ext}" for f in folders for ext in VIDEO_EXTENSIONS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{what}: {path} does not exist")
    return path


# --- manifest ----------------------------------------------------------------------------------
def load_manifest(path: str | Path, name: str | None = None) -> Dataset:
    path = _need(Path(path), "manifest")
    pairs = []
    for n, row in read_jsonl(path):
        video = row.get("video", row.get("media"))
        caption, lang = row.get("caption"), row.get("language", row.get("lang"))
        if not video or caption is None or not lang:
            missing = "video" if not video else "caption" if caption is None else "language"
            raise InputError(f"{path}:{n}: each line needs video, caption and language ({missing!r})")
        if row.get("start") is not None or row.get("end") is not None:
            raise InputError(f"{path}:{n}: time spans (start/end) are not supported by the "
                             "retrieval benchmark; cut them into clips")
        pairs.append(Pair(path.parent / video, str(caption), str(lang)))
    return _finish(name or path.stem, pairs)


write_manifest = write_jsonl


# --- MSR-VTT and Multi-MSRVTT -------------------------------------------------------------------
def _msrvtt_videos(root: Path) -> list[Path]:
    return [root / "videos" / "all", root / "videos", root]


def _read_sentences(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"video_id", "sentence"} <= rows[0].keys():
        raise InputError(f"{path}: expected columns video_id and sentence, found {', '.join(rows[0])}")
    return [(r["video_id"].strip(), r["sentence"].strip()) for r in rows]


def load_msrvtt(root: str | Path) -> Dataset:
    """MSR-VTT 1k-A: 1000 test videos, one English caption each (JSFusion's split)."""
    root = Path(root)
    csv_path = _need(root / "MSRVTT_JSFUSION_test.csv", "MSR-VTT 1k-A split")
    folders = _msrvtt_videos(root)
    return _finish("msrvtt-1k-a", (Pair(_find_video(folders, vid), text, "eng_Latn")
                                   for vid, text in _read_sentences(csv_path)))


def load_multi_msrvtt(root: str | Path) -> Dataset:
    """Multi-MSRVTT: the 1k-A videos with captions in up to 9 languages (one file each)."""
    root = Path(root)
    folders = _msrvtt_videos(root)
    files = sorted((root / "captions").glob("*.csv"))
    if not files:
        raise InputError(f"Multi-MSRVTT: no {root / 'captions'}/<iso>.csv caption files")
    pairs = []
    for f in files:
        lang = MULTI_MSRVTT_LANGUAGES.get(f.stem)
        if lang is None:
            raise InputError(f"{f}: unknown language file name; expected one of "
                             f"{', '.join(MULTI_MSRVTT_LANGUAGES)}")
        pairs += [Pair(_find_video(folders, vid), text, lang) for vid, text in _read_sentences(f)]
    return _finish("multi-msrvtt", pairs)


# --- VATEX, PE-Video, DREAM-1K ------------------------------------------------------------------
def load_vatex(root: str | Path, captions_per_video: int = 1) -> Dataset:
    """VATEX with its English (``enCap``) and Chinese (``chCap``) captions."""
    root = Path(root)
    found = sorted(root.glob("vatex_*.json"))
    preferred = root / "vatex_validation_v1.0.json"
    path = preferred if preferred.is_file() else (found[0] if found else preferred)
    rows = json.loads(_need(path, "VATEX annotations").read_text(encoding="utf-8"))
    folders = [root / "videos", root]
    pairs = []
    for row in rows:
        video = _find_video(folders, row["videoID"])
        for key, lang in (("enCap", "eng_Latn"), ("chCap", "zho_Hans")):
            pairs += [Pair(video, c.strip(), lang) for c in row.get(key, [])[:captions_per_video]]
    return _finish("vatex", pairs)


def load_pe_video(root: str | Path) -> Dataset:
    """PE-Video (PVD) test pairs: one human-written detailed caption per video."""
    root = Path(root)
    path = _need(root / "test.jsonl", "PE-Video test split")
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        video = (root / row["video"]) if "video" in row else _find_video([root / "videos", root], str(row["video_id"]))
        pairs.append(Pair(video, str(row.get("human_caption") or row["caption"]).strip(), "eng_Latn"))
    return _finish("pe-video", pairs)


def load_dream1k(root: str | Path) -> Dataset:
    """DREAM-1K: 1000 clips with detailed event descriptions."""
    root = Path(root)
    rows = json.loads(_need(root / "json" / "metadata.json", "DREAM-1K metadata").read_text(encoding="utf-8"))
    folders = [root / "video" / "DREAM-1K_videos", root / "videos", root]
    return _finish("dream1k", (Pair(_find_video(folders, Path(r["video_file"]).name),
                                    str(r["description"]).strip(), "eng_Latn") for r in rows))


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "manifest": load_manifest, "msrvtt": load_msrvtt, "multi-msrvtt": load_multi_msrvtt,
    "vatex": load_vatex, "pe-video": load_pe_video, "dream1k": load_dream1k,
}


def load_dataset(spec: str) -> Dataset:
    """``KIND=PATH`` (KIND in LOADERS), or a path to a ``.jsonl`` manifest."""
    kind, sep, path = spec.partition("=")
    if not sep:
        if spec.endswith(".jsonl"):
            return load_manifest(spec)
        raise InputError(f"dataset {spec!r}: give KIND=PATH with KIND one of {', '.join(LOADERS)}, "
                         "or a .jsonl manifest")
    if kind not in LOADERS:
        raise InputError(f"unknown dataset layout {kind!r}; known: {', '.join(LOADERS)}")
    return LOADERS[kind](Path(path).expanduser())
