"""Per-frame vision backbones for the v-Sonar projector.

A backbone turns RGB frames into one feature vector per frame. It is a ``torch.nn.Module``
(``module``) so the alignment trainer can unfreeze it, plus a fixed preprocessing step, so
frozen features can be computed once and cached (``cache_key`` names what produced them).

    {"type": "open_clip", "model": "PE-Core-L-14-336", "weights": "hf-hub:timm/PE-Core-L-14-336"}
    {"type": "efficientnet-lite0"}      the lite space's bundled ImageNet network (1280-d)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from encoders.frames import center_crop, fit_frame


class FrameBackbone(ABC):
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
        from encoders.lite import EfficientNetLite0
        self.net = EfficientNetLite0(image_size, mean, std)
        self.module = self.net.model.to(device)
        self.device = device
        self.image_size, self.mean, self.std = image_size, mean, std
        self.cache_key = f"efficientnet-lite0@{image_size}/{mean}/{std}"

    def to_tensor(self, crops: np.ndarray):
        import torch
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
        return ((x - self.mean) / self.std).to(self.device)

    def forward(self, pixels):
        return self.module.extract_features(pixels).mean(dim=(2, 3))


def load_backbone(spec: dict, device: str = "cpu") -> FrameBackbone:
    """Build a backbone from a space config's ``vision`` section."""
    kind = spec.get("type", "open_clip")
    if kind == "open_clip":
        from encoders.openclip import OpenClipBackbone
        backbone: FrameBackbone = OpenClipBackbone(spec["model"], spec.get("weights"), device=device,
                                                   precision=spec.get("precision", "fp32"),
                                                   batch_size=spec.get("batch_size"),
                                                   autocast=spec.get("autocast", "auto"))
    elif kind == "efficientnet-lite0":
        backbone = EfficientNetLite0Backbone(int(spec.get("image_size", 224)), float(spec.get("mean", 127.0)),
                                             float(spec.get("std", 128.0)), device=device)
    else:
        raise ValueError(f"unknown vision backbone type {kind!r}; known: open_clip, efficientnet-lite0")
    if spec.get("finetuned"):  # weights of a backbone trained jointly by `vidsonar align`
        import torch
        backbone.module.load_state_dict(torch.load(spec["finetuned"], map_location=device, weights_only=True))
        backbone.cache_key += f"+finetuned:{spec['finetuned']}"
    return backbone
