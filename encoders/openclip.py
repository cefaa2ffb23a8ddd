"""Vision (and, for the dual-encoder baselines, text) towers through ``open_clip``.

Any open_clip architecture: Perception Encoder PE-Core T/S/B/L/G, SigLIP2, CLIP, or one of
the JSON configs in ``encoders/configs/open_clip`` (tiny ones for tests). Weights come from a
weight source (``encoders.weights``)::

    model="PE-Core-B-16",  weights="hf-hub:timm/PE-Core-B-16"    config and weights from the Hub
    model="PE-Core-B-16",  weights="local-dir:/models/pe-b16"   a Hub snapshot on disk
    model="PE-Core-B-16",  weights="file:/models/pe_b16.bin"    one weight file
    model="ViT-B-32",      weights="openai"                      an open_clip pretrained tag
    model="tiny-vit-test", weights=None                          random init (tests)

Weights: Perception Encoder is Apache-2.0; SigLIP2 is Apache-2.0.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from encoders.backbones import FrameBackbone
from encoders.weights import parse_weight_source
from vidsonar.errors import MissingDependencyError, WeightSourceError

#: the Perception Encoder sizes of the paper's family, as Hub ids (open_clip configs ship with them)
PE_CORE = {"T": "timm/PE-Core-T-16-384", "S": "timm/PE-Core-S-16-384", "B": "timm/PE-Core-B-16",
           "L": "timm/PE-Core-L-14-336", "G": "timm/PE-Core-bigG-14-448"}


@cache
def open_clip():
    """open_clip, with the project's architecture configs registered."""
    try:
        import open_clip as oc
    except ImportError as exc:
        raise MissingDependencyError("open_clip_torch", "Perception Encoder / SigLIP2 backbones", "vision") from exc
    oc.add_model_config(Path(str(resources.files("encoders").joinpath("configs/open_clip"))))
    return oc


def resolve(model: str, weights: str | None) -> tuple[str, str | None]:
    """(model name for ``create_model``, its ``pretrained`` argument) from a model and a source."""
    if model.startswith(("hf-hub:", "local-dir:")):
        return model, None
    if not weights or weights in ("none", "random"):
        return model, None
    src = parse_weight_source(weights, must_exist=True)
    if src.kind == "hf-hub":
        return f"hf-hub:{src.value}", None
    if src.kind == "local-dir":
        return f"local-dir:{src.path}", None
    if src.kind == "file":
        return model, str(src.path)
    return model, src.value  # an open_clip pretrained tag such as "openai" or "webli"


def create(model: str, weights: str | None, device: str = "cpu", precision: str = "fp32"):
    """An open_clip model in eval mode; a bad name or source raises WeightSourceError."""
    oc = open_clip()
    name, pretrained = resolve(model, weights)
    if not name.startswith(("hf-hub:", "local-dir:")) and name not in oc.list_models():
        raise WeightSourceError(f"unknown open_clip architecture {model!r}; see open_clip.list_models() "
                                "or give hf-hub:ORG/NAME")
    try:
        net = oc.create_model(name, pretrained=pretrained, device=device, precision=precision,
                              load_weights=pretrained is not None or name.startswith(("hf-hub:", "local-dir:")))
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise WeightSourceError(f"cannot load open_clip model {model!r} with weights {weights!r}: {exc}") from exc
    return net.eval(), name


class OpenClipBackbone(FrameBackbone):
    """An open_clip image tower as a per-frame feature extractor (its projected embedding)."""

    def __init__(self, model: str, weights: str | None = None, device: str = "cpu",
                 precision: str = "fp32", net=None, batch_size: int | None = None, autocast: str = "auto"):
        import torch

        from encoders.gpu_feed import autocast_dtype, default_batch_size
        self.torch = torch
        self.net, self.name = (net, model) if net is not None else create(model, weights, device, precision)
        self.module = self.net.visual
        self.device = device
        cfg = open_clip().get_model_preprocess_cfg(self.net)
        size = cfg.get("size", 224)
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1).to(device)
        self.std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1).to(device)
        # on CUDA: bf16 autocast and GPU-sized batches (encoders.gpu_feed); on CPU: float32 as before
        self.autocast = autocast
        self.autocast_dtype = autocast_dtype(device, autocast)
        self.batch_size = int(batch_size or default_batch_size(device, self.image_size))
        with torch.inference_mode():
            probe = self.net.encode_image(torch.zeros(1, 3, self.image_size, self.image_size, device=device))
        self.feature_dim = int(probe.shape[-1])
        self.cache_key = f"open_clip:{model}@{weights or 'random'}/{self.image_size}"

    @classmethod
    def from_spec(cls, spec: dict, device: str = "cpu") -> "OpenClipBackbone":
        return cls(spec["model"], spec.get("weights"), device=device, precision=spec.get("precision", "fp32"),
                   batch_size=spec.get("batch_size"), autocast=spec.get("autocast", "auto"))

    def to_tensor(self, crops: np.ndarray):
        from encoders.gpu_feed import to_device_pixels
        return to_device_pixels(crops, self.device, self.mean, self.std)

    def forward(self, pixels):
        return self.net.encode_image(pixels)

    def features(self, frames: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(n, H, W, 3) uint8 frames -> (n, feature_dim) float32, in batches under autocast.

        Batch results stay on the device until the last one, so on a GPU the host prepares
        (crops, pins, copies) batch i+1 while batch i runs."""
        from encoders.gpu_feed import autocast
        torch = self.torch
        crops = self.crops(frames)
        if len(crops) == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        batch = int(batch_size or self.batch_size)
        self.module.eval()
        with torch.inference_mode(), autocast(self.device, self.autocast):
            out = [self.forward(self.to_tensor(crops[i:i + batch])).float() for i in range(0, len(crops), batch)]
        return torch.cat(out).cpu().numpy()

    # --- text tower (dual-encoder baselines) -------------------------------------------------
    def encode_text(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        torch = self.torch
        tokenizer = open_clip().get_tokenizer(self.name)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                out.append(self.net.encode_text(tokenizer(texts[i:i + batch_size]).to(self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.feature_dim), np.float32)
