"""Read endpoints: search (by text and by example), languages, snippets and summaries.

A search's options are the fields of ``SearchIn``, passed to the query layer by name; a
field the model does not know is refused with a 422 naming it, never silently dropped.
"""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from api.server.auth import require_read
from api.server.deps import StateDep
from api.server.errors import PayloadTooLargeError, UnsupportedTypeError
from api.server.held_file import send_file
from api.server.schemas import (FiltersIn, SearchIn, SearchOut, SnippetOut, SpaceOut,
                                SummaryOut, error_responses)
from api.server.state import ServerState
from api.server.validation import INT64_MAX, SnippetId
from search.rerank import RERANKERS
from search.searcher import MAX_K
from storage.annotations import Filters
from vidsonar.errors import InputError, NotFoundError, VidsonarError

router = APIRouter(prefix="/api", tags=["search"], dependencies=[Depends(require_read)],
                   responses=error_responses(400, 401, 403, 404, 409))

MAX_EXAMPLE_BYTES = 64 * 2**20
#: routes that write: summaries are cached in the catalog, a lost or damaged thumbnail is made
#: again, an example is saved while it is read; all read the catalog
_WRITES = error_responses(503, 507)


def thumbnail_url(snippet_id: int) -> str:
    return f"/api/snippets/{snippet_id}/thumbnail"


def video_url(video_id: int) -> str:
    return f"/api/videos/{video_id}/stream"


def with_urls(result: dict, took: float) -> dict:
    for hit in result.get("hits", []):
        hit.pop("thumbnail", None)  # a path on the server; clients get a URL instead
        hit["thumbnail_url"] = thumbnail_url(hit["snippet_id"])
        hit["video_url"] = video_url(hit["video_id"])
    result["took_ms"] = round(took * 1000, 3)
    return result


#: the keyword options of ``Searcher.search`` that ``SearchIn`` carries (told by /api/space)
SEARCH_OPTIONS = ("lang", "k", "summaries", "summary_lang", "filters", "rerank", "snap_shots")


def _search(state: ServerState, body: SearchIn) -> dict:
    started = time.perf_counter()
    filters = filters_from(body.filters) if body.filters else None
    result = state.searcher.search(body.query, lang=body.lang, k=body.k, summaries=body.summaries,
                                   summary_lang=body.summary_lang, filters=filters, rerank=body.rerank,
                                   snap_shots=body.snap_shots)
    took = time.perf_counter() - started
    state.metrics.searches.labels("text").observe(took)
    return with_urls(result.to_json(), took)


def filters_from(given: FiltersIn):
    """The query layer's Filters from their HTTP form (empty filters filter nothing)."""
    values = given.model_dump(exclude_defaults=True)
    for name in ("video_ids", "tags"):
        if name in values:
            values[name] = tuple(values[name])
    return Filters(**values) if values else None


@router.get("/search", response_model=SearchOut, summary="Search by text",
            responses=_WRITES)
