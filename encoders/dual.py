"""Native dual encoders (SigLIP2, PE-Core with their own text towers) as baseline spaces.

The benchmarks compare v-Sonar against what the backbone's own contrastive text tower gives,
through the same registry and the same snippet interface: a snippet is the mean of its
frames' normalized image embeddings. These towers read their training languages without a
language code (SigLIP2 is multilingual; PE-Core's text tower is mostly English).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from encoders.base import ConceptSpace, SpaceConfig, l2_normalize


class DualEncoderSpace(ConceptSpace):
    needs_language = False

    def __init__(self, config: SpaceConfig, device: str | None = None, cache_dir=None):
        super().__init__(config, cache_dir)
        self.device_spec = device or config.options.get("device", "auto")

    @cached_property
    def vision_device(self) -> str:  # type: ignore[override]
        from encoders.device import pick_device
        return str(pick_device(self.device_spec))

    @cached_property
    def backbone(self):
        from encoders.openclip import OpenClipBackbone
        v = self.config.vision
        return OpenClipBackbone(v["model"], v.get("weights"), device=self.vision_device,
                                precision=v.get("precision", "fp32"), batch_size=v.get("batch_size"),
                                autocast=v.get("autocast", "auto"))

    @property
    def frame_size(self) -> int:  # type: ignore[override]
        return int(self.config.vision.get("image_size") or self.backbone.image_size)

    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.backbone.encode_text(texts))

    def prepare(self) -> None:
        _ = self.backbone

    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        frames, n, f = self._snippet_batch(frames)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        feats = l2_normalize(self.backbone.features(frames.reshape(-1, *frames.shape[2:])))
        return l2_normalize(feats.reshape(n, f, -1).mean(axis=1))
