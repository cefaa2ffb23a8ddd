"""FastAPI dependencies: the server's state, its archive, its settings and accepted API keys.

Routers declare what they need (``state: StateDep``) instead of reaching into
``request.app.state`` themselves; the lifespan (``app``) puts the state there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.server.settings import ServerSettings
from api.server.state import ServerState
from search.archive import Archive


def server_state(request: Request) -> ServerState:
    """The running server's state, opened in the app's lifespan."""
    return request.app.state.server


def archive(state: Annotated[ServerState, Depends(server_state)]) -> Archive:
    return state.archive


def settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def api_keys(request: Request) -> list[str]:
    """The keys this server accepts (resolved when it opened; see settings.resolve_keys)."""
    return request.app.state.keys


StateDep = Annotated[ServerState, Depends(server_state)]
ArchiveDep = Annotated[Archive, Depends(archive)]
SettingsDep = Annotated[ServerSettings, Depends(settings)]
KeysDep = Annotated[list[str], Depends(api_keys)]
