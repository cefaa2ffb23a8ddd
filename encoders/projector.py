"""The v-Sonar projector (paper, Appendix D): per-frame vision features -> one target vector.

    frames (B, F, D) ── + sinusoidal temporal positions
                     ── temporal self-attention (8 heads, dropout 0.1), residual
                     ── pooling: a learned CLS query attends over the frames (8 heads)
                        (or mean / max over the valid frames)
                     ── linear map D -> target dim (e.g. 1024 for SONAR)

``mask`` (B, F) marks the real frames, so snippets shorter than F frames (the tail of a video,
an image as a 1-frame snippet) are padded without the padding leaking into attention or pooling.
The optional normalized initialization draws the output map from N(0, 1e-5) with zero biases:
the projector starts near the origin, which keeps the first MSE gradients small when mapping
wide encoder features into the target space. It is applied to the output map only; drawing the
attention weights that small too would shrink every gradient upstream of it to nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

POOLINGS = ("attention", "mean", "max")


@dataclass(frozen=True)
class ProjectorConfig:
    in_dim: int
    out_dim: int
    heads: int = 8
    dropout: float = 0.1
    pooling: str = "attention"
    temporal_attention: bool = True
    positions: bool = True
    normal_init: bool = True
    init_std: float = 1e-5

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.in_dim % self.heads:
            raise ValueError(f"in_dim {self.in_dim} is not divisible by {self.heads} heads")

    @classmethod
    def from_dict(cls, data: dict) -> "ProjectorConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def sinusoidal_positions(n: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n, dim) sine/cosine encodings of positions 0..n-1 (Vaswani et al.), interleaved halves."""
    position = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table.to(dtype)


class VSonarProjector(nn.Module):
    def __init__(self, config: ProjectorConfig):
        super().__init__()
        self.config = config
        d = config.in_dim
        if config.temporal_attention:
            self.temporal = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
            self.temporal_dropout = nn.Dropout(config.dropout)
        if config.pooling == "attention":
            self.cls = nn.Parameter(torch.randn(1, 1, d) * d ** -0.5)
            self.pool = nn.MultiheadAttention(d, config.heads, dropout=config.dropout, batch_first=True)
        self.out = nn.Linear(d, config.out_dim)
        if config.normal_init:
            nn.init.normal_(self.out.weight, 0.0, config.init_std)
            nn.init.zeros_(self.out.bias)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """frames (B, F, in_dim), mask (B, F) True for real frames -> (B, out_dim)."""
        if frames.ndim == 2:
            frames = frames[:, None]
        b, f, _ = frames.shape
        if mask is None:
            mask = torch.ones(b, f, dtype=torch.bool, device=frames.device)
        mask = mask.bool()
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every snippet needs at least one real frame")
        pad = ~mask
        x = frames
        if self.config.positions:
            x = x + sinusoidal_positions(f, x.shape[-1], x.device, x.dtype)
        if self.config.temporal_attention:
            attended, _ = self.temporal(x, x, x, key_padding_mask=pad, need_weights=False)
            x = x + self.temporal_dropout(attended)
        x = x.masked_fill(pad[..., None], 0.0)
        if self.config.pooling == "attention":
            pooled, _ = self.pool(self.cls.expand(b, -1, -1).to(x.dtype), x, x,
                                  key_padding_mask=pad, need_weights=False)
            pooled = pooled[:, 0]
        elif self.config.pooling == "mean":
            pooled = x.sum(1) / mask.sum(1, keepdim=True).to(x.dtype)
        else:
            pooled = x.masked_fill(pad[..., None], float("-inf")).amax(1)
        return self.out(pooled)

    # --- persistence ---------------------------------------------------------------------
    def save(self, path: str | Path, **extra) -> Path:
        """One file: the config, the weights and any metadata (``extra``, JSON-able)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save({"config": asdict(self.config), "state_dict": self.state_dict(),
                    "extra": json.loads(json.dumps(extra))}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, map_location="cpu") -> tuple["VSonarProjector", dict]:
        blob = torch.load(path, map_location=map_location, weights_only=True)
        model = cls(ProjectorConfig.from_dict(blob["config"]))
        model.load_state_dict(blob["state_dict"])
        return model.eval(), blob.get("extra", {})


def pad_frames(features: list[torch.Tensor], frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-snippet (f_i, D) features into (B, F, D) with a (B, F) mask of real frames."""
    f = frames or max(len(x) for x in features)
    d = features[0].shape[-1]
    out = torch.zeros(len(features), f, d, dtype=features[0].dtype)
    mask = torch.zeros(len(features), f, dtype=torch.bool)
    for i, x in enumerate(features):
        n = min(len(x), f)
        out[i, :n] = x[:n]
        mask[i, :n] = True
    return out, mask
