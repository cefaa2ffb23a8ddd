"""API keys: writes need one unless explicitly disabled; reads need one when configured.

A read-only archive refuses every write before any key is looked at (409, naming the home).
A key comes in the ``X-API-Key`` header or as ``Authorization: Bearer KEY``. Reads also
accept the ``vidsonar_key`` cookie, so that ``<img>`` and ``<video>`` elements on the web
page work when reads need a key; writes never do, so a cookie cannot be used for CSRF.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from api.server.deps import KeysDep, SettingsDep, StateDep
from api.server.errors import ForbiddenError, UnauthorizedError

COOKIE = "vidsonar_key"
key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="API key; `Authorization: Bearer KEY` works too")


def _sent_key(request: Request, allow_cookie: bool) -> str | None:
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    if not key and allow_cookie:
        key = request.cookies.get(COOKIE)
    return key or None


def _check(request: Request, keys: list[str], allow_cookie: bool) -> None:
    key = _sent_key(request, allow_cookie)
    if key is None:
        raise UnauthorizedError("this endpoint needs an API key: send it as the X-API-Key header")
    if not any(hmac.compare_digest(key.encode(), k.encode()) for k in keys):
        raise ForbiddenError("the API key sent is not accepted by this server")


def require_write(request: Request, settings: SettingsDep, keys: KeysDep, state: StateDep,
                  _key: str | None = Security(key_header)) -> None:
    state.archive.require_writable(f"{request.method} {request.url.path}")
    if not settings.auth_disabled:
        _check(request, keys, allow_cookie=False)


def require_read(request: Request, settings: SettingsDep, keys: KeysDep,
                 _key: str | None = Security(key_header)) -> None:
    if settings.read_needs_key and not settings.auth_disabled:
        _check(request, keys, allow_cookie=True)
