"""The concept-space interface shared by indexing and search.

A space embeds text (queries and captions, in a given language) and snippets (N frames of
video; an image is a 1-frame snippet) into one ``dim``-dimensional space where cosine
similarity means semantic similarity. Vectors come back float32 and unit-norm.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from encoders.frames import fit_frame
from encoders.languages import language_set, resolve_language
from vidsonar.errors import InputError, NoDecoderError, UnknownLanguageError


@dataclass(frozen=True)
class SpaceConfig:
    """One concept space, as written in ``encoders/configs/<name>.json``."""
    name: str
    family: str
    dim: int
    languages: str = "flores200"
    description: str = ""
    text: dict = field(default_factory=dict)
    vision: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    source: str = ""  # the file it was read from

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "SpaceConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "source"}
        missing = [k for k in ("name", "family", "dim") if k not in data]
        if missing:
            raise ValueError(f"space config {source or data!r} lacks {', '.join(missing)}")
        return cls(**known, source=source)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


class ConceptSpace(ABC):
    """Text and vision encoders into one space. Subclasses load their models lazily.

    Optional abilities are declared here, so callers ask instead of probing with ``getattr``:
    ``has_decoder`` (``decode``: vectors to text), ``has_anchors`` (``anchors``: a fixed bank
    of concept vectors for alignment-consistency reranking) and ``has_labels``
    (``nearest_labels``: the concept names closest to a vector). A subclass with one sets the
    flag and overrides the method; the base versions raise an error naming what is missing.
    """

    #: frames are decoded with their short side at this many pixels
    frame_size: int = 224
    #: ``anchors`` returns the space's concept anchors
    has_anchors: bool = False
    #: ``nearest_labels`` names the concepts closest to a vector
    has_labels: bool = False

    def __init__(self, config: SpaceConfig, cache_dir: str | Path | None = None):
        self.config = config
        #: where a space may keep what it derives from its models (the lite label prompts)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else Path("~/.cache/vidsonar").expanduser()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def languages(self) -> tuple[str, ...]:
        return language_set(self.config.languages)

    #: whether the text encoder's output depends on the language code (SONAR's does)
    needs_language: bool = True

    def resolve_language(self, lang: str | None) -> str | None:
        """The FLORES-200 code for ``lang``; None is allowed only where the encoder ignores it."""
        if lang is None:
            if self.needs_language:
                raise UnknownLanguageError("", [], self.name)
            return None
        return resolve_language(lang, self.languages, self.name)

    # --- text -----------------------------------------------------------------------------
    def encode_query(self, texts: Sequence[str], lang: str | None) -> np.ndarray:
        """Embed search queries; ``lang`` is validated against the space's languages."""
        return self._encode_text(list(texts), self.resolve_language(lang), query=True)

    def encode_source(self, texts: Sequence[str], lang: str | None) -> np.ndarray:
        """Embed captions or documents (the 'passage' side of asymmetric encoders)."""
        return self._encode_text(list(texts), self.resolve_language(lang), query=False)

    @abstractmethod
    def _encode_text(self, texts: list[str], lang: str | None, query: bool) -> np.ndarray: ...

    # --- vision ---------------------------------------------------------------------------
    @abstractmethod
    def encode_snippets(self, frames: np.ndarray) -> np.ndarray:
        """(n, f, H, W, 3) uint8 RGB frames -> (n, dim) unit vectors, one per snippet."""

    def _snippet_batch(self, frames: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Checked (n, f, H, W, 3) frames, with n and f, for ``encode_snippets``."""
        frames = np.asarray(frames)
        if frames.ndim != 5:
            raise ValueError(f"expected (n, frames, H, W, 3) snippets, got shape {frames.shape}")
        return frames, frames.shape[0], frames.shape[1]

    @property
    def snippet_batch(self) -> int:
        """Snippets per encoder batch at ingestion: enough to fill a GPU. Spaces whose encoder
        gains nothing from bigger batches give fewer: the first batch then starts sooner, and
        the runner shares cores at a finer grain."""
        return 16

    @property
    def vision_device(self) -> str:
        """Where the vision encoder runs (``cpu``, ``cuda:0``...): the ingestion runner sizes its
        decoder threads by it. Spaces on torch devices override it."""
        return "cpu"

    def share_cores(self, reserved: int) -> None:
        """Leave ``reserved`` CPU cores to other stages of this process: the overlapped
        ingestion runner's decoder thread. Spaces that size a CPU thread pool override it (on
        2 cores, an encoder on both contends with the decoder and the overlap is lost); the
        default does nothing."""

    # --- provenance -----------------------------------------------------------------------
    def identity_facts(self) -> dict:
        """What decides this space's vectors beyond its config (``encoders.identity``): a
        family whose weights are not named in the config (lite's bundled ones) says so here."""
        return {}

    @property
    def numerical_variant(self) -> str | None:
        """How the models run (precision, runtime), in words, where the config does not say
        it (None: read it from the config)."""
        return None

    @property
    def identity(self):
        """The ``EncoderIdentity`` of the vectors this space makes: an archive records it with
        every run and refuses to mix vectors of two identities under one space name."""
        from encoders.identity import identity_of
        return identity_of(self.config, self.identity_facts(), self.numerical_variant)

    @property
    def encoder_summary(self) -> str:
        """``identity.summary`` without the fingerprint: no file is hashed, so it is cheap and
        cannot fail where a run ends. Once the models are loaded it says how they run."""
        from encoders.identity import summary_of
        return summary_of(self.config, self.numerical_variant)

    def cache_files(self) -> list[Path]:
        """Files in ``cache_dir`` that this space made from its models and loads from there
        (lite's ONNX graphs), made now where missing. A runner whose workers may be other
        machines, without this one's cache, sends them along (``indexer.runners.ray``), so
        every worker runs what this machine would. The default: none."""
        return []

    def prepare(self) -> None:
        """Load the vision models now. The overlapped runner's encoder thread calls it first, so
        loading overlaps the first video's decoding instead of delaying the first batch; load
        errors surface here, before any file is blamed. The default loads nothing."""

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Images as 1-frame snippets; each (H, W, 3) uint8, any size."""
        return np.concatenate([self.encode_snippets(fit_frame(img, self.frame_size)[None, None])
                               for img in images]) if images else np.zeros((0, self.dim), np.float32)

    # --- optional abilities (see the class docstring) -------------------------------------
    @property
    def has_decoder(self) -> bool:
        return False

    def decode(self, vectors: np.ndarray, lang: str, **options) -> list[str]:
        raise NoDecoderError(f"concept space {self.name!r} has no text decoder; "
                             "use a SONAR space to verbalize hits")

    @property
    def anchors(self) -> np.ndarray:
        """(m, dim) unit concept anchors; only where ``has_anchors``."""
        raise InputError(f"concept space {self.name!r} has no concept anchors; use --rerank ac-candidates")

    def nearest_labels(self, vectors: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per vector, the ``k`` closest concept labels with their cosines; only where ``has_labels``."""
        raise NoDecoderError(f"concept space {self.name!r} has no text decoder and no concept "
                             "labels to describe hits with")
