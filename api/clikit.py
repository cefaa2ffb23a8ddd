"""Helpers shared by every CLI command: error printing, the archive a command works on, timecodes.

They live here, not in ``api.cli``, so that command modules (``api/commands/*``, ``api/demo.py``)
import them without importing the group that imports them back (no cycle).
"""

from __future__ import annotations

import functools
import sys

import click

from vidsonar.errors import VidsonarError


def fail_cleanly(fn):
    """Print project errors as one line a user can act on, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VidsonarError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    return wrapper


def archive_from(ctx: click.Context):
    """The archive named by the group's --home, --space and --index (imported lazily: start-up
    stays fast)."""
    from search.archive import Archive
    return Archive(ctx.obj["home"], ctx.obj["space"], index=ctx.obj.get("index"))


def timecode(seconds: float) -> str:
    """``MM:SS.mmm``, or ``H:MM:SS.mmm`` past an hour."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{secs:06.3f}" if hours else f"{minutes:02d}:{secs:06.3f}"
