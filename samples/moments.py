"""The shipped moment-retrieval set: multi-scene reels of real photos, with ground-truth spans.

Each reel pans over a few CC0 ``skimage.data`` photos in turn (``samples.footage``); scene
lengths (3-9 s) are chosen off the 4 s snippet grid, so a moment has to be found, not read
off the grid. Two splits, each its own archive: ``tune`` (margins are chosen on it) and
``test`` (reported with the chosen constants, never tuned on); each photo appears in both, in
other reels, positions and lengths. Every photo is asked in six languages (the translations
of ``samples.footage.QUERIES``, plus the clock's, written here); a query's ground truth is
every scene of its photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from samples.footage import QUERIES, SampleVideo, Scene, load_photo, pan_frames, write_video

#: split -> reel name -> [(photo, seconds)]
REELS: dict[str, dict[str, list[tuple[str, float]]]] = {
    "tune": {
        "t1-space": [("astronaut", 5.0), ("clock", 3.5), ("rocket", 7.5)],
        "t2-home": [("chelsea", 6.5), ("coffee", 4.5), ("motorcycle", 9.0)],
        "t3-studio": [("page", 3.0), ("camera", 7.0), ("astronaut", 5.5)],
        "t4-road": [("motorcycle", 5.5), ("rocket", 3.5), ("chelsea", 8.0)],
    },
    "test": {
        "s1-morning": [("coffee", 7.0), ("astronaut", 3.5), ("camera", 5.5), ("clock", 6.0)],
        "s2-launch": [("rocket", 9.0), ("page", 5.0), ("chelsea", 3.0)],
        "s3-errands": [("clock", 4.5), ("motorcycle", 6.5), ("coffee", 3.5)],
        "s4-office": [("camera", 3.0), ("chelsea", 5.5), ("page", 8.5)],
    },
}
SPLITS = tuple(REELS)

#: the clock is not among the demo's queries; said as the demo says the others
CLOCK = {"eng_Latn": "a wall clock", "fra_Latn": "une horloge murale", "deu_Latn": "eine Wanduhr",
         "zho_Hans": "一个挂钟", "hin_Deva": "दीवार पर लगी एक घड़ी", "spa_Latn": "un reloj de pared"}


@dataclass(frozen=True)
class MomentQuery:
    """A query and every span (video file, start, end) that answers it."""
    text: str
    lang: str
    spans: tuple[tuple[str, float, float], ...]  # (video path, start, end) seconds
    label: str = ""  # what it asks for (a photo's name), for per-concept tables


def queries_for(photo: str) -> dict[str, str]:
    return CLOCK if photo == "clock" else QUERIES[photo]


def build_reels(folder: Path, split: str, fps: int = 12, size: tuple[int, int] = (320, 240),
                reels: dict[str, list[tuple[str, float]]] | None = None) -> list[SampleVideo]:
    """The split's reels (or the given ``reels``) as MP4 files in ``folder`` (made once;
    existing files are kept)."""
    if reels is None and split not in REELS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for name, scenes in (REELS[split] if reels is None else reels).items():
        path, frames, spans, t = folder / f"{name}.mp4", [], [], 0.0
        for photo, seconds in scenes:
            spans.append(Scene(photo, t, t + seconds))
            t += seconds
            if not path.exists():
                frames += pan_frames(load_photo(photo), seconds, fps, size)
        if not path.exists():
            write_video(path, frames, fps)
        videos.append(SampleVideo(path, tuple(spans), " then ".join(p for p, _ in scenes)))
    return videos


def moment_queries(videos: list[SampleVideo]) -> list[MomentQuery]:
    """One query per photo shown in ``videos`` and language; ground truth: all its scenes."""
    photos = sorted({s.photo for v in videos for s in v.scenes})
    out = []
    for photo in photos:
        spans = tuple((str(v.path), s.start, s.end) for v in videos for s in v.scenes if s.photo == photo)
        out += [MomentQuery(text, lang, spans, photo) for lang, text in queries_for(photo).items()]
    return out
