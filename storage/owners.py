"""Which process owns a piece of work, and whether this machine can tell that it still runs.

Jobs record their owner (``storage.jobs``) and temporary files name their writer
(``storage.atomic``), so that work a killed process left can be told from work in progress.
An owner is ``host:pid:start:space``:

- ``start``: when the process started, in clock ticks since boot (Linux: field 22 of
  ``/proc/PID/stat``; 0 where the system does not say). A pid the OS gave again to another
  process (a restarted container's server often gets the same small pid) has another start
  time, so the owner is gone although its pid runs.
- ``space``: which pids the pid means, 12 hex digits of a digest of the boot id and the pid
  namespace. Two containers may share a host name (``--network host`` gives them the host's)
  while the same pid names different processes in each; a machine rebooted since has other
  processes under the same pids. Only an owner of this host name and this space can be checked
  by its pid here.

Owners written by versions before this one are ``host:pid`` (no start, no space): they still
parse, and are checked by pid alone on this host. Whether an owner this process cannot check
by pid is alive is for its lease in the catalog to say (``storage.leases.Liveness``, the one
place that decides).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: int | None = None  # clock ticks after boot; None in old owners, 0 where unknown
    space: str | None = None  # None in old owners

    @classmethod
    def parse(cls, text: str | None) -> "Owner | None":
        """``host:pid`` (old) or ``host:pid:start:space`` (fields after these are ignored, for
        a later version's); None for anything else."""
        parts = (text or "").split(":")
        if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
            return None
        if len(parts) == 2:
            return cls(parts[0], int(parts[1]))
        if len(parts) < 4 or not parts[2].isdigit() or not parts[3]:
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]), parts[3])

    def __str__(self) -> str:
        if self.start is None:
            return f"{self.host}:{self.pid}"
        return f"{self.host}:{self.pid}:{self.start}:{self.space}"

    @property
    def legacy(self) -> bool:
        """Written by a version that kept no leases (``host:pid``)."""
        return self.start is None

    def checkable_here(self) -> bool:
        """Whether this process can tell by its pid if the owner runs: same host, same space
        (an old owner, without a space, is taken to be of this one, as it always was)."""
        return self.host == socket.gethostname() and self.space in (None, pid_space())

    def running(self) -> bool:
        """Whether the owner's process runs, by its pid (only meaningful ``checkable_here``):
        the pid exists, is not a zombie, and (where recorded) started when the owner did."""
        if self.pid <= 0:
            return False  # not a process (kill(0, ...) would signal our own group)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, and belongs to another user
        except (OverflowError, ValueError):
            return False
        state, start = _stat(self.pid)
        if state == "Z":
            return False  # exited, not yet reaped by its parent
        return not (self.start and start is not None and start != self.start)


def _stat(pid: int) -> tuple[str | None, int | None]:
    """(state, start ticks) of a process from ``/proc/PID/stat``; Nones where unreadable.
    The command name (field 2) may hold spaces and parentheses: fields are counted after
    its last ``)``; state is field 3, start time field 22."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None, None
    fields = text[text.rfind(")") + 1:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None, None


@functools.lru_cache(maxsize=None)
def pid_space() -> str:
    """This process's pid space: a digest of the boot id and the pid namespace."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink(PROC / "self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def _owner_of(pid: int) -> Owner:
    return Owner(socket.gethostname(), pid, _stat(pid)[1] or 0, pid_space())


def this_owner() -> str:
    """This process as an owner (``host:pid:start:space``), recorded on jobs and leases."""
    return str(_owner_of(os.getpid()))
