"""Build a vision backbone from a space config's ``vision`` section.

``BACKBONES`` maps the section's ``type`` to a class with ``from_spec(spec, device)``; a new
backbone is a new entry here, and the base module (``encoders.backbones``) never imports its
subclasses.
"""

from __future__ import annotations

from encoders.backbones import EfficientNetLite0Backbone, FrameBackbone
from encoders.openclip import OpenClipBackbone

BACKBONES: dict[str, type[FrameBackbone]] = {
    "open_clip": OpenClipBackbone,
    "efficientnet-lite0": EfficientNetLite0Backbone,
}


def load_backbone(spec: dict, device: str = "cpu") -> FrameBackbone:
    """The backbone ``spec`` names (default type: open_clip), with fine-tuned weights if given."""
    kind = spec.get("type", "open_clip")
    if kind not in BACKBONES:
        raise ValueError(f"unknown vision backbone type {kind!r}; known: {', '.join(BACKBONES)}")
    backbone = BACKBONES[kind].from_spec(spec, device=device)
    if spec.get("finetuned"):  # weights of a backbone trained jointly by `vidsonar align`
        import torch
        backbone.module.load_state_dict(torch.load(spec["finetuned"], map_location=device, weights_only=True))
        backbone.cache_key += f"+finetuned:{spec['finetuned']}"
    return backbone
