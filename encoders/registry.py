"""Named concept spaces, configured as JSON data and built by family.

Configs are read from ``encoders/configs/*.json`` (shipped), from ``$VIDSONAR_HOME/spaces``
(spaces that users train, e.g. with ``vidsonar align``), and from files added with
``add_space_config``. A config's ``family`` picks the class that builds it::

    >>> list_spaces()
    ['lite', ...]
    >>> space = load_space("lite")
    >>> space.encode_query(["a cat"], lang="eng_Latn").shape
    (1, 384)
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from encoders.base import ConceptSpace, SpaceConfig
from vidsonar.errors import UnknownSpaceError

#: family name -> "module:Class" building that family's spaces
FAMILIES: dict[str, str] = {
    "label-bridge": "encoders.lite:LabelBridgeSpace",
    "v-sonar": "encoders.vsonar:VSonarSpace",
    "open-clip-dual": "encoders.dual:DualEncoderSpace",
}

_CONFIGS: dict[str, SpaceConfig] = {}
_SCANNED_DIRS: set[str] = set()


def register_family(name: str, target: str) -> None:
    FAMILIES[name] = target


@contextmanager
def scoped_registry() -> Iterator[None]:
    """Families and spaces registered inside are forgotten on exit (tests, trial configs)."""
    families, configs, scanned = dict(FAMILIES), dict(_CONFIGS), set(_SCANNED_DIRS)
    try:
        yield
    finally:
        FAMILIES.clear()
        FAMILIES.update(families)
        _CONFIGS.clear()
        _CONFIGS.update(configs)
        _SCANNED_DIRS.clear()
        _SCANNED_DIRS.update(scanned)


def _read(path: Path) -> SpaceConfig:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read space config {path}: {exc}") from exc
    return SpaceConfig.from_dict(data, source=str(path))


def _scan() -> None:
    if "<builtin>" not in _SCANNED_DIRS:
        for entry in sorted(resources.files("encoders").joinpath("configs").iterdir(),
                            key=lambda p: p.name):
            if entry.name.endswith(".json"):
                cfg = _read(Path(str(entry)))
                _CONFIGS.setdefault(cfg.name, cfg)
        _SCANNED_DIRS.add("<builtin>")
    home = os.environ.get("VIDSONAR_HOME")
    if home:
        scan_dir(Path(home).expanduser() / "spaces")


def scan_dir(directory: Path) -> None:
    """Register every ``*.json`` space config in ``directory`` (once per directory)."""
    key = str(Path(directory).resolve())
    if key in _SCANNED_DIRS or not Path(directory).is_dir():
        return
    for path in sorted(Path(directory).glob("*.json")):
        cfg = _read(path)
        _CONFIGS[cfg.name] = cfg
    _SCANNED_DIRS.add(key)


def add_space_config(path_or_config: str | Path | SpaceConfig | dict) -> SpaceConfig:
    """Register a space from a JSON file, a dict or a SpaceConfig; returns the config."""
    if isinstance(path_or_config, SpaceConfig):
        cfg = path_or_config
    elif isinstance(path_or_config, dict):
        cfg = SpaceConfig.from_dict(path_or_config)
    else:
        cfg = _read(Path(path_or_config))
    if cfg.family not in FAMILIES:
        raise ValueError(f"space {cfg.name!r} has unknown family {cfg.family!r}; "
                         f"known: {', '.join(sorted(FAMILIES))}")
    _scan()
    _CONFIGS[cfg.name] = cfg
    return cfg


def list_spaces() -> list[str]:
    _scan()
    return sorted(_CONFIGS)


def get_space_config(name: str) -> SpaceConfig:
    _scan()
    if name not in _CONFIGS:
        raise UnknownSpaceError(name, sorted(_CONFIGS))
    return _CONFIGS[name]


def load_space(name_or_config: str | SpaceConfig, **kwargs) -> ConceptSpace:
    """Build a space by name (or from a config); models load lazily on first use."""
    cfg = name_or_config if isinstance(name_or_config, SpaceConfig) else get_space_config(name_or_config)
    if cfg.family not in FAMILIES:
        raise ValueError(f"space {cfg.name!r} has unknown family {cfg.family!r}; "
                         f"known: {', '.join(sorted(FAMILIES))}")
    module, _, cls_name = FAMILIES[cfg.family].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(cfg, **kwargs)
