"""Text-to-video search: one way in, one result type, for the CLI and the server alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace
from indexer.thumbs import thumbnail_path
from storage.catalog import Catalog
from storage.ids import unpack_snippet_id
from storage.index_store import IndexStore
from vidsonar.errors import InputError

MAX_K = 1000


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    snippet_id: int
    video_id: int
    video_path: str
    start: float
    end: float
    thumbnail: str | None = None


@dataclass(frozen=True)
class SearchResult:
    query: str
    lang: str | None
    space: str
    hits: list[Hit]

    def to_json(self) -> dict:
        return {"query": self.query, "lang": self.lang, "space": self.space,
                "hits": [asdict(h) for h in self.hits]}


class Searcher:
    def __init__(self, catalog: Catalog, space: ConceptSpace, store: IndexStore, thumbs: Path):
        self.catalog, self.space, self.store, self.thumbs = catalog, space, store, Path(thumbs)

    def search(self, query: str, lang: str | None = None, k: int = 10) -> SearchResult:
        if not query or not query.strip():
            raise InputError("empty query: say what you want to see")
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, got {k}")
        lang = self.space.resolve_language(lang)
        vector = self.space.encode_query([query], lang)
        return SearchResult(query, lang, self.space.name, self.search_vector(vector[0], k))

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        scores, ids = self.store.search(vector[None, :], k)
        found = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        rows = self.catalog.snippets(i for _, i in found)
        hits = []
        for score, sid in found:
            row = rows.get(sid)
            if row is None:  # in the index but deleted from the catalog: never shown
                continue
            video_id, index = unpack_snippet_id(sid)
            thumb = thumbnail_path(self.thumbs, video_id, index)
            hits.append(Hit(len(hits) + 1, round(score, 6), sid, video_id, row.video.path,
                            row.start, row.end, str(thumb) if thumb.exists() else None))
        return hits
