"""Which process owns a piece of work, as ``host:pid``, and whether that process still runs:
jobs record their owner (``storage.jobs``), and temporary files name their writer
(``storage.atomic``), so work a killed process left can be told from work in progress."""

from __future__ import annotations

import os
import socket


def this_owner() -> str:
    """``host:pid`` of this process, recorded on jobs so others can tell if it still runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by ``owner`` runs; owners on other hosts count as alive."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # cannot tell from here: never sweep another machine's work
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True
