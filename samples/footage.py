"""Sample footage made from real, freely licensed media that ships in PyPI packages.

The CC0 photos of ``skimage.data`` become short clips with a slow pan (so consecutive frames
differ, as in real footage), some joined into multi-scene reels so time codes matter; the
real 60 s concert video of ``iscc-samples`` is added as is. Used by ``vidsonar demo``, the
tests and the benchmarks.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from encoders.frames import fit_frame
from indexer.decode import pyav

#: photo name -> what it shows (English), as queries describe it
PHOTOS: dict[str, str] = {
    "coffee": "a cup of coffee",
    "chelsea": "a cat",
    "rocket": "a rocket on the launch pad",
    "camera": "a man with a camera on a tripod",
    "motorcycle": "a motorcycle",
    "page": "a page of printed text",
    "clock": "a wall clock",
    "astronaut": "an astronaut",
}


@dataclass(frozen=True)
class Scene:
    photo: str
    start: float
    end: float


@dataclass(frozen=True)
class SampleVideo:
    path: Path
    scenes: tuple[Scene, ...]  # empty for real footage without scene annotations
    description: str = ""


def load_photo(name: str) -> np.ndarray:
    from skimage import data
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def pan_frames(photo: np.ndarray, seconds: float, fps: int, size: tuple[int, int]) -> list[np.ndarray]:
    """A slow pan with a gentle zoom across ``photo``, as (H, W, 3) frames of ``size`` (w, h)."""
    w, h = size
    img = fit_frame(photo, int(max(h, w * 3 / 4) * 1.25))
    ih, iw = img.shape[:2]
    n = max(1, round(seconds * fps))
    frames = []
    for i in range(n):
        a = i / max(n - 1, 1)
        zoom = 0.95 - 0.1 * a
        ch = int(min(ih, iw * h / w) * zoom)
        cw = int(ch * w / h)
        top = int((ih - ch) * (0.3 + 0.4 * a))
        left = int((iw - cw) * (0.2 + 0.6 * a))
        crop = img[top:top + ch, left:left + cw]
        frames.append(fit_frame(crop, h)[:h, :w] if crop.shape[1] * h >= crop.shape[0] * w
                      else fit_frame(crop, w)[:h, :w])
    return [_pad_to(f, h, w) for f in frames]


def _pad_to(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w, 3), np.uint8)
    out[:min(h, frame.shape[0]), :min(w, frame.shape[1])] = frame[:h, :w]
    return out


#: codecs that take no yuv420p: FFmpeg's MJPEG encoder wants the full-range "j" format
_PIXEL_FORMATS = {"mjpeg": "yuvj420p"}


def write_video(path: Path, frames: list[np.ndarray], fps: int, codec: str = "libx264") -> Path:
    """Encode RGB frames with PyAV (H.264 in MP4 by default; ``"mjpeg"`` in an .avi writes a
    camera's Motion JPEG)."""
    av = pyav()
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = w, h
        stream.pix_fmt = _PIXEL_FORMATS.get(codec, "yuv420p")
        if codec == "libx264":
            # mbtree off: x264's macroblock-tree rate control gave other bytes, and other decoded
            # frames, from run to run (5 distinct files in 8 writes of the same frames), so every
            # figure measured on freshly made footage moved; without it 8 writes give one file
            stream.options = {"crf": "26", "preset": "veryfast", "x264-params": "mbtree=0"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_clip(path: Path, photos: list[str], seconds: float = 5.0, fps: int = 12,
              size: tuple[int, int] = (320, 240)) -> SampleVideo:
    """One clip panning over each photo in turn for ``seconds``; scenes carry time codes."""
    frames, scenes = [], []
    for i, name in enumerate(photos):
        frames += pan_frames(load_photo(name), seconds, fps, size)
        scenes.append(Scene(name, i * seconds, (i + 1) * seconds))
    write_video(path, frames, fps)
    return SampleVideo(path, tuple(scenes), " then ".join(PHOTOS.get(p, p) for p in photos))


def concert_video() -> Path:
    """The real 60 s live-music video (H.264, 176x144) that ships with ``iscc-samples``."""
    import iscc_samples
    return next(p for p in iscc_samples.videos() if p.name == "demo.mp4")


def build_sample_archive(folder: Path) -> list[SampleVideo]:
    """Single-scene clips, two multi-scene reels, and the real concert video, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = [make_clip(folder / f"{name}.mp4", [name], seconds=6.0)
              for name in ("coffee", "chelsea", "motorcycle", "camera")]
    videos.append(make_clip(folder / "reels" / "reel-space-and-clock.mp4",
                            ["astronaut", "clock", "rocket"], seconds=5.0))
    videos.append(make_clip(folder / "reels" / "reel-reading.mp4", ["page", "coffee"], seconds=5.0))
    concert = folder / "concert.mp4"
    shutil.copyfile(concert_video(), concert)
    videos.append(SampleVideo(concert, (Scene("concert", 0.0, 60.0),), "a band playing live"))
    return videos


#: what each sample shows, said in six languages (FLORES-200 codes)
QUERIES: dict[str, dict[str, str]] = {
    "coffee": {"eng_Latn": "a cup of coffee", "fra_Latn": "une tasse de café",
               "deu_Latn": "eine Tasse Kaffee", "zho_Hans": "一杯咖啡",
               "hin_Deva": "एक कप कॉफ़ी", "spa_Latn": "una taza de café"},
    "chelsea": {"eng_Latn": "a cat", "fra_Latn": "un chat", "deu_Latn": "eine Katze",
                "zho_Hans": "一只猫", "hin_Deva": "एक बिल्ली", "spa_Latn": "un gato"},
    "rocket": {"eng_Latn": "a rocket on the launch pad", "fra_Latn": "une fusée sur le pas de tir",
               "deu_Latn": "eine Rakete auf der Startrampe", "zho_Hans": "发射台上的火箭",
               "hin_Deva": "लॉन्च पैड पर एक रॉकेट", "spa_Latn": "un cohete en la plataforma de lanzamiento"},
    "camera": {"eng_Latn": "a man with a camera on a tripod",
               "fra_Latn": "un homme avec un appareil photo sur un trépied",
               "deu_Latn": "ein Mann mit einer Kamera auf einem Stativ",
               "zho_Hans": "一个男人在用三脚架上的相机", "hin_Deva": "तिपाई पर कैमरा लिए एक आदमी",
               "spa_Latn": "un hombre con una cámara en un trípode"},
    "motorcycle": {"eng_Latn": "a motorcycle", "fra_Latn": "une moto", "deu_Latn": "ein Motorrad",
                   "zho_Hans": "一辆摩托车", "hin_Deva": "एक मोटरसाइकिल", "spa_Latn": "una motocicleta"},
    "page": {"eng_Latn": "a page of printed text", "fra_Latn": "une page de texte imprimé",
             "deu_Latn": "eine Seite mit gedrucktem Text", "zho_Hans": "一页印刷的文字",
             "hin_Deva": "मुद्रित पाठ का एक पृष्ठ", "spa_Latn": "una página de texto impreso"},
    "astronaut": {"eng_Latn": "an astronaut in a space suit", "fra_Latn": "une astronaute en combinaison spatiale",
                  "deu_Latn": "eine Astronautin im Raumanzug", "zho_Hans": "穿着宇航服的宇航员",
                  "hin_Deva": "अंतरिक्ष सूट में एक अंतरिक्ष यात्री", "spa_Latn": "una astronauta con traje espacial"},
    "concert": {"eng_Latn": "a band playing electric guitars on stage",
                "fra_Latn": "un groupe qui joue de la guitare électrique sur scène",
                "deu_Latn": "eine Band spielt E-Gitarre auf der Bühne",
                "zho_Hans": "乐队在舞台上弹电吉他", "hin_Deva": "मंच पर इलेक्ट्रिक गिटार बजाता एक बैंड",
                "spa_Latn": "una banda tocando guitarras eléctricas en el escenario"},
}


def is_relevant(videos: list[SampleVideo], path: str, start: float, end: float, photo: str) -> bool:
    """Does a hit (video path and time range) show ``photo``?"""
    for video in videos:
        if Path(path).name == video.path.name:
            return any(s.photo == photo and s.start < end and start < s.end for s in video.scenes)
    return False
