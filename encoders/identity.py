"""What made a space's vectors: a fingerprint that an archive records with every ingest run.

Vectors are comparable only when the same models made them. A space keeps its name across
upgrades and retraining (new weights, a projector retrained at the same path, another prompt or
temperature), so the name alone cannot tell two sets apart, and a query then silently misses
the older footage. The fingerprint hashes the config entries that shape the vectors and the
bytes of every local file they name, plus what a family adds (``ConceptSpace.identity_facts``:
lite's bundled weights and e5's version).

Numerical variants of one model are left out of the fingerprint: precision, runtime, batch
size, threads, device, autocast. Their vectors differ by rounding (lite's int8 and float graphs:
retrieval figures within 3 points of each other, README "Concept spaces"), so an archive may
mix them. The summary names them, for people: what is asked until the models are loaded, then
what runs (``ConceptSpace.numerical_variant``: lite's ONNX Runtime may fall back to torch), and
an ingest run records the latter when it ends.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from storage.atomic import sha256_file

#: config keys that choose how a model runs, not which model it is
NUMERICAL = frozenset({"batch_size", "threads", "device", "precision", "runtime", "autocast", "dtype"})
#: files above this size are fingerprinted by their size and first and last blocks: hashing a
#: multi-GB checkpoint at every ingest would cost tens of seconds
FULL_HASH_LIMIT = 256 << 20
_BLOCK = 4 << 20
OWN_TOWER = "the vision model's own tower"


@dataclass(frozen=True)
class EncoderIdentity:
    """``fingerprint``: 16 hex digits that change when the vectors' models change; ``summary``:
    the models in words (with the numerical variant), for error messages and ``vidsonar info``."""
    fingerprint: str
    summary: str


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (sampled above ``FULL_HASH_LIMIT``), cached while the file's
    size and modification time stay the same."""
    st = os.stat(path)
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, _mtime_ns: int) -> str:
    if size <= FULL_HASH_LIMIT:
        return sha256_file(Path(path))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f"sampled/{size}/".encode())
        h.update(f.read(_BLOCK))
        f.seek(size - _BLOCK)
        h.update(f.read(_BLOCK))
    return "sampled-" + h.hexdigest()


def _names_file(value: str) -> bool:
    """Whether a config string is a path to a local file (names such as ``PE-Core-L-14-336`` or
    ``hf-hub:timm/...`` are not, even where a file of that name happens to be in the cwd)."""
    if "/" not in value and not value.startswith("~") or value.startswith("hf-hub:"):
        return False
    try:
        return Path(value).expanduser().is_file()
    except (OSError, ValueError):
        return False


def canonical(value):
    """``value`` with numerical keys dropped and local files replaced by their digests."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items()) if k not in NUMERICAL}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, str) and _names_file(value):
        return {"file": Path(value).name, "sha256": file_digest(Path(value).expanduser())}
    return value


def identity_of(config, facts: dict | None = None, variant: str | None = None) -> EncoderIdentity:
    """The identity of the vectors a space of ``config`` (a ``SpaceConfig``) makes. ``facts``:
    what its family adds (hashed like config entries); ``variant``: the numerical variant in
    words, where the config does not say it all (lite's environment overrides)."""
    shaped = canonical({"family": config.family, "dim": config.dim, "text": config.text,
                        "vision": config.vision, "options": config.options, "facts": facts or {}})
    blob = json.dumps(shaped, sort_keys=True, separators=(",", ":"), default=str)
    return EncoderIdentity(hashlib.sha256(blob.encode()).hexdigest()[:16], summary_of(config, variant))


def summary_of(config, variant: str | None = None) -> str:
    """``family: text ..., vision ... [variant]``."""
    def named(part: dict, keys: tuple[str, ...]) -> str:
        bits = [str(part[k]) for k in keys if part.get(k)]
        return " ".join(Path(b).name if "/" in b and not b.startswith("hf-hub:") else b for b in bits)
    text = named(config.text, ("type", "encoder", "variant", "model"))
    vision = named(config.vision, ("type", "model", "image_size"))
    projector = config.options.get("projector")
    variant = named(config.vision, ("precision", "runtime")) if variant is None else variant
    out = f"{config.family}: text {text or OWN_TOWER}, vision {vision or 'default'}"
    if projector:
        out += f", projector {Path(str(projector)).name}"
    return out + (f" [{variant}]" if variant else "")
