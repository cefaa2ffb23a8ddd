"""Write endpoints: upload a video, ingest server-side paths, follow the jobs."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path as PathParam, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor

from api.server.auth import require_read, require_write
from api.server.deps import StateDep
from api.server.schemas import IngestIn, JobOut, error_responses
from api.server.state import ServerState
from api.server.uploads import check_content_type, check_ingest_paths, safe_filename, save_stream
from api.server.validation import JobId
from storage.jobs import JobView
from vidsonar.errors import NotFoundError, UnreachableError

router = APIRouter(prefix="/api", tags=["ingest"], responses=error_responses(401, 403, 404, 503))


class _AnyPath(PathConvertor):
    """``{name:path}`` that matches newlines too: the route's regex has no DOTALL, so a name
    with ``%0a`` was a 404 instead of the upload's "bad file name", and a trailing one was
    dropped (``$`` matches before it): ``x.mp4%0a`` was saved as ``x.mp4``."""
    regex = "(?s:.*)"


register_url_convertor("anypath", _AnyPath())

_BINARY_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "video/*": {"schema": {"type": "string", "format": "binary"}}}}}


def _job_json(state: ServerState, job: JobView) -> dict:
    return {**job.__dict__, "interrupted": job.interrupted(state.jobs.liveness)}


def _submit(state: ServerState, kind: str, paths: list[str]) -> dict:
    # an index server (Milvus) that cannot take the vectors now refuses the job with a 503,
    # rather than queue it to stall (a job it cuts off mid-way is queued again by the worker)
    state.store.ping()
    job = state.jobs.create(kind, paths, state.space.name)
    state.worker.submit(job.id)
    return _job_json(state, job)


@router.put("/uploads/{filename:anypath}", response_model=JobOut, status_code=202,
            dependencies=[Depends(require_write)], openapi_extra=_BINARY_BODY,
            summary="Upload a video (the raw file as the body) and queue its ingestion",
            responses=error_responses(400, 413, 415, 507))
async def upload(request: Request, state: StateDep,
                 filename: Annotated[str, PathParam(description="A plain file name, e.g. clip.mp4")]) -> dict:
    settings = state.settings
    name = safe_filename(filename, settings.upload_suffixes)
    check_content_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    path = await save_stream(request.stream(), state.upload_dir, name, settings.max_upload_bytes,
                             int(declared) if declared and declared.isdigit() else None,
                             on_bytes=state.metrics.upload_bytes.inc)
    try:  # off the event loop: a catalog database that does not answer holds one thread, not all
        return await run_in_threadpool(_submit, state, "upload", [str(path)])
    except UnreachableError:  # no job holds the file: keep no orphan (a 503 follows)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the upload's own folder (uploads.save_stream)
        raise


@router.post("/jobs", response_model=JobOut, status_code=202, dependencies=[Depends(require_write)],
             summary="Ingest files or folders already on the server (under the ingest roots)",
             responses=error_responses(400, 507))
def ingest_paths(state: StateDep, body: IngestIn) -> dict:
    paths = check_ingest_paths(body.paths, state.roots)
    return _submit(state, "paths", [str(p) for p in paths])


@router.get("/jobs", response_model=list[JobOut], dependencies=[Depends(require_read)],
            summary="Recent ingestion jobs, newest first")
def jobs(state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
         status: str | None = None) -> list[dict]:
    return [_job_json(state, j) for j in state.jobs.list(limit, status)]


@router.get("/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(require_read)],
            summary="One job: progress and per-file errors")
def job(state: StateDep, job_id: JobId) -> dict:
    found = state.jobs.get(job_id)
    if found is None:
        raise NotFoundError(f"no job {job_id}")
    return _job_json(state, found)