def search_get(
    state: StateDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to find")],
    lang: Annotated[str | None, Query(max_length=100, description="FLORES-200 code or alias; omit for auto")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Number of hits")] = 10,
    summaries: Annotated[bool, Query(description="Verbalize each hit")] = False,
    summary_lang: Annotated[str | None, Query(max_length=100, description="Language of the summaries")] = None,
    rerank: Annotated[str | None, Query(max_length=100, description="Reranking method (see /api/space)")] = None,
    snap_shots: Annotated[bool, Query(description="Stretch moments to their shots' cuts")] = True,
) -> dict:
    body = SearchIn(query=q, lang=lang or None, k=k, summaries=summaries,
                    summary_lang=summary_lang or None, rerank=rerank or None, snap_shots=snap_shots)
    return _search(state, body)


@router.post("/search", response_model=SearchOut, summary="Search by text, with every option",
             responses=_WRITES)
def search_post(state: StateDep, body: SearchIn) -> dict:
    return _search(state, body)


@router.post("/search/example", response_model=SearchOut, summary="Search by example",
             responses=error_responses(413, 415, 503, 507),
             description="Find snippets like an uploaded image or video clip, or like a snippet "
                         "already in the archive (give exactly one of `file` and `snippet_id`).")
def search_example(
    state: StateDep,
    file: Annotated[UploadFile | None, File(description="An image (JPEG, PNG, WebP) or a short "
                                                        "video clip")] = None,
    snippet_id: Annotated[int | None, Form(ge=0, le=INT64_MAX)] = None,
    k: Annotated[int, Form(ge=1, le=MAX_K)] = 10,
    snap_shots: Annotated[bool, Form(description="Stretch moments to their shots' cuts")] = True,
) -> dict:
    if (file is None) == (snippet_id is None):
        raise InputError("give exactly one example: an image or video file, or a snippet_id")
    started = time.perf_counter()
    if snippet_id is not None:
        result = state.searcher.search_example(like=snippet_id, k=k, snap_shots=snap_shots).to_json()
    else:
        with _example_file(state, file) as (kind, path):
            result = state.searcher.search_example(k=k, snap_shots=snap_shots, **{kind: str(path)}).to_json()
    took = time.perf_counter() - started
    state.metrics.searches.labels("example").observe(took)
    return with_urls(result, took)


@contextmanager
def _example_file(state: ServerState, file: UploadFile):
    """The uploaded example in a temporary file (the query layer reads examples from paths)."""
    kind = (file.content_type or "").split("/")[0].lower()
    suffix = Path(file.filename or "").suffix.lower()
    if kind not in ("image", "video"):
        raise UnsupportedTypeError(f"example of type {file.content_type!r} is not an image or a video")
    if not suffix.isascii() or not suffix[1:].isalnum():
        suffix = ".jpg" if kind == "image" else ".mp4"
    folder = state.upload_dir / ".examples"
    folder.mkdir(exist_ok=True)
    path = folder / f"{secrets.token_hex(8)}{suffix}"
    try:
        size = 0
        with open(path, "wb") as out:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > MAX_EXAMPLE_BYTES:
                    raise PayloadTooLargeError(f"example exceeds {MAX_EXAMPLE_BYTES // 2**20} MiB")
                out.write(chunk)
        try:
            yield kind, path
        except VidsonarError as exc:  # "<temp path>: not a readable image" names the client's file
            shown = file.filename or "the uploaded example"
            exc.args = tuple(a.replace(str(path), shown) if isinstance(a, str) else a
                             for a in exc.args)
            raise
    finally:
        path.unlink(missing_ok=True)


@router.get("/space", response_model=SpaceOut,
            summary="The concept space: its languages and what search can do with it")
def space_info(state: StateDep) -> dict:
    space = state.space
    return {"space": space.name, "languages": list(space.languages),
            "needs_language": space.needs_language, "has_decoder": space.has_decoder,
            "auto_language": True,  # detected offline (encoders.language_id) when not given
            "search_options": list(SEARCH_OPTIONS), "rerankers": list(RERANKERS)}


@router.get("/snippets/{snippet_id}", response_model=SnippetOut, summary="A snippet's details",
            responses=error_responses(503))
def snippet(state: StateDep, snippet_id: SnippetId) -> dict:
    row = state.catalog.snippets([snippet_id]).get(snippet_id)
    if row is None:
        raise NotFoundError(f"no snippet {snippet_id}")
    return {"snippet_id": row.id, "video_id": row.video_id, "index": row.idx, "start": row.start,
            "end": row.end, "frame_times": row.frame_times, "video_path": row.video.path,
            "thumbnail_url": thumbnail_url(row.id), "video_url": video_url(row.video_id)}


@router.get("/snippets/{snippet_id}/thumbnail", response_class=FileResponse,
            summary="A snippet's thumbnail (JPEG)",
            responses={200: {"content": {"image/jpeg": {}}}, **_WRITES})
@router.head("/snippets/{snippet_id}/thumbnail", response_class=FileResponse,  # FileResponse: no body
             summary="The thumbnail's headers (type, size, caching) without its body",
             responses={200: {"description": "The GET's headers, no body"}, **_WRITES})
def thumbnail(state: StateDep, snippet_id: SnippetId) -> FileResponse:
    """A thumbnail that went missing, or is not a whole JPEG, is made again from the video (404
    if its file is gone too, 422 if the file no longer holds the footage ingested)."""
    if snippet_id < 0:
        raise NotFoundError(f"no snippet {snippet_id}")
    path = state.archive.thumbnail(snippet_id)
    return send_file(path, f"the thumbnail of snippet {snippet_id} was removed from {path} as it "
                           "was to be sent; ask again to have it made anew",
                     media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/snippets/{snippet_id}/summary", response_model=SummaryOut,
            summary="A snippet verbalized in a language",
            responses={422: {"description": "The concept space has no text decoder"}, **_WRITES})
def summary(state: StateDep, snippet_id: SnippetId,
            lang: Annotated[str, Query(max_length=100, description="FLORES-200 code or alias")] = "eng_Latn") -> dict:
    code = state.space.resolve_language(lang) or lang
    return state.searcher.summarize(snippet_id, code).to_json()
