"""A Milvus server, which can stop, restart, hang or drop off the network while vidsonar runs,
or answer but refuse it (Milvus Lite, a local folder, cannot go away this way).

Every call vidsonar makes of pymilvus's ``MilvusClient`` goes through ``call``, which:

- bounds a server's by ``VIDSONAR_MILVUS_TIMEOUT`` seconds (default 30; loading a collection,
  which a healthy server may take a while over, by ``LOAD_FACTOR`` times that): without one,
  a call to a server that stopped answering (a frozen process, a host gone from the network)
  waits forever, holding the server's index lock;
- raises ``IndexUnreachableError`` for a server that cannot be reached, went away mid-call or
  did not answer in time, naming the index URL (without token or password) and what to do:
  one line for the CLI, a 503 for the server, a type its ingest worker waits out;
- raises ``IndexRefusedError`` for a server that answered and refused (a wrong token, a user
  without the privileges): retrying will not help until the settings change.

A call is never retried here: one cut off mid-way may or may not have been applied. pymilvus
itself reconnects on the next call once the server is back, and the backend loads a
collection that the restarted server has not loaded yet (``not_loaded``).

A server that stopped answering would still cost every call its whole timeout, one after the
other behind the server's index lock: request N waits N timeouts. So after a call gets no
answer in time, a backend's ``Silence`` fails its calls at once for ``QUIET_SECONDS``, then
lets one through to see whether the server answers again (the others still failing at once
while it waits): at most one call at a time waits on a silent server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from vidsonar.env import env_seconds
from vidsonar.errors import IndexRefusedError, IndexUnreachableError

TIMEOUT_SECONDS = 30.0
#: after a call got no answer in time, how long calls fail at once before one goes through
QUIET_SECONDS = 5.0
#: loading a collection (after a restart) takes a healthy server longer than any other call
LOAD_FACTOR = 10
#: pymilvus's code for a connection it could not make (``Status.CONNECT_FAILED``)
_CONNECT_FAILED = 2
#: Milvus's code for a collection that is not loaded (a server restarted without loading it)
_NOT_LOADED = 101


def timeout_seconds() -> float:
    """How long one call may take: ``VIDSONAR_MILVUS_TIMEOUT`` (seconds, above 0)."""
    return env_seconds("VIDSONAR_MILVUS_TIMEOUT", TIMEOUT_SECONDS, lambda s: 0 < s <= 3600,
                       ": give a number of seconds above 0 and at most 3600 (how long one call to "
                       "the Milvus server may take)")


def quiet_loggers() -> None:
    """pymilvus logs every failed call, traceback and all, on a stderr handler of its own, and
    Milvus Lite its own failures: vidsonar tells each of those failures itself (one line, a
    503), so their loggers keep only what is critical."""
    for name in ("pymilvus", "pymilvus.milvus_client", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class Silence:
    """Whether a server has stopped answering, as one backend's calls found it (see the
    module's docstring): ``enter`` before a call, ``leave`` after it."""

    def __init__(self, quiet: float = QUIET_SECONDS, clock=time.monotonic):
        self.quiet, self.clock = quiet, clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when a call last got no answer; None: it answers
        self._reason = ""
        self._probing = False

    def enter(self, shown: str) -> bool:
        """Whether this call goes through as the one that sees if the server answers again;
        ``IndexUnreachableError`` at once where another call just found it silent, or is
        finding out."""
        with self._lock:
            if self._since is None:
                return False
            if self._probing or self.clock() - self._since < self.quiet:
                raise IndexUnreachableError(shown, f"{self._reason} (until it answers again, calls "
                                                   f"fail at once, one every {self.quiet:g} s going "
                                                   "through to see)")
            self._probing = True
            return True

    def leave(self, probe: bool, silent_reason: str | None) -> None:
        """After a call: ``silent_reason`` where it got no answer in time, else None (any
        answer, an error too, says the server is there)."""
        with self._lock:
            if probe:
                self._probing = False
            if silent_reason is not None:
                self._since, self._reason = self.clock(), silent_reason
            else:
                self._since = None


