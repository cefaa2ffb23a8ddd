"""The v-Sonar concept space: vision backbone -> v-Sonar projector -> a frozen teacher's text space.

With SONAR as the teacher (the paper's setting) queries are read in 200 languages by the SONAR
text encoder and any snippet vector can be verbalized by the SONAR decoder. With the lite
space's e5 as the teacher the same projector aligns EfficientNet-Lite0 features into e5
(``text.type: e5``); that space has no decoder.

Config sections (``encoders/configs/v-sonar*.json``; ``vidsonar align`` writes trained ones)::

    text:    {"type": "sonar", "encoder": "text_sonar_basic_encoder",
              "decoder": "text_sonar_basic_decoder", "tokenizer": null, "batch_size": 64}
    vision:  {"type": "open_clip", "model": "PE-Core-bigG-14-448",
              "weights": "hf-hub:timm/PE-Core-bigG-14-448", "frames": 8}
    options: {"projector": "/path/projector.pt", "device": "auto", "dtype": "auto"}

Index vectors are unit-normalized for cosine search; SONAR's decoder expects vectors of
SONAR's own scale, so ``decode`` rescales them to the mean teacher norm seen in training.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize
from vidsonar.errors import InputError, NoDecoderError


def uniform_indices(available: int, wanted: int) -> np.ndarray:
    """``wanted`` frame indices spread evenly over ``available`` (all of them if fewer)."""
    if available <= wanted:
        return np.arange(available)
    return np.round(np.linspace(0, available - 1, wanted)).astype(int)


def build_teacher(text: dict, device: str | None = "auto"):
    """The frozen text encoder of a space config's ``text`` section."""
    kind = text.get("type", "sonar")
    if kind == "sonar":
        from encoders.sonar import ENCODER_CARD, SonarTextEncoder
        return SonarTextEncoder(text.get("encoder", ENCODER_CARD), text.get("tokenizer"),
                                device=device, dtype=text.get("dtype", "auto"),
                                batch_size=int(text.get("batch_size", 64)))
    if kind == "e5":
        from encoders.lite import E5Text
        return E5Text(text.get("variant", "original"))
    raise ValueError(f"unknown text teacher type {kind!r}; known: sonar, e5")


def teacher_encode(teacher, texts: list[str], lang: str | None, query: bool = False) -> np.ndarray:
    """Raw (unnormalized) teacher embeddings; e5 reads passages/queries, SONAR a language."""
    from encoders.lite import E5Text
    if isinstance(teacher, E5Text):
        return teacher.encode(texts, query=query)
    return teacher.encode(texts, lang or "eng_Latn")


class VSonarSpace(ConceptSpace):
    def __init__(self, config: SpaceConfig, device: str | None = None, cache_dir=None):
        super().__init__(config, cache_dir)
        self.device_spec = device or config.options.get("device", "auto")

    @property
    def text_type(self) -> str:
        return self.config.text.get("type", "sonar")

    @property
    def needs_language(self) -> bool:  # type: ignore[override]
        return self.text_type == "sonar"

    @property
    def languages(self) -> tuple[str, ...]:
        if self.text_type == "sonar":
            from encoders.sonar import sonar_languages
            return sonar_languages()
        return super().languages

    @property
    def frame_size(self) -> int:  # type: ignore[override]
        return int(self.config.vision.get("image_size") or self.backbone.image_size)

    @cached_property
    def torch_device(self) -> str:
        from encoders.device import pick_device
        return str(pick_device(self.device_spec))

    @property
    def vision_device(self) -> str:
        return self.torch_device

    # --- models, loaded on first use -------------------------------------------------------
    @cached_property
    def teacher(self):
        return build_teacher(self.config.text, self.device_spec)

    @cached_property
    def backbone(self):
        from encoders.vision import load_backbone
        return load_backbone(self.config.vision, device=self.torch_device)

    @cached_property
    def _projector(self):
        from encoders.projector import VSonarProjector
        path = self.config.options.get("projector")
        if not path:
            raise InputError(f"concept space {self.name!r} has no trained projector yet; train one "
                             "with `vidsonar align CONFIG` and use the space it registers")
        model, extra = VSonarProjector.load(path, map_location=self.torch_device)
        return model.to(self.torch_device).eval(), extra

    @property
    def projector(self):
        return self._projector[0]

    @property
    def target_norm(self) -> float:
        return float(self._projector[1].get("target_norm", 1.0))

    @cached_property
    def decoder(self):
        if not self.has_decoder:
            raise NoDecoderError(f"concept space {self.name!r} has no text decoder")
        from encoders.sonar import SonarTextDecoder
        text = self.config.text
        return SonarTextDecoder(text["decoder"], text.get("tokenizer"), device=self.device_spec,
                                dtype=text.get("dtype", "auto"))

    # --- text ------------------------------------------------------------------------------
    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(teacher_encode(self.teacher, texts, lang, query=query))

    # --- vision ----------------------------------------------------------------------------
    @property
    def frames_per_snippet(self) -> int:
        return int(self.config.vision.get("frames", 8))

    def project_features(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """(n, f, D) per-frame features (+ (n, f) mask) -> (n, dim) raw projector outputs."""
        import torch

        from encoders.gpu_feed import is_cuda
        x = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        if is_cuda(self.torch_device):  # pinned host memory: an asynchronous copy
            x = x.pin_memory().to(self.torch_device, non_blocking=True)
        else:
            x = x.to(self.torch_device)
        m = None if mask is None else torch.from_numpy(np.asarray(mask, bool)).to(self.torch_device)
        with torch.inference_mode():
            return self.projector(x, m).float().cpu().numpy()

    def embed_snippets(self, frames: np.ndarray) -> np.ndarray:
        """(n, f, H, W, 3) uint8 -> (n, dim) raw vectors in the teacher's own scale."""
        frames, n, f = self._snippet_batch(frames)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        keep = uniform_indices(f, self.frames_per_snippet)
        frames = frames[:, keep]
        feats = self.backbone.features(frames.reshape(-1, *frames.shape[2:]))
        return self.project_features(feats.reshape(n, len(keep), -1))

    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        return l2_normalize(self.embed_snippets(frames))

    def prepare(self) -> None:
        _ = self.backbone, self._projector

    # --- decoding --------------------------------------------------------------------------
    @property
    def has_decoder(self) -> bool:
        return self.text_type == "sonar" and bool(self.config.text.get("decoder"))

    def decode(self, vectors: np.ndarray, lang: str = "eng_Latn", rescale: bool = True,
               **options) -> list[str]:
        """Verbalize vectors in ``lang``. Options: beam_size, max_len, min_len, len_penalty."""
        if not self.has_decoder:
            return super().decode(vectors, lang, **options)
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if rescale:
            vectors = l2_normalize(vectors) * self.target_norm
        return self.decoder.decode(vectors, lang, **options)
