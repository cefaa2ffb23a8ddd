"""Videos: list, details, the stream (HTTP Range, so a player can jump to a time code), delete."""

from __future__ import annotations

import mimetypes
import shutil
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from api.server.auth import require_read, require_write
from api.server.deps import StateDep
from api.server.held_file import send_file
from api.server.routes_search import video_url
from api.server.schemas import DeletedOut, ErrorOut, VideoOut, error_responses
from storage.shots import shots_of
from api.server.validation import VideoId
from indexer.discover import real_path
from vidsonar.errors import NotFoundError

router = APIRouter(prefix="/api/videos", tags=["videos"], responses=error_responses(401, 403, 404, 503))
_preview_lock = threading.Lock()  # one transcode at a time; others wait for it, then reuse it


def _video_json(video) -> dict:
    return {"id": video.id, "path": video.path, "status": video.status, "error": video.error,
            "duration": video.duration, "width": video.width, "height": video.height,
            "fps": video.fps, "size_bytes": video.size_bytes, "ingested_at": video.ingested_at,
            "video_url": video_url(video.id)}


@router.get("", response_model=list[VideoOut], dependencies=[Depends(require_read)],
            summary="Videos in the catalog (failed ones too, with their errors)")
def videos(state: StateDep, status: str | None = None) -> list[dict]:
    return [_video_json(v) for v in state.catalog.videos(status)]


@router.get("/{video_id}", response_model=VideoOut, dependencies=[Depends(require_read)],
            summary="One video")
def video(state: StateDep, video_id: VideoId) -> dict:
    found = state.catalog.video(video_id)
    if found is None:
        raise NotFoundError(f"no video {video_id}")
    shots = [{"index": s.index, "start": s.start, "end": s.end, "detector": s.detector,
              "threshold": s.threshold} for s in shots_of(state.catalog, video_id)]
    return {**_video_json(found), "shots": shots}


#: a preview made on demand writes: its folder may be full or unwritable (``?original=true``
#: writes nothing, so still streams)
_PREVIEW_FAILURES = {
    503: {"model": ErrorOut, "description": "The preview cannot be made: its folder cannot be "
          "written (named; ?original=true still streams), or the catalog is damaged"},
    507: {"model": ErrorOut, "description": "The preview cannot be made: no space left in its "
          "folder (named; ?original=true still streams)"}}


# HEAD is a route of its own, listed in the schema: one route of both methods would give
# them one operationId (FastAPI names it after whichever method its set yields first)
@router.get("/{video_id}/stream", response_class=FileResponse, dependencies=[Depends(require_read)],
            summary="The video, with HTTP Range support: the file itself where browsers play it, "
                    "else a browser-playable MP4 preview (made once, then cached)",
            responses={200: {"content": {"video/*": {}}}, 206: {"description": "Partial content"},
                       416: {"description": "Range not satisfiable"}, **_PREVIEW_FAILURES})
@router.head("/{video_id}/stream", response_class=FileResponse, dependencies=[Depends(require_read)],
             summary="The stream's headers (type, size, Accept-Ranges) without its body, as "
                     "players ask before reading (a preview not yet made is made first)",
             responses={200: {"description": "The GET's headers, no body"}, **_PREVIEW_FAILURES})
def stream(state: StateDep, video_id: VideoId,
           original: Annotated[bool, Query(description="The file as ingested, never a preview")] = False
           ) -> FileResponse:
    from indexer.previews import browser_playable, make_preview
    found = state.catalog.video(video_id)
    if found is None or found.status != "ok":
        raise NotFoundError(f"no playable video {video_id}")
    path = Path(found.path)
    gone = f"the file of video {video_id} is gone from {found.path}; re-ingest it"
    if not path.is_file():
        raise NotFoundError(gone)
    if not original and not browser_playable(path):
        preview = state.archive.home.preview(video_id, found.content_hash)
        with _preview_lock:
            if not preview.exists():
                make_preview(path, preview)
        return send_file(preview, f"the browser preview of video {video_id} was removed from "
                                  f"{preview} as it was to be sent; ask again to have it made anew",
                         media_type="video/mp4", content_disposition_type="inline")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return send_file(path, gone, media_type=kind, content_disposition_type="inline")


@router.delete("/{video_id}", response_model=DeletedOut, dependencies=[Depends(require_write)],
               summary="Remove a video: catalog rows, index vectors, thumbnails, and its "
                       "file when it was uploaded", responses=error_responses(409, 507))
def delete(state: StateDep, video_id: VideoId) -> dict:
    with state.index_lock:  # one writer at a time: the ingest worker takes this lock too
        found = state.catalog.video(video_id)
        if found is None:
            raise NotFoundError(f"no video {video_id}")
        # the index is saved without the vectors before the catalog rows go (see IndexStore)
        removed, _ = state.archive.delete_video(video_id)
        (state.archive.home.previews / f"{video_id}.mp4").unlink(missing_ok=True)
    file_removed = False
    path = real_path(found.path)  # a failed video's path may be a link loop: no raise
    if path.is_relative_to(state.upload_dir) and path.is_file():
        path.unlink()
        if path.parent != state.upload_dir:  # the upload's own folder (see uploads.save_stream)
            shutil.rmtree(path.parent, ignore_errors=True)
        file_removed = True
    return {"video_id": video_id, "vectors_removed": removed, "file_removed": file_removed}
