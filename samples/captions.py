"""A small captioned set made from the real CC0 photos of ``skimage.data``.

Each photo is cut into random crops (zoom, position, mirror), and each crop is paired with one
of the photo's captions (written for this project, mostly English, some in French, German and
Spanish). The split is held out two ways: ``val`` holds unseen crops captioned with an unseen
phrasing of the same photos; ``heldout_photos`` (optional) holds whole photos the trainer
never sees, which measures zero-shot transfer to new concepts. Optional short pan videos
(with time spans) exercise the video path of the trainer.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from indexer.jsonl import write_jsonl as write_manifest

#: photo -> captions; the last one is kept for validation
CAPTIONS: dict[str, list[tuple[str, str]]] = {
    "astronaut": [("eng_Latn", "an astronaut in a white space suit"), ("fra_Latn", "une astronaute en combinaison spatiale"),
                  ("eng_Latn", "a smiling woman astronaut holding her helmet"), ("eng_Latn", "portrait of an astronaut with the flag")],
    "camera": [("eng_Latn", "a man with a camera on a tripod"), ("deu_Latn", "ein Fotograf mit Kamera auf einem Stativ"),
               ("eng_Latn", "a black and white photo of a photographer"), ("eng_Latn", "a cameraman standing in a field")],
    "chelsea": [("eng_Latn", "a tabby cat"), ("spa_Latn", "un gato atigrado"),
                ("eng_Latn", "a cat looking at the camera"), ("eng_Latn", "close-up of a striped cat's face")],
    "clock": [("eng_Latn", "a wall clock"), ("fra_Latn", "une horloge murale"),
              ("eng_Latn", "the face of a clock with hands"), ("eng_Latn", "a round clock on a wall")],
    "coffee": [("eng_Latn", "a cup of coffee"), ("deu_Latn", "eine Tasse Kaffee"),
               ("eng_Latn", "coffee in a white cup on a saucer"), ("eng_Latn", "a hot drink in a cup seen from above")],
    "coins": [("eng_Latn", "old coins on a table"), ("spa_Latn", "monedas antiguas"),
              ("eng_Latn", "a collection of round metal coins"), ("eng_Latn", "rows of coins in black and white")],
    "colorwheel": [("eng_Latn", "a color wheel"), ("fra_Latn", "un cercle chromatique"),
                   ("eng_Latn", "a disc with all the colors of the rainbow"), ("eng_Latn", "a circle of colours blending")],
    "grass": [("eng_Latn", "a field of grass"), ("deu_Latn", "eine Wiese mit Gras"),
              ("eng_Latn", "blades of grass close up"), ("eng_Latn", "texture of green lawn")],
    "gravel": [("eng_Latn", "a gravel path"), ("spa_Latn", "un camino de grava"),
               ("eng_Latn", "small stones on the ground"), ("eng_Latn", "texture of pebbles")],
    "horse": [("eng_Latn", "the silhouette of a horse"), ("fra_Latn", "la silhouette d'un cheval"),
              ("eng_Latn", "a black horse shape on white"), ("eng_Latn", "a horse drawn as a shadow")],
    "hubble_deep_field": [("eng_Latn", "galaxies in deep space"), ("deu_Latn", "Galaxien im Weltall"),
                          ("eng_Latn", "a telescope image of distant galaxies"), ("eng_Latn", "stars and galaxies on a black sky")],
    "immunohistochemistry": [("eng_Latn", "stained tissue under a microscope"), ("spa_Latn", "tejido teñido al microscopio"),
                             ("eng_Latn", "a microscope slide of cells"), ("eng_Latn", "brown and blue stained cells")],
    "moon": [("eng_Latn", "the surface of the moon"), ("fra_Latn", "la surface de la lune"),
             ("eng_Latn", "craters on the moon"), ("eng_Latn", "a grey lunar landscape")],
    "page": [("eng_Latn", "a page of printed text"), ("deu_Latn", "eine Seite mit gedrucktem Text"),
             ("eng_Latn", "lines of text on paper"), ("eng_Latn", "a scanned book page")],
    "retina": [("eng_Latn", "a photo of the retina of an eye"), ("spa_Latn", "una foto de la retina"),
               ("eng_Latn", "blood vessels at the back of the eye"), ("eng_Latn", "an orange fundus image of an eye")],
    "rocket": [("eng_Latn", "a rocket on the launch pad"), ("fra_Latn", "une fusée sur le pas de tir"),
               ("eng_Latn", "a space rocket ready for launch"), ("eng_Latn", "a rocket standing next to a tower")],
    "text": [("eng_Latn", "handwritten text"), ("deu_Latn", "handgeschriebener Text"),
             ("eng_Latn", "words written on a sheet"), ("eng_Latn", "a line of text in black ink")],
    "brick": [("eng_Latn", "a brick wall"), ("spa_Latn", "una pared de ladrillos"),
              ("eng_Latn", "rows of bricks and mortar"), ("eng_Latn", "texture of an old brick wall")],
    "motorcycle": [("eng_Latn", "a motorcycle"), ("fra_Latn", "une moto"),
                   ("eng_Latn", "a motorbike parked indoors"), ("eng_Latn", "a red motorcycle in a garage")],
    "cell": [("eng_Latn", "a cell under a microscope"), ("deu_Latn", "eine Zelle unter dem Mikroskop"),
             ("eng_Latn", "a grey microscopy image of a cell"), ("eng_Latn", "a biological cell, magnified")],
    "logo": [("eng_Latn", "the scikit-image logo"), ("spa_Latn", "el logotipo de scikit-image"),
             ("eng_Latn", "a logo with a snake and a microscope"), ("eng_Latn", "a colourful software logo")],
}


def photo(name: str) -> np.ndarray:
    from encoders.frames import _as_rgb
    from samples.footage import load_photo
    img = load_photo(name)
    if img.ndim == 3 and img.shape[-1] == 4:  # RGBA logo on transparency: flatten onto white
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return _as_rgb(img)


def random_crop(img: np.ndarray, rng: random.Random, size: int) -> np.ndarray:
    from encoders.frames import center_crop, fit_frame
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.5, 0.95))
    top, left = rng.randint(0, h - side), rng.randint(0, w - side)
    crop = img[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return center_crop(fit_frame(np.ascontiguousarray(crop), size), size)


def make_captioned_photos(folder: str | Path, crops: int = 8, val_crops: int = 2, size: int = 224,
                          heldout_photos: int = 0, videos: bool = False, val_captions: str = "unseen",
                          seed: int = 0) -> dict[str, Path]:
    """Write crops and manifests into ``folder``; returns {"train", "val", ["heldout", "video_*"]}.

    ``val_captions``: "unseen" pairs validation crops with a phrasing never trained on (a test
    of meaning, for real teachers); "seen" with the training phrasings (for random teachers,
    whose embeddings carry no meaning beyond the exact caption)."""
    from PIL import Image
    folder = Path(folder)
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = list(CAPTIONS)
    held = set(rng.sample(names, heldout_photos)) if heldout_photos else set()
    rows: dict[str, list[dict]] = {"train": [], "val": [], "heldout": []}
    for name in names:
        img, captions = photo(name), CAPTIONS[name]
        for i in range(crops):
            path = folder / "crops" / f"{name}-{i}.jpg"
            if not path.exists():
                Image.fromarray(random_crop(img, rng, size)).save(path, quality=90)
            if name in held:
                split, (lang, caption) = "heldout", captions[i % len(captions)]
            elif i >= crops - val_crops:
                split, (lang, caption) = "val", (captions[-1] if val_captions == "unseen"
                                                 else captions[i % (len(captions) - 1)])
            else:
                split, (lang, caption) = "train", captions[i % (len(captions) - 1)]
            rows[split].append({"media": f"crops/{path.name}", "caption": caption, "lang": lang, "group": name})
    out = {k: write_manifest(folder / f"{k}.jsonl", v) for k, v in rows.items() if v}
    if videos:
        out.update(_make_videos(folder, [n for n in names if n not in held], size))
    return out


def _make_videos(folder: Path, names: list[str], size: int) -> dict[str, Path]:
    """One 2 s pan per photo; its two 1 s halves are two captioned spans (train / val)."""
    from samples.footage import pan_frames, write_video
    train, val = [], []
    for name in names:
        path = folder / "clips" / f"{name}.mp4"
        if not path.exists():
            write_video(path, pan_frames(photo(name), 2.0, 6, (size * 4 // 3 // 2 * 2, size // 2 * 2)), 6)
        (lang, first), last = CAPTIONS[name][0], CAPTIONS[name][-1]
        train.append({"media": f"clips/{path.name}", "caption": first, "lang": lang, "start": 0.0, "end": 1.0,
                      "group": name})
        val.append({"media": f"clips/{path.name}", "caption": last[1], "lang": last[0], "start": 1.0, "end": 2.0,
                    "group": name})
    return {"video_train": write_manifest(folder / "video-train.jsonl", train),
            "video_val": write_manifest(folder / "video-val.jsonl", val)}


def all_captions() -> list[str]:
    return [c for caps in CAPTIONS.values() for _, c in caps]
