"""Per-frame vision backbones for the v-Sonar projector.

A backbone turns RGB frames into one feature vector per frame. It is a ``torch.nn.Module``
(``module``) so the alignment trainer can unfreeze it, plus a fixed preprocessing step, so
frozen features can be computed once and cached (``cache_key`` names what produced them).

    {"type": "open_clip", "model": "PE-Core-L-14-336", "weights": "hf-hub:timm/PE-Core-L-14-336"}
    {"type": "efficientnet-lite0"}      the lite space's bundled ImageNet network (1280-d)

This module holds the base class; ``encoders.vision`` maps a spec's ``type`` to a class and
builds it (so this module never imports its subclasses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from encoders.frames import center_crop, fit_frame


class FrameBackbone(ABC):
    """A frozen-or-trainable per-frame feature extractor; subclasses add ``from_spec``."""

    #: pixels of the square crop the network reads
    image_size: int
    #: length of one frame's feature vector
    feature_dim: int
    #: a string naming architecture and weights, for feature caches
    cache_key: str
    module: "object"  # torch.nn.Module

    @abstractmethod
    def to_tensor(self, crops: np.ndarray):
        """(n, S, S, 3) uint8 crops -> (n, 3, S, S) float tensor the network reads."""

    @abstractmethod
    def forward(self, pixels):
        """(n, 3, S, S) -> (n, feature_dim); differentiable."""

    def crops(self, frames: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 frames of any size -> (n, S, S, 3) central square crops."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if len(frames) == 0:
            return np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        if min(frames.shape[1:3]) != self.image_size:
            frames = np.stack([fit_frame(f, self.image_size) for f in frames])
        return np.ascontiguousarray(center_crop(frames, self.image_size))

    def features(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(n, H, W, 3) uint8 frames -> (n, feature_dim) float32, without gradients."""
        import torch
        crops = self.crops(frames)
        out = []
        self.module.eval()
        with torch.inference_mode():
            for i in range(0, len(crops), batch_size):
                out.append(self.forward(self.to_tensor(crops[i:i + batch_size])).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.feature_dim), np.float32)


class EfficientNetLite0Backbone(FrameBackbone):
    """EfficientNet-Lite0 (ImageNet, bundled): global-average-pooled 1280-d head features."""

    feature_dim = 1280

    def __init__(self, image_size: int = 224, mean: float = 127.0, std: float = 128.0, device: str = "cpu"):
        from encoders.efficientnet import EfficientNetLite0
        self.net = EfficientNetLite0(image_size, mean, std)
        self.module = self.net.model.to(device)
        self.device = device
        self.image_size, self.mean, self.std = image_size, mean, std
        self.cache_key = f"efficientnet-lite0@{image_size}/{mean}/{std}"

    @classmethod
    def from_spec(cls, spec: dict, device: str = "cpu") -> "EfficientNetLite0Backbone":
        return cls(int(spec.get("image_size", 224)), float(spec.get("mean", 127.0)),
                   float(spec.get("std", 128.0)), device=device)

    def to_tensor(self, crops: np.ndarray):
        import torch
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        return ((x - self.mean) / self.std).to(self.device)

    def forward(self, pixels):
        return self.module.extract_features(pixels).mean(dim=(2, 3))
