"""Helpers shared by every CLI command: error printing, the archive a command works on, timecodes,
and the parameter types that bound what an option may be (as the HTTP API's validation does).

They live here, not in ``api.cli``, so that command modules (``api/commands/*``, ``api/demo.py``)
import them without importing the group that imports them back (no cycle).
"""

from __future__ import annotations

import functools
import math
import sys

import click

from vidsonar.errors import VidsonarError

#: the exit status of a command that ran but failed on some of its files (``ingest``, ``thumbs
#: --repair``): a script tells it from the command failing (1)
FILES_FAILED = 3


def fail_cleanly(fn):
    """Print project errors, and the machine's (a full disk, a damaged or read-only catalog:
    ``storage.operational``), as one line a user can act on, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VidsonarError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except Exception as exc:
            from storage.operational import classify
            failure = classify(exc)
            if failure is None:
                raise
            ctx = click.get_current_context(silent=True)
            home = (ctx.find_root().obj or {}).get("home") if ctx is not None else None
            click.echo(f"error: {failure.message}" + (f" [home {home}]" if home else ""), err=True)
            sys.exit(1)
    return wrapper


#: Ids are int64 in the catalog and in FAISS: a bigger one is a usage error naming the option,
#: not an OverflowError from the database driver.
ID = click.IntRange(0, 2**63 - 1)


class Seconds(click.FloatRange):
    """Finite seconds, >= 0 (> 0 with ``positive``). click.FloatRange alone lets NaN through
    (every comparison with it is false), and inf, which has no exact Fraction."""

    name = "seconds"

    def __init__(self, positive: bool = False):
        super().__init__(min=0, min_open=positive)

    def convert(self, value, param, ctx):
        seconds = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return super().convert(seconds, param, ctx)


def language(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A language option given as "" is refused: passed on, "" would read as "not given" and
    quietly become the default language."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty; give a FLORES-200 code such as eng_Latn, or leave the "
                                 "option out", ctx, param)
    return value


def archive_from(ctx: click.Context, writes: str | None = None):
    """The archive named by the group's --home, --space, --index and --read-only (imported
    lazily: start-up stays fast). ``writes``: what the command writes ("ingest"), refused on a
    read-only archive before the command does anything."""
    from search.archive import Archive
    archive = Archive(ctx.obj["home"], ctx.obj["space"], index=ctx.obj.get("index"),
                      read_only=ctx.obj.get("read_only") or None)
    if writes:
        archive.require_writable(writes)
    return archive


def timecode(seconds: float) -> str:
    """``MM:SS.mmm``, or ``H:MM:SS.mmm`` past an hour."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{secs:06.3f}" if hours else f"{minutes:02d}:{secs:06.3f}"
