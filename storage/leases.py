"""Leases: how processes sharing a catalog tell live work from dead work, across machines.

A process that owns work in a catalog (a `vidsonar ingest` run, a server's ingest worker)
holds a lease there while it does: a row in ``owner_leases`` (migration 9) naming it as an
owner (``storage.owners``), whose ``beat`` a daemon thread renews every sixth of the lease's
length, removed when the process lets go of its work. Times are the database's clock
(``db_epoch``), written and compared there, so machines whose clocks disagree still agree
on whose lease is fresh. Each holder writes the length of its own lease in its row
(``VIDSONAR_LEASE_SECONDS``, default 60), so readers configured otherwise judge it right.

``Liveness`` is the one rule for whether an owner is alive, asked by jobs, item claims and the
sweep of temporary files:

- no owner: gone (jobs queued before owners were recorded);
- an owner this process can check by pid (this host, this pid space): its process runs, and
  started when the owner did (``Owner.running``): a killed process is gone at once;
- otherwise its lease: alive while fresh, gone once it expired;
- with no lease row: an owner written by this version is gone (it holds a lease from before it
  is recorded anywhere until it lets go, so it exited, cleanly or its row was purged long after
  it expired); an old ``host:pid`` owner, from a version that kept no leases, counts as alive
  (it cannot be told; its own host takes it up once that runs this version); without a catalog
  to ask (the sweep of temporary files), alive too: never take another machine's work blindly.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import FunctionElement

from storage.catalog import Base, Catalog
from storage.owners import Owner, this_owner
from vidsonar.env import env_seconds

log = logging.getLogger(__name__)

LEASE_ENV = "VIDSONAR_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0
BEATS_PER_LEASE = 6
#: how long ``Liveness`` trusts the leases it read (one query for a listing, not one a job)
CACHE_SECONDS = 1.0
#: rows of processes killed this long after their lease expired are deleted (by the next holder)
PURGE_AFTER_SECONDS = 3600.0


class OwnerLease(Base):
    __tablename__ = "owner_leases"
    owner: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    since: Mapped[float]  # first beat, seconds since 1970 on the database's clock
    beat: Mapped[float]  # last beat, the same clock
    seconds: Mapped[float]  # the lease's length, as its holder set it


class db_epoch(FunctionElement):
    """Now on the database's clock, in seconds since 1970 (a float, sub-second)."""
    type = sa.Float()
    inherit_cache = True


@compiles(db_epoch)
def _epoch(element, compiler, **kw) -> str:
    return "CAST(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) AS DOUBLE PRECISION)"


@compiles(db_epoch, "postgresql")
def _epoch_pg(element, compiler, **kw) -> str:
    # the wall clock now, not the transaction's start (now()); a timestamptz's epoch is UTC
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_epoch, "sqlite")
def _epoch_sqlite(element, compiler, **kw) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


def lease_seconds() -> float:
    """The length of this process's leases: $VIDSONAR_LEASE_SECONDS, default 60."""
    return env_seconds(LEASE_ENV, DEFAULT_LEASE_SECONDS, lambda s: math.isfinite(s) and s > 0,
                       " is not a number of seconds above 0: give how long this process's lease "
                       f"lasts without renewal (default {DEFAULT_LEASE_SECONDS:g}), or unset it")


class Liveness:
    """Whether owners of work are alive (the rule in the module docstring). Built from a
    catalog to ask about other machines' owners; the leases read are kept ``cache_seconds``."""

    def __init__(self, catalog: Catalog | None = None, cache_seconds: float = CACHE_SECONDS):
        self.catalog, self.cache_seconds = catalog, cache_seconds
        self._leases: dict[str, tuple[float, float]] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()  # a server's JobStore is shared by its threads

    def alive(self, owner: str | None) -> bool:
        if not owner:
            return False
        parsed = Owner.parse(owner)
        if parsed is not None and parsed.checkable_here():
            return parsed.running()
        if self.catalog is None:
            return parsed is not None  # cannot tell from here
        lease = self.leases().get(owner)
        if lease is not None:
            age, seconds = lease
            return age <= seconds
        return parsed is not None and parsed.legacy

    def leases(self) -> dict[str, tuple[float, float]]:
        """(age, length) of every lease in the catalog, in seconds, by owner."""
        with self._lock:
            now = time.monotonic()
            if now - self._read_at > self.cache_seconds:
                query = sa.select(OwnerLease.owner, db_epoch() - OwnerLease.beat, OwnerLease.seconds)
                with self.catalog.engine.connect() as conn:
                    self._leases = {o: (float(age), float(s)) for o, age, s in conn.execute(query)}
                self._read_at = now
            return self._leases


