"""Files sent from a descriptor the route opened, so that removing the file meanwhile is harmless.

Starlette's FileResponse stats and opens its path only when the reply is sent, after the
route has returned: a file removed in between (a folder cleaned, a re-ingest replacing it)
raised there, a 500, or cut the reply short after its headers. Here the route opens the file,
a missing one being the route's own 404, and the reply reads that descriptor: on POSIX a
removed file stays readable through it until it is closed. Ranges, HEAD and the headers
(size, ETag, Last-Modified, from ``fstat``) are FileResponse's own.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi.responses import FileResponse

from vidsonar.errors import NotFoundError

#: the ASGI extension that lets the server send a file by its path, which it would open again
PATHSEND = "http.response.pathsend"


class HeldFileResponse(FileResponse):
    """A FileResponse of a file already open; it closes the file once the reply is sent."""

    def __init__(self, file: BinaryIO, **kwargs):
        super().__init__(file.name, stat_result=os.fstat(file.fileno()), **kwargs)
        self.file = file

    async def __call__(self, scope, receive, send) -> None:
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != PATHSEND}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self.file.close()

    @asynccontextmanager
    async def _open_file(self):
        # FileResponse reads its bytes through this (private) hook: should a new Starlette stop
        # calling it, it opens the path again, and tests/test_api_stored_values.py's file
        # removed as the reply starts fails
        yield anyio.wrap_file(self.file)


def send_file(path: Path, gone: str, **kwargs) -> HeldFileResponse:
    """``path``, opened now, as a reply (``kwargs``: FileResponse's); ``gone``: the message of
    the NotFoundError if there is no file there any more."""
    try:
        file = open(path, "rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise NotFoundError(gone) from exc
    try:
        return HeldFileResponse(file, **kwargs)
    except BaseException:
        file.close()
        raise
