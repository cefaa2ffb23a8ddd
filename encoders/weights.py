"""Where model weights come from, kept apart from what the model is (its architecture).

A weight source is one string, parsed in one place so every encoder accepts the same forms::

    hf-hub:timm/PE-Core-B-16         a Hugging Face Hub repository (downloaded once, cached)
    local-dir:/models/sonar          a directory holding the files
    file:/models/pe_core_b16.bin     one file
    text_sonar_basic_encoder         a bare name: a library's own name (asset card, pretrained tag)

Like open_clip's ``parse_model_name`` and ``pretrained.py``: a malformed source fails here,
with the string quoted, instead of deep inside a loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidsonar.errors import WeightSourceError

SCHEMES = ("hf-hub", "local-dir", "file")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.@-]*$")


@dataclass(frozen=True)
class WeightSource:
    """A parsed weight source; ``kind`` is one of SCHEMES or ``name``."""
    kind: str
    value: str

    @property
    def path(self) -> Path:
        if self.kind not in ("local-dir", "file"):
            raise WeightSourceError(f"weight source {str(self)!r} is not a local path")
        return Path(self.value).expanduser()

    @property
    def is_local(self) -> bool:
        return self.kind in ("local-dir", "file")

    def __str__(self) -> str:
        return self.value if self.kind == "name" else f"{self.kind}:{self.value}"


def parse_weight_source(source: str | WeightSource, *, must_exist: bool = False) -> WeightSource:
    """Parse ``source``; WeightSourceError (quoting it) when it cannot name weights."""
    if isinstance(source, WeightSource):
        parsed = source
    else:
        raw = (source or "").strip() if isinstance(source, str) else source
        if not isinstance(raw, str) or not raw:
            raise WeightSourceError(f"empty weight source {source!r}; use hf-hub:ORG/NAME, "
                                    "local-dir:/path, file:/path or a model name")
        scheme, sep, rest = raw.partition(":")
        if sep and scheme in SCHEMES:
            rest = rest.strip()
            if rest.startswith("//"):
                rest = rest[2:]
            if not rest:
                raise WeightSourceError(f"weight source {raw!r} names no {scheme} location")
            if scheme == "hf-hub" and not _HUB_ID.match(rest):
                raise WeightSourceError(f"weight source {raw!r}: a hub id looks like "
                                        "hf-hub:ORG/NAME (optionally @REVISION)")
            parsed = WeightSource(scheme, rest)
        elif sep and len(scheme) > 1 and "/" not in scheme:
            raise WeightSourceError(f"weight source {raw!r} has unknown scheme {scheme!r}; "
                                    f"known: {', '.join(s + ':' for s in SCHEMES)}")
        elif raw.startswith(("/", "~", ".")) or (sep and len(scheme) == 1):
            # a bare path (or a Windows drive letter) is a file or a directory
            kind = "local-dir" if Path(raw).expanduser().is_dir() else "file"
            parsed = WeightSource(kind, raw)
        elif _NAME.match(raw):
            parsed = WeightSource("name", raw)
        else:
            raise WeightSourceError(f"cannot parse weight source {raw!r}; use hf-hub:ORG/NAME, "
                                    "local-dir:/path, file:/path or a model name")
    if must_exist and parsed.is_local and not parsed.path.exists():
        raise WeightSourceError(f"weight source {str(parsed)!r}: {parsed.path} does not exist")
    if must_exist and parsed.kind == "local-dir" and not parsed.path.is_dir():
        raise WeightSourceError(f"weight source {str(parsed)!r}: {parsed.path} is not a directory")
    return parsed


def find_file(directory: Path, patterns: tuple[str, ...], what: str, source: str) -> Path:
    """The one file in ``directory`` matching the first pattern that matches anything."""
    for pattern in patterns:
        hits = sorted(directory.glob(pattern))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise WeightSourceError(f"weight source {source!r}: several {what} files match "
                                    f"{pattern!r} in {directory}: {', '.join(h.name for h in hits)}")
    raise WeightSourceError(f"weight source {source!r}: no {what} file ({', '.join(patterns)}) "
                            f"in {directory}")