def call(client, method: str, shown: str, *args, bounded: bool = True, silence: Silence | None = None,
         **kwargs):
    """``client.<method>(*args, **kwargs)`` bounded in time (unless not ``bounded``: Milvus
    Lite, in this process, whose pure-Python inserts and index builds take what they take),
    its failures told as what they are (see the module's docstring); ``shown`` is the index
    URL to name in them; ``silence``, where given, fails the call at once on a server another
    call just found silent."""
    if bounded:
        timeout = timeout_seconds()
        kwargs.setdefault("timeout", timeout * LOAD_FACTOR if method == "load_collection" else timeout)
    probe = silence.enter(shown) if silence is not None else False
    silent = None
    try:
        return getattr(client, method)(*args, **kwargs)
    except Exception as exc:
        error = told(exc, shown, kwargs.get("timeout"))
        if _timed_out(exc):
            silent = error.reason if isinstance(error, IndexUnreachableError) else "no answer in time"
        raise error from exc
    finally:
        if silence is not None:
            silence.leave(probe, silent)


def told(exc: BaseException, shown: str, timeout: float | None = None) -> BaseException:
    """``exc`` as the error a user should see: unreachable, refused, or itself."""
    reason = refused(exc)
    if reason is not None:
        return IndexRefusedError(shown, reason)
    reason = unreachable(exc, timeout)
    if reason is not None:
        return IndexUnreachableError(shown, reason)
    return exc


def unreachable(exc: BaseException, timeout: float | None = None) -> str | None:
    """Why the server cannot be reached, if ``exc`` says so: gRPC's UNAVAILABLE (no connection,
    or one lost) or DEADLINE_EXCEEDED (no answer in time), or pymilvus's failed connection."""
    for err in _chain(exc):
        code = _grpc_code(err)
        if code is not None and code.name == "DEADLINE_EXCEEDED":
            return f"no answer within {timeout:g} s" if timeout else "no answer in time"
        if code is not None and code.name == "UNAVAILABLE":
            return _details(err)
    for err in _chain(exc):
        if _milvus_code(err) == _CONNECT_FAILED:
            return getattr(err, "message", "") or str(err)
    return None


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` says the server gave no answer in time (gRPC's DEADLINE_EXCEEDED)."""
    return any(getattr(_grpc_code(err), "name", None) == "DEADLINE_EXCEEDED" for err in _chain(exc))


def refused(exc: BaseException) -> str | None:
    """The server's refusal, if ``exc`` is one: gRPC's UNAUTHENTICATED (a token missing or
    wrong: Milvus with ``common.security.authorizationEnabled``) or PERMISSION_DENIED."""
    for err in _chain(exc):
        code = _grpc_code(err)
        if code is not None and code.name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return _details(err)
    return None


def not_loaded(exc: BaseException) -> bool:
    """Whether the server answered that the collection is not loaded (a Milvus restarted
    without loading it again, as ``milvus-lite server`` does, or one an operator released)."""
    return any(_milvus_code(err) == _NOT_LOADED for err in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from or while handling, each once (pymilvus
    re-raises with ``raise e from e``, so its cause may be itself, the gRPC error its context)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo += [err.__cause__, err.__context__]


def _grpc_code(err: BaseException):
    """The gRPC status code of a ``grpc.RpcError`` (or a MilvusException that carries one)."""
    code = getattr(err, "code", None)
    if callable(code):
        try:
            code = code()
        except Exception:  # noqa: BLE001 - an RpcError without a status
            return None
    return code if type(code).__name__ == "StatusCode" else None


def _milvus_code(err: BaseException) -> int | None:
    if type(err).__name__ != "MilvusException":
        return None
    code = getattr(err, "code", None)
    return code if isinstance(code, int) else None


def _details(err: BaseException) -> str:
    details = getattr(err, "details", None)
    text = details() if callable(details) else getattr(err, "message", None) or str(err)
    return (str(text or type(err).__name__).strip().splitlines() or [type(err).__name__])[0]
