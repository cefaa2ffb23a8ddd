"""The server's errors and the one handler that turns every project error into HTTP.

Server-only errors extend the project tree in ``vidsonar.errors``; the handler picks the
status of the closest class in an error's MRO, so a new subclass inherits its parent's code.
Request validation (``api/server/validation.py``) keeps out-of-range numbers away from the
database; should one still get through, ``handle_out_of_range`` answers 422, not 500.
``handle_validation_error`` is FastAPI's 422 made safe for the inputs it echoes.
"""

from __future__ import annotations

import logging
import math

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vidsonar import errors as e

log = logging.getLogger(__name__)


class UnauthorizedError(e.VidsonarError):
    """No API key was sent where one is needed."""


class ForbiddenError(e.VidsonarError):
    """A key that is not accepted, or a path outside the ingest roots."""


class PayloadTooLargeError(e.InputError):
    pass


class UnsupportedTypeError(e.InputError):
    pass


STATUS: dict[type[BaseException], int] = {
    UnauthorizedError: 401,
    ForbiddenError: 403,
    PayloadTooLargeError: 413,
    UnsupportedTypeError: 415,
    e.NoDecoderError: 422,
    e.MediaError: 422,
    e.MixedEncodersError: 409,
    e.InputError: 400,
    e.NotFoundError: 404,
    e.SpaceMismatchError: 409,
    e.CorruptIndexError: 500,
    e.IndexUnreachableError: 503,
    e.IndexRefusedError: 503,  # the token or the Milvus server's settings: not the client's doing
    e.IndexError_: 409,
    e.MissingDependencyError: 501,
    e.ReadOnlyArchiveError: 409,
    e.BusyError: 409,
    e.CatalogUnreachableError: 503,
    e.CatalogRefusedError: 503,  # the server's settings or the database's: not the client's doing
    e.VidsonarError: 500,
}

#: seconds a client should wait before asking again while the catalog database or the index
#: server is unreachable
RETRY_AFTER = 5


def status_of(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def handle_project_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if status == 401 else None
    if isinstance(exc, e.UnreachableError):  # not a bug: no traceback, a time to retry
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER)}
    elif isinstance(exc, (e.CatalogRefusedError, e.IndexRefusedError)):
        # an operator's to mend: said once a request, plainly
        log.error("%s %s: %s", request.method, request.url.path, exc)
    elif status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status, headers=headers)


async def handle_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A number too large for the database or its driver (int64 overflow, a PostgreSQL value
    out of range) that validation let through: the client's input, so 422."""
    log.warning("%s %s: value out of range: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "a number in the request is out of range (ids are int64: "
                                   "0 to 9223372036854775807)", "error": "OutOfRange"}, 422)


#: echoed input strings longer than this are shortened in a 422 (a 100,000-character glob
#: came back whole)
ECHO_CHARS = 200


async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (``{"detail": [errors]}``), with the non-finite numbers of the echoed input
    as strings (JSON parsers take ``NaN`` and ``1e400``, but JSON has no such numbers, and
    the default handler's reply failed to serialize them: a 500) and long strings shortened."""
    return JSONResponse({"detail": _echo_safe(jsonable_encoder(exc.errors()))}, 422)


def _echo_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 'inf', '-inf', 'nan'
    if isinstance(value, str) and len(value) > ECHO_CHARS:
        return f"{value[:ECHO_CHARS // 2]}...{value[-40:]} ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _echo_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_echo_safe(item) for item in value]
    return value


#: a full disk is "Insufficient Storage"; a damaged or read-only catalog, or a folder the server
#: may not write, makes the service (or that part of it) unavailable
OPERATIONAL_STATUS = {"disk full": 507, "damaged catalog": 503, "read-only": 503,
                      "unwritable folder": 503}


async def handle_operational(request: Request, exc: Exception) -> JSONResponse:
    """OSError and database errors: a full disk, a damaged or read-only catalog or a folder
    that cannot be written is answered with what it is (``storage.operational``); anything
    else is the 500 it was, logged."""
    from storage.operational import classify
    failure = classify(exc)
    if failure is None:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return JSONResponse({"detail": "internal error", "error": type(exc).__name__}, 500)
    log.error("%s %s: %s", request.method, request.url.path, failure.message)
    return JSONResponse({"detail": failure.message, "error": failure.kind.replace(" ", "_")},
                        OPERATIONAL_STATUS[failure.kind])


def operational_errors() -> tuple[type[BaseException], ...]:
    """What ``handle_operational`` takes: OSError and SQLAlchemy's DBAPIError (sqlite3's own
    errors reach routes wrapped in it)."""
    from sqlalchemy.exc import DBAPIError
    return OSError, DBAPIError


def out_of_range_errors() -> tuple[type[BaseException], ...]:
    """What ``handle_out_of_range`` takes: OverflowError and SQLAlchemy's DataError."""
    from sqlalchemy.exc import DataError
    return OverflowError, DataError
