"""HTTP schemas: what the API accepts and answers, as the OpenAPI document shows it.

Hits allow extra fields, so what the query layer adds to a hit (a summary, a rerank score)
reaches clients without a change here. Replies derive from ``Reply`` and type their stored or
computed floats ``FiniteOrNull`` (``api.server.finite``): JSON has no NaN or infinity.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.server.finite import FiniteOrNull, Reply
from search.searcher import MAX_K, MAX_PATH_GLOB

Int64 = Annotated[int, Field(ge=0, le=2**63 - 1)]  # ids: the catalog's and FAISS's int64


class MomentOut(Reply):
    start: FiniteOrNull = Field(description="Seconds from the start of the video")
    end: FiniteOrNull
    score: FiniteOrNull
    snippet_id: int = Field(description="The moment's peak snippet")
    snapped: bool = Field(False, description="Stretched to its shot's cuts (the whole shot matches)")


class HitOut(Reply):
    model_config = ConfigDict(extra="allow")
    rank: int
    score: FiniteOrNull
    snippet_id: int
    video_id: int
    video_path: str
    start: FiniteOrNull = Field(description="Seconds from the start of the video")
    end: FiniteOrNull
    thumbnail_url: str
    video_url: str = Field(description="Stream with HTTP Range support; add #t=START to jump")
    snippet_ids: list[int] = Field(default_factory=list, description="Every snippet of the moment")
    video_moments: list[MomentOut] = Field(
        default_factory=list, description="This video's moments for the query, best first (a timeline)")
    snapped: bool = Field(False, description="The moment was stretched to its shot's cuts")


class SearchOut(Reply):
    model_config = ConfigDict(extra="allow")
    query: str | None = None
    lang: str | None = Field(None, description="Language used (detected when none was given)")
    space: str
    took_ms: float  # the server's clock: always finite
    hits: list[HitOut]


class FiltersIn(BaseModel):
    """Which snippets a search may return; empty fields do not filter."""
    video_ids: list[Int64] = Field(default_factory=list, max_length=100_000)
    path_glob: str | None = Field(None, max_length=MAX_PATH_GLOB, description="Shell pattern on "
                                  "the video path", examples=["*/2024/*.mp4"])
    # JSON parsers take NaN and 1e400 (inf): a duration is a finite number
    min_duration: float | None = Field(None, ge=0, allow_inf_nan=False,
                                       description="Of the video, in seconds")
    max_duration: float | None = Field(None, ge=0, allow_inf_nan=False)
    ingested_after: dt.datetime | None = None
    ingested_before: dt.datetime | None = None
    tags: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=100, description="A video must carry every one")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> "FiltersIn":
        """A range that no video can fall in is a mistake to name, not an empty answer."""
        if None not in (self.min_duration, self.max_duration) and self.min_duration > self.max_duration:
            raise ValueError(f"min_duration ({self.min_duration}) exceeds max_duration ({self.max_duration})")
        if None not in (self.ingested_after, self.ingested_before) and self.ingested_after > self.ingested_before:
            raise ValueError("ingested_after is later than ingested_before")
        return self


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=2000, examples=["a cup of coffee"])
    lang: str | None = Field(None, max_length=100,
                             description="FLORES-200 code (fra_Latn) or alias (fr); none: auto")
    k: int = Field(10, ge=1, le=MAX_K)
    summaries: bool = Field(False, description="Verbalize each hit (spaces with a text decoder)")
    summary_lang: str | None = Field(None, max_length=100, description="Language of the summaries")
    filters: FiltersIn | None = None
    rerank: str | None = Field(None, max_length=100, description="Reranking method (see /api/space)")
    snap_shots: bool = Field(True, description="Stretch a moment to its shot's cuts when the whole "
                                               "shot matches (videos ingested with shots)")

    model_config = ConfigDict(extra="forbid")  # an option the server does not know is a 422 naming it


class IngestIn(BaseModel):
    # 4096: Linux's PATH_MAX; a longer one cannot name a file
    paths: list[Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1, max_length=10_000, description="Absolute files or folders under the server's ingest roots")


class JobOut(Reply):
    id: int
    kind: str
    status: str = Field(description="queued, running, done or failed")
    space: str
    paths: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    total: int
    done: int
    ingested: int
    skipped: int
    failed: int
    current: str | None
    errors: list[dict[str, str]] = Field(description="One {path, error} per file that failed")
    error: str | None = Field(description="Why the job itself failed, if it did")
    attempts: int
    owner: str | None = Field(None, description="The process that queued or runs it, "
                              "`host:pid:start:space` (storage.owners): which machine to look at")
    interrupted: bool = Field(False, description="Marked running, but the process running it "
                              "is gone (killed; on another machine: its lease expired): it runs "
                              "again when taken up (a server start, or the next `vidsonar "
                              "ingest` for a CLI run)")


class SnippetOut(Reply):
    snippet_id: int
    video_id: int
    index: int
    start: FiniteOrNull
    end: FiniteOrNull
    frame_times: list[FiniteOrNull]
    video_path: str
    thumbnail_url: str
    video_url: str


class ShotOut(Reply):
    index: int
    start: FiniteOrNull
    end: FiniteOrNull
    detector: str = Field(description="transnetv2 or scenedetect")
    threshold: FiniteOrNull


class VideoOut(Reply):
    id: int
    path: str
    status: str
    error: str | None
    duration: FiniteOrNull
    width: int | None
    height: int | None
    fps: FiniteOrNull
    size_bytes: int
    ingested_at: dt.datetime
    video_url: str
    shots: list[ShotOut] | None = Field(
        None, description="GET /api/videos/{id} only: the shots no snippet crosses, in order "
                          "(empty when ingested with --shots none)")


class SummaryOut(Reply):
    model_config = ConfigDict(extra="allow")
    snippet_id: int
    lang: str
    text: str = Field(description="The summary")
    kind: str = Field("decoded", description="decoded: text generated in `lang`; labels: the "
                                             "nearest concept labels (spaces without a decoder)")
    model: str | None = None


class SpaceOut(Reply):
    space: str
    languages: list[str]
    needs_language: bool = Field(description="True when the text encoder needs the query's language")
    auto_language: bool = Field(True, description="True when a query may omit its language "
                                                  "(detected, or not needed)")
    has_decoder: bool = Field(description="True when the space can verbalize hits (summaries)")
    search_options: list[str] = Field(description="Keyword options the query layer accepts")
    rerankers: list[str] = Field(default_factory=list, description="Values of the rerank option")


class HealthOut(Reply):
    status: str
    space: str
    videos: int
    snippets: int
    index_vectors: int
    jobs: dict[str, int]
    worker_alive: bool
    read_only: bool = False  # the archive takes no writes (and runs no worker)


class InfoOut(Reply):
    """The archive (``Archive.info``); ``index``, ``last_run`` and ``vector_makers`` are extra
    fields, shaped by the index backend and the catalog."""
    model_config = ConfigDict(extra="allow")
    home: str
    catalog: str = Field(description="The catalog's URL, its password masked")
    space: str
    spaces_in_catalog: list[str]
    videos: int
    failed: int
    pending: int
    snippets: int
    hours: FiniteOrNull = Field(description="Footage of the ok videos")
    mixed_encoders: bool = Field(description="True when two encoders made this space's vectors")
    missing_thumbnails: int | None = Field(
        None, description="Snippets whose thumbnail file is missing; null unless "
                          "`check_thumbnails=true` was asked")
    damaged_thumbnails: int | None = Field(
        None, description="Snippets whose thumbnail file is not a whole JPEG (cut short by a "
                          "crash); null unless `check_thumbnails=true` was asked")


class DeletedOut(Reply):
    video_id: int
    vectors_removed: int
    file_removed: bool


class ErrorOut(Reply):
    detail: str = Field(description="What is wrong, and what to do about it")
    error: str = Field(description="The error's class in vidsonar.errors (or the server's)")


_ERROR_MEANING = {
    400: "Bad input (unknown language, empty query, bad file name, unsupported option...)",
    401: "An API key is needed and none was sent",
    403: "The API key is not accepted, or a path is outside the ingest roots",
    404: "No such snippet, video, job or file",
    409: "The index is empty or was built for another concept space, the archive is "
         "read-only, or the video is still being ingested",
    413: "Upload larger than the server's limit",
    415: "Not an accepted video (or image) type",
    422: "Malformed request (a parameter out of range or of the wrong type), or media "
         "the server cannot process",
    503: "The catalog is damaged or read-only, its database server or the index's Milvus "
         "server is unreachable (with Retry-After) or refuses the server, or a folder the "
         "server must write in cannot be written (the reply names it and says what to do)",
    507: "No space left on the disk the server writes to (the reply names the folder): free "
         "some and ask again; nothing written before is lost",
}


def error_responses(*codes: int) -> dict:
    """OpenAPI entries for the project errors an endpoint can answer with."""
    return {code: {"model": ErrorOut, "description": _ERROR_MEANING[code]} for code in codes}
