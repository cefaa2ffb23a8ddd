"""A catalog on a database server, which can stop, restart or drop off the network while
vidsonar runs (SQLite, a file, cannot go away this way and gets none of this).

``guard`` hooks a PostgreSQL engine so that:

- a new connection is tried again for up to ``VIDSONAR_DB_RETRY_SECONDS`` (default 2) while
  the server cannot be reached: a restart that takes a second is not seen. Only connecting is
  retried, never a statement: nothing has been sent yet, so it is safe for writes too, while a
  statement cut off by a shutdown may or may not have committed;
- every error that says the server cannot be reached, or went away mid-statement, is raised
  as ``CatalogUnreachableError``, naming the database (its URL without the password) and
  what to do, with the driver's error as its cause: one line for the CLI, a 503 for the
  server, and a type that the ingest worker and the index follower wait out;
- the pooled connections of a server that went away are dropped (``pool_pre_ping`` tests the
  others on checkout), so the first use after it is back reconnects on its own;
- a server that drops off the network without a word is found by TCP keepalives within
  about a minute (``connect_args``), where the system's defaults wait up to two hours.
"""

from __future__ import annotations

import logging
import time

from vidsonar.env import env_seconds
from vidsonar.errors import CatalogRefusedError, CatalogUnreachableError

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
#: libpq waits this long for a server that does not answer (its own default is forever)
CONNECT_TIMEOUT = 10
#: a TCP connection to the server is probed after this long idle, every ``KEEPALIVE_INTERVAL``
#: s, and given up after ``KEEPALIVE_COUNT`` probes unanswered; data sent and not acknowledged
#: for ``TCP_USER_TIMEOUT_MS`` gives it up too. The system's defaults (2 h idle, then 9 probes
#: 75 s apart; about 15 min of retransmissions) leave a process waiting that long on a server
#: that dropped off the network without a word (a partition, a firewall forgetting an idle
#: connection), and let such firewalls forget pooled connections in the first place.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3
TCP_USER_TIMEOUT_MS = 60_000
#: SQLSTATEs of a server that is going or not there yet: admin/crash shutdown, cannot connect now
_GOING = ("57P01", "57P02", "57P03")
#: libpq's words for a server that answered only to say it is not available
_NOT_YET = ("the database system is", "terminating connection")


def retry_seconds() -> float:
    """How long a connection is tried again: ``VIDSONAR_DB_RETRY_SECONDS`` (0: once only)."""
    return env_seconds("VIDSONAR_DB_RETRY_SECONDS", RETRY_SECONDS, lambda s: 0 <= s <= 3600,
                       ": give a number of seconds from 0 to 3600 (how long a connection to the "
                       "catalog database is retried)")


def unreachable(err: BaseException) -> str | None:
    """Why the database server cannot be reached (the driver's first line), if ``err`` says so.

    A connection exception (SQLSTATE class 08) or a server shutting down or starting up
    (57P01-57P03); and the driver's own OperationalError without a SQLSTATE (refused, no
    socket, a name that does not resolve, a timeout, a connection already lost) unless a
    server answered it with a FATAL of its own (no such database or role, bad password,
    too many clients): a server that refuses us is reachable, and told as it is.
    """
    state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
    if state:
        return _first_line(err) if state.startswith("08") or state in _GOING else None
    if not _driver_operational(err):
        return None
    text = str(err)
    if "FATAL:" in text and not any(words in text for words in _NOT_YET):
        return None
    return _first_line(err)


def refused(err: BaseException) -> str | None:
    """The server's own refusal of a connection (``FATAL: password authentication failed``, no
    such database or role, too many clients), if ``err`` is one: a reachable server saying no."""
    if not _driver_operational(err) or unreachable(err) is not None:
        return None
    for line in str(err).splitlines():
        if "FATAL:" in line:
            return line[line.index("FATAL:"):].strip()
    return None


def _driver_operational(err: BaseException) -> bool:
    """A PostgreSQL driver's OperationalError (psycopg 3 or psycopg2), without importing one."""
    return any(cls.__name__ == "OperationalError" and cls.__module__.split(".")[0] in
               ("psycopg", "psycopg2") for cls in type(err).__mro__)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0].strip()


def connect_args(url) -> dict:
    """Connection options a PostgreSQL engine gets unless its URL sets them (libpq's names:
    ``?keepalives_idle=60`` in ``VIDSONAR_DB_URL`` overrides one). libpq applies the TCP ones
    to TCP connections only, not to a Unix socket."""
    ours = {"connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE,
            "keepalives_interval": KEEPALIVE_INTERVAL, "keepalives_count": KEEPALIVE_COUNT,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS}
    return {k: v for k, v in ours.items() if k not in url.query}


def guard(engine, display_url: str) -> None:
    """Retry connecting, and raise ``CatalogUnreachableError`` for a server that is gone
    (see the module's docstring); for an engine on a database server."""
    from sqlalchemy import event

    @event.listens_for(engine, "do_connect")
    def connect(dialect, _record, cargs, cparams):
        deadline = time.monotonic() + retry_seconds()
        delay = 0.05
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.Error as exc:
                if unreachable(exc) is None or time.monotonic() + delay > deadline:
                    raise
                log.debug("catalog database unreachable, retrying in %.2f s: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @event.listens_for(engine, "handle_error")
    def gone(ctx):
        if not isinstance(ctx.original_exception, ctx.dialect.loaded_dbapi.Error):
            return None  # Ctrl-C or a closed generator mid-statement: not the server's doing
        reason = unreachable(ctx.original_exception)
        if reason is None and not ctx.is_disconnect:
            refusal = refused(ctx.original_exception)
            if refusal is not None:
                raise CatalogRefusedError(display_url, refusal)
            return None
        ctx.is_disconnect = True  # drop this connection and the pool's older ones
        if ctx.is_pre_ping:
            return None  # SQLAlchemy reconnects; raising here would skip that
        raise CatalogUnreachableError(display_url, reason or _first_line(ctx.original_exception))
