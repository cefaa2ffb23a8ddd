"""The alignment recipe, read from YAML or JSON. Defaults follow the paper's Appendix D.

    name: my-vsonar                  # the concept space the trained projector registers
    space: {...}                     # a space config template (family v-sonar), or a space name
    workdir: ./align-work            # features, checkpoints ({home} and {config_dir} expand)
    projector: {pooling: attention}  # ProjectorConfig fields (in/out dims come from the models)
    freeze_backbone_steps: 2000      # backbone frozen this many steps, then joint training
    stages:
      - name: images
        manifest: images.jsonl       # JSONL: media, caption, lang, [start, end, group]
        val_manifest: images-val.jsonl   # or val_fraction: 0.1
        epochs: 15
        batch_size: 512
        lr: 1.0e-4                   # projector
        backbone_lr: 1.0e-5          # used once the backbone is unfrozen
        warmup_steps: 500
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from vidsonar.errors import InputError


@dataclass(frozen=True)
class StageConfig:
    name: str
    manifest: str
    val_manifest: str | None = None
    val_fraction: float = 0.1
    epochs: int = 10
    batch_size: int = 128
    accumulate: int = 1
    lr: float = 1e-4
    backbone_lr: float = 1e-5
    warmup_steps: int = 500
    weight_decay: float = 0.01
    patience: int = 3
    max_val: int = 2000

    @classmethod
    def from_dict(cls, data: dict) -> "StageConfig":
        return cls(**_known(cls, data, "stage"))


@dataclass(frozen=True)
class AlignConfig:
    name: str
    space: dict
    stages: tuple[StageConfig, ...]
    workdir: str = "{home}/align/{name}"
    projector: dict = field(default_factory=dict)
    freeze_backbone_steps: int = 2000
    mse_weight: float = 1.0
    infonce_weight: float = 0.0
    infonce_temperature: float = 0.05
    seed: int = 42
    device: str = "auto"
    bf16: bool = True
    prepare: dict = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "AlignConfig":
        data = dict(data)
        if not data.get("stages"):
            raise InputError(f"align config {source or 'given'} has no stages")
        stages = tuple(StageConfig.from_dict(s) for s in data.pop("stages"))
        known = _known(cls, data, "align config")
        known.pop("stages", None)
        for key in ("name", "space"):
            if key not in known:
                raise InputError(f"align config {source or 'given'} lacks {key!r}")
        return cls(**known, stages=stages, source=source)

    @property
    def config_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source else Path.cwd()

    def expand(self, text: str, home: Path) -> str:
        """Placeholders {home}, {name}, {config_dir}, {workdir} in paths of the config."""
        values = {"home": str(home), "name": self.name, "config_dir": str(self.config_dir)}
        out = text.replace("{workdir}", self.workdir) if "{workdir}" in text else text
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return str(Path(out).expanduser()) if out.startswith(("~", "/", ".")) else out


def _known(cls, data: dict, what: str) -> dict:
    names = {f.name for f in fields(cls)} - {"source"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown {what} keys: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return {k: v for k, v in data.items() if k in names}


def load_config(path: str | Path) -> AlignConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read align config {path}: {exc}") from exc
    if path.suffix in (".yaml", ".yml"):
        import yaml
        data = yaml.safe_load(text)
    elif path.suffix == ".toml":
        import tomllib
        data = tomllib.loads(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise InputError(f"align config {path} is not a mapping")
    return AlignConfig.from_dict(data, source=str(path))
