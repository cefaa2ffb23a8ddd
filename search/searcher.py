"""Search: one way in and one result type, for the CLI, the server and the Python API.

A query goes: language (given, or detected offline) -> query vector -> candidates (the
index, or an exact scan of the snippets the filters allow) -> optional reranking by
alignment consistency -> moments (every snippet of the best videos scored and grounded:
search.grounding; duplicates collapsed, optionally one per video) -> optional summaries.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from encoders.base import ConceptSpace, l2_normalize
from encoders.language_id import detect_language
from indexer.thumbs import thumbnail_path
from search import grounding, moments as moments_
from search.examples import image_vector, snippet_vector, video_vector
from search.rerank import RERANKERS, alignment_consistency, blend
from search.summaries import Summary, summarize
from storage.annotations import Filters, allowed_videos
from storage.catalog import Catalog
from storage.ids import unpack_snippet_id
from storage.index_store import IndexStore
from storage.shots import shot_spans
from storage.timelines import timelines
from vidsonar.errors import InputError

MAX_K = 1000
#: longest path pattern a filter may carry: within SQLite's LIKE pattern limit (50,000 bytes
#: by default; past it the query fails) even at 4 UTF-8 bytes a character
MAX_PATH_GLOB = 1000
#: detected languages below this confidence fall back to the default language
MIN_DETECT_CONFIDENCE = 0.3
DEFAULT_RERANK = "none"
DEFAULT_RERANK_WEIGHT = 0.1
#: moments are grounded over every snippet of at least this many of the best videos
MIN_GROUNDED_VIDEOS = 8


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
    snippet_ids: list[int] = field(default_factory=list)  # every snippet of the moment
    duplicates: list[int] = field(default_factory=list)  # near-identical snippets of other videos
    summary: dict | None = None
    video_moments: list[dict] = field(default_factory=list)  # this video's moments for the query
    snapped: bool = False  # the moment was stretched to its shot's boundaries (search.shot_snap)


@dataclass(frozen=True)
class SearchResult:
    query: str
    lang: str | None
    space: str
    hits: list[Hit]
    lang_source: str | None = None  # "given", "detected" or "default"
    detected_language: dict | None = None  # {"code", "confidence"} when detection ran
    rerank: str = DEFAULT_RERANK
    took_ms: float = 0.0

    def to_json(self) -> dict:
        return {"query": self.query, "lang": self.lang, "space": self.space,
                "lang_source": self.lang_source, "detected_language": self.detected_language,
                "rerank": self.rerank, "took_ms": round(self.took_ms, 2),
                "hits": [asdict(h) for h in self.hits]}


class Searcher:
    def __init__(self, catalog: Catalog, space: ConceptSpace, store: IndexStore, thumbs: Path,
                 rerank: str = DEFAULT_RERANK, rerank_weight: float = DEFAULT_RERANK_WEIGHT,
                 candidates: int = 50):
        self.catalog, self.space, self.store, self.thumbs = catalog, space, store, Path(thumbs)
        self.rerank, self.rerank_weight, self.candidates = rerank, rerank_weight, candidates
        self.margin, self.max_moment = moments_.MARGIN, moments_.MAX_MOMENT  # grounding (benchmarks vary them)
        self.snap_shots = True  # moments snap to the video's shots unless a request says not to

    # --- entry points -----------------------------------------------------------------------
    def search(self, query: str, lang: str | None = None, k: int = 10, *,
               filters: Filters | None = None, rerank: str | None = None,
               moments: bool = True, group_by_video: bool = False, collapse: bool = True,
               summaries: bool = False, summary_lang: str | None = None,
               beam_size: int = 5, max_len: int = 64, snap_shots: bool | None = None) -> SearchResult:
        """Snippets (merged into moments) that best match a text query."""
        started = time.perf_counter()
        if not query or not query.strip():
            raise InputError("empty query: say what you want to see")
        _check_k(k)
        lang, source, detected = self._language(query, lang)
        vector = self.space.encode_query([query], lang)[0]
        rerank = self._check_rerank(rerank)
        hits = self.search_vector(vector, k, filters=filters, rerank=rerank, lang=lang,
                                  moments=moments, group_by_video=group_by_video, collapse=collapse,
                                  snap_shots=snap_shots)
        if summaries:
            hits = self._with_summaries(hits, summary_lang or lang or "eng_Latn", beam_size, max_len)
        return SearchResult(query, lang, self.space.name, hits, source, detected, rerank,
                            (time.perf_counter() - started) * 1000)

    def search_example(self, *, image: str | None = None, video: str | None = None,
                       like: int | None = None, k: int = 10, filters: Filters | None = None,
                       moments: bool = True, group_by_video: bool = False, collapse: bool = True,
                       summaries: bool = False, summary_lang: str = "eng_Latn",
                       snap_shots: bool | None = None) -> SearchResult:
        """Query by example: exactly one of an image file, a video clip ``PATH[:START-END]``, or
        an ingested snippet's id (that snippet itself is left out of the hits)."""
        started = time.perf_counter()
        given = [x for x in (image, video, like) if x is not None]
        if len(given) != 1:
            raise InputError("give exactly one example: --image PATH, --video PATH[:START-END] or --like SNIPPET_ID")
        _check_k(k)
        if image is not None:
            vector, label = image_vector(self.space, image), f"image:{image}"
        elif video is not None:
            vector, label = video_vector(self.space, video), f"video:{video}"
        else:
            vector, label = snippet_vector(self.catalog, self.space.name, int(like),
                                           self.store.vectors_for), f"snippet:{like}"
        hits = self.search_vector(vector, k, filters=filters, moments=moments,
                                  group_by_video=group_by_video, collapse=collapse,
                                  exclude={int(like)} if like is not None else None,
                                  snap_shots=snap_shots)
        if summaries:
            hits = self._with_summaries(hits, summary_lang, 5, 64)
        return SearchResult(label, None, self.space.name, hits, None, None, "none",
                            (time.perf_counter() - started) * 1000)

    def summarize(self, snippet_id: int, lang: str, beam_size: int = 5, max_len: int = 64) -> Summary:
        return summarize(self.catalog, self.space, [int(snippet_id)], lang, beam_size, max_len,
                         self.store.vectors_for)[int(snippet_id)]

    # --- the pipeline -------------------------------------------------------------------------
    def search_vector(self, vector: np.ndarray, k: int, *, filters: Filters | None = None,
                      rerank: str = "none", lang: str | None = None, moments: bool = True,
                      group_by_video: bool = False, collapse: bool = True,
                      exclude: set[int] | None = None, snap_shots: bool | None = None) -> list[Hit]:
        """Hits for a query vector already in the space. ``snap_shots``: moments snap to their
        video's shots (None: the searcher's default, on)."""
        vector = l2_normalize(np.asarray(vector, np.float32))
        grouped = moments or group_by_video or collapse
        n = max(k * 4, self.candidates) if (grouped or rerank != "none") else k
        # one hit per video and no moments to merge: the backend groups (Milvus group_by_field)
        ids, scores = self._candidates(vector, n + len(exclude or ()), filters,
                                       per_video=group_by_video and not moments)
        if exclude:
            keep = ~np.isin(ids, list(exclude))
            ids, scores = ids[keep], scores[keep]
        vectors = None
        if rerank != "none" or collapse:
            found, vectors = self.store.vectors_for(ids)
            ids, scores = found, scores[np.isin(ids, found)] if len(found) != len(ids) else scores
        if rerank != "none" and len(ids):
            scores = self._rerank(rerank, vector, vectors, scores, lang)
            order = np.argsort(-scores, kind="stable")
            ids, scores, vectors = ids[order], scores[order], vectors[order]
        rows = self.catalog.snippets(ids.tolist())
        candidates = []
        for sid, score in zip(ids.tolist(), scores.tolist()):
            row = rows.get(sid)
            if row is None:  # in the index but gone from the catalog: never shown
                continue
            candidates.append({"snippet_id": sid, "video_id": row.video_id, "video_path": row.video.path,
                               "start": row.start, "end": row.end, "score": float(score)})
        lookup = dict(zip(ids.tolist(), vectors)) if vectors is not None else {}
        if moments:
            snap = self.snap_shots if snap_shots is None else bool(snap_shots)
            return self._moments(vector, candidates, k, rerank, lang, exclude, group_by_video, collapse, snap)
        # --snippets: the best candidates as they are (duplicates collapsed, maybe one per video),
        # widening the pool until k hits remain
        m = 2 * k
        while True:
            hits = candidates[:m]
            if collapse and lookup:
                hits = moments_.collapse_duplicates(hits, lookup.__getitem__)
            if group_by_video:
                hits = moments_.best_per_video(hits)
            if len(hits) >= k or m >= len(candidates):
                break
            m += k
        return [self._hit(rank, h) for rank, h in enumerate(hits[:k], start=1)]

    def _moments(self, vector: np.ndarray, candidates: list[dict], k: int, rerank: str,
                 lang: str | None, exclude: set[int] | None, group_by_video: bool,
                 collapse: bool, snap: bool = True) -> list[Hit]:
        """Ground the candidates' videos (search.grounding): the best videos first, widened until
        k moments remain after duplicates collapse (and one per video, if asked); ``snap``: the
        moments of videos with shots snap to them."""
        rescore = None if rerank == "none" else (
            lambda vecs, cos: self._rerank(rerank, vector, vecs, cos.astype(np.float32), lang))
        videos = grounding.ranked_videos(candidates)
        take = max(k, MIN_GROUNDED_VIDEOS)
        while True:
            lines = timelines(self.catalog, videos[:take], self.store.vectors_for)
            hits = grounding.video_moments(vector, [lines[v] for v in videos[:take] if v in lines],
                                           exclude=exclude, rescore=rescore, margin=self.margin,
                                           max_length=self.max_moment,
                                           shots=shot_spans(self.catalog, videos[:take]) if snap else None)
            if collapse:
                hits = moments_.collapse_duplicates(hits, {h["snippet_id"]: h["vector"] for h in hits}.__getitem__)
            if group_by_video:
                hits = moments_.best_per_video(hits)
            if len(hits) >= k or take >= len(videos):
                break
            take *= 2
        return [self._hit(rank, h) for rank, h in enumerate(hits[:k], start=1)]

    def _candidates(self, vector: np.ndarray, n: int, filters: Filters | None,
                    per_video: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the best ``n`` snippets the filters allow, best first.

        Filters resolve to the allowed videos in the catalog and are pushed into the backend's
        search (a FAISS IDSelector, a Milvus expression), so no widening and no rescans."""
        videos = None
        if filters is not None and not filters.empty:
            _check_path_glob(filters.path_glob)
            videos = allowed_videos(self.catalog, filters)
            if not len(videos):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, ids = self.store.search(vector[None, :], n, videos=videos, per_video=per_video)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _rerank(self, method: str, query: np.ndarray, vectors: np.ndarray, cosines: np.ndarray,
                lang: str | None) -> np.ndarray:
        if method == "ac-candidates":
            ac = alignment_consistency(query, vectors)
        elif method == "ac-anchors":
            if not self.space.has_anchors:
                raise InputError(f"concept space {self.space.name!r} has no concept anchors; "
                                 "use --rerank ac-candidates")
            ac = alignment_consistency(query, vectors, self.space.anchors)
        else:  # roundtrip: decode each candidate, re-encode the text, compare with the query
            if not self.space.has_decoder:
                raise InputError(f"--rerank roundtrip needs a space with a text decoder; "
                                 f"{self.space.name!r} has none")
            text_lang = lang or "eng_Latn"
            texts = self.space.decode(vectors, text_lang)
            ac = self.space.encode_source(texts, text_lang) @ query
        return blend(cosines, ac, self.rerank_weight).astype(np.float32)

    # --- helpers ------------------------------------------------------------------------------
    def _language(self, query: str, lang: str | None) -> tuple[str | None, str | None, dict | None]:
        """(language searched as, where it came from: given, detected or default; detection result).

        Also for a space whose encoder ignores the code (e5 reads any language): the result
        then says what the query was taken to be, and summaries follow it.
        """
        if lang:
            return self.space.resolve_language(lang), "given", None
        found = detect_language(query, self.space.languages)
        detected = None if found is None else {"code": found.code, "confidence": found.confidence}
        if found is not None and found.confidence >= MIN_DETECT_CONFIDENCE:
            return found.code, "detected", detected
        default = os.environ.get("VIDSONAR_DEFAULT_LANG", "eng_Latn")
        return self.space.resolve_language(default), "default", detected

    def _check_rerank(self, rerank: str | None) -> str:
        rerank = rerank or self.rerank
        if rerank not in RERANKERS:
            raise InputError(f"unknown reranker {rerank!r}; choose one of {', '.join(RERANKERS)}")
        return rerank

    def _with_summaries(self, hits: list[Hit], lang: str, beam_size: int, max_len: int) -> list[Hit]:
        found = summarize(self.catalog, self.space, [h.snippet_id for h in hits], lang, beam_size, max_len,
                          self.store.vectors_for)
        return [Hit(**{**asdict(h), "summary": found[h.snippet_id].to_json()}) for h in hits]

    def _hit(self, rank: int, h: dict) -> Hit:
        video_id, index = unpack_snippet_id(h["snippet_id"])
        thumb = thumbnail_path(self.thumbs, video_id, index)
        return Hit(rank, round(h["score"], 6), h["snippet_id"], h["video_id"], h["video_path"],
                   h["start"], h["end"], str(thumb) if thumb.exists() else None,
                   h.get("snippet_ids", [h["snippet_id"]]), h.get("duplicates", []),
                   video_moments=h.get("video_moments", []), snapped=h.get("snapped", False))


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise InputError(f"k must be between 1 and {MAX_K}, got {k}")


def _check_path_glob(glob: str | None) -> None:
    if glob and len(glob) > MAX_PATH_GLOB:
        raise InputError(f"path_glob is {len(glob)} characters long; give a pattern of at most "
                         f"{MAX_PATH_GLOB}")