class _Heartbeat:
    """The lease of one process in one catalog: its row, and the thread that renews it."""

    def __init__(self, catalog: Catalog, owner: str, seconds: float):
        self.catalog, self.owner, self.seconds = catalog, owner, seconds
        self.holders = 0
        self._stop = threading.Event()
        self._beaten = False
        self._thread = threading.Thread(target=self._run, name="vidsonar-lease", daemon=True)

    def start(self) -> None:
        """Write the row (before the holder records itself as an owner anywhere), then renew
        it in the background; clear rows long expired (processes killed)."""
        self.beat()
        with self.catalog.session() as s:
            s.execute(sa.delete(OwnerLease).where(
                db_epoch() - OwnerLease.beat > OwnerLease.seconds + PURGE_AFTER_SECONDS))
        self._thread.start()

    def beat(self) -> None:
        with self.catalog.session() as s:
            age = s.scalar(sa.select(db_epoch() - OwnerLease.beat).where(OwnerLease.owner == self.owner))
            if self._beaten and (age is None or age > self.seconds):
                log.warning("this process's lease on the catalog lapsed (%s): other processes may "
                            "have taken up its work; is the database slow or the machine overloaded?",
                            "its row was gone" if age is None else f"no renewal for {age:.0f} s")
            renewed = s.execute(sa.update(OwnerLease).where(OwnerLease.owner == self.owner)
                                .values(beat=db_epoch(), seconds=self.seconds)).rowcount
            if not renewed:
                s.execute(sa.insert(OwnerLease).values(owner=self.owner, since=db_epoch(),
                                                       beat=db_epoch(), seconds=self.seconds))
        self._beaten = True

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / BEATS_PER_LEASE):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the database may be back at the next beat
                log.warning("could not renew this process's lease on the catalog: %s", exc)

    def end(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.seconds)
        try:
            with self.catalog.session() as s:
                s.execute(sa.delete(OwnerLease).where(OwnerLease.owner == self.owner))
        except Exception as exc:  # noqa: BLE001 - the lease expires on its own
            log.warning("could not remove this process's lease from the catalog: %s", exc)


_held: dict[tuple[int, str], _Heartbeat] = {}
_held_lock = threading.Lock()


class Lease:
    """A holder's share of this process's lease in a catalog (``take``); ``release`` once, or
    use it as a context manager. The lease ends when its last holder lets go."""

    def __init__(self, heartbeat: _Heartbeat, key: tuple[int, str]):
        self._heartbeat, self._key = heartbeat, key

    @property
    def owner(self) -> str:
        return self._heartbeat.owner

    def release(self) -> None:
        with _held_lock:
            if self._heartbeat is None:
                return
            heartbeat, self._heartbeat = self._heartbeat, None
            heartbeat.holders -= 1
            if heartbeat.holders > 0:
                return
            _held.pop(self._key, None)
            # under the lock: a lease taken again meanwhile would have its new row deleted
            heartbeat.end()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def take(catalog: Catalog) -> Lease:
    """Hold this process's lease in ``catalog`` (writing its row first) until released: what
    a process does before it records itself as the owner of work there."""
    key = (os.getpid(), catalog.url)
    with _held_lock:
        heartbeat = _held.get(key)
        if heartbeat is None:
            heartbeat = _Heartbeat(catalog, this_owner(), lease_seconds())
            heartbeat.start()
            _held[key] = heartbeat
        heartbeat.holders += 1
        return Lease(heartbeat, key)
