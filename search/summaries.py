"""Summaries of hits: the SONAR decoder verbalizes a snippet's vector in a chosen language.

Cached in the catalog per (snippet, language, model), except in a read-only one (each
request makes them again). A space without a text decoder (lite)
gets an honest fallback of kind ``labels``: the concepts nearest the vector, in English,
never text that pretends to be decoded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from encoders.base import ConceptSpace
from storage.annotations import cached_summary, store_summary
from storage.catalog import Catalog
from vidsonar.errors import NoDecoderError, NotFoundError

DECODED, LABELS = "decoded", "labels"


@dataclass(frozen=True)
class Summary:
    snippet_id: int
    lang: str
    kind: str  # "decoded": generated text in ``lang``; "labels": nearest concept labels (English)
    text: str
    model: str
    cached: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def model_key(space: ConceptSpace, beam_size: int, max_len: int) -> str:
    if space.has_decoder:
        return f"{space.name}:beam={beam_size}:max_len={max_len}"
    return f"{space.name}:labels"


def summarize(catalog: Catalog, space: ConceptSpace, snippet_ids: list[int], lang: str,
              beam_size: int = 5, max_len: int = 64, vectors_for=None) -> dict[int, Summary]:
    """Summaries of the given snippets in ``lang`` (a FLORES-200 code), from cache where possible.
    ``vectors_for(ids)`` reads the vectors (the index store's, when the catalog keeps none)."""
    # checked for label spaces too (their labels are English whatever the code): an unknown
    # code is an error as on GET /api/snippets/{id}/summary, not a cache key of its own
    lang = space.resolve_language(lang)
    model = model_key(space, beam_size, max_len)
    out: dict[int, Summary] = {}
    todo = []
    for sid in snippet_ids:
        hit = cached_summary(catalog, sid, lang, model)
        if hit is not None:
            out[sid] = Summary(sid, lang, hit.kind, hit.text, model, cached=True)
        else:
            todo.append(sid)
    if not todo:
        return out
    ids, vectors = vectors_for(todo) if vectors_for else catalog.vectors_for(todo, space.name)
    missing = set(todo) - set(ids.tolist())
    if missing:
        raise NotFoundError(f"no {space.name!r} embedding for snippet(s) {sorted(missing)}")
    kind, texts = _verbalize(space, vectors, lang, beam_size, max_len)
    for sid, text in zip(ids.tolist(), texts):
        if not catalog.read_only:
            store_summary(catalog, sid, lang, model, kind, text)
        out[sid] = Summary(sid, lang, kind, text, model)
    return out


def _verbalize(space: ConceptSpace, vectors: np.ndarray, lang: str, beam_size: int,
               max_len: int) -> tuple[str, list[str]]:
    if space.has_decoder:
        return DECODED, space.decode(vectors, lang, beam_size=beam_size, max_len=max_len)
    if not space.has_labels:
        raise NoDecoderError(f"concept space {space.name!r} has no text decoder and no concept "
                             "labels to describe hits with")
    return LABELS, ["nearest concepts (English labels, not a caption): "
                    + ", ".join(label for label, _ in row) for row in space.nearest_labels(vectors, k=3)]
