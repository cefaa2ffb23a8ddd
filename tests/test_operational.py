"""A full disk, a damaged or read-only catalog, a folder that cannot be written: named in one
line with what to do, by the CLI (exit 1) and the server (507/503), never a traceback or a bare
500."""

from __future__ import annotations

import errno
import os
import sqlite3
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import main
from storage.operational import DAMAGED, DISK_FULL, READ_ONLY, UNWRITABLE, classify


def wrapped(message: str) -> sa.exc.OperationalError:
    """How SQLite's errors reach the code: inside SQLAlchemy's."""
    return sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.ENOSPC, "No space left on device"), DISK_FULL),
    (wrapped("database or disk is full"), DISK_FULL),
    (sa.exc.DatabaseError("SELECT", {}, sqlite3.DatabaseError("file is not a database")), DAMAGED),
    (wrapped("database disk image is malformed"), DAMAGED),
    (wrapped("unable to open database file"), READ_ONLY),
    (OSError(errno.EROFS, "Read-only file system"), READ_ONLY),
])
def test_operational_failures_are_recognised(exc, kind):
    failure = classify(exc)
    assert failure is not None and failure.kind == kind


DENIED = "permission denied for /srv/cache/previews/.abc.mp4.tmp (in /srv/cache/previews)"


@pytest.mark.parametrize("code, start, fix", [
    (errno.EACCES, DENIED, "fix the permissions"),  # a read or a write: the message says both
    (errno.EPERM, DENIED, "fix the permissions"),
    (errno.EROFS, "cannot write in /srv/cache/previews (", "mount it read-write")])
def test_a_folder_that_cannot_be_written_is_named_with_what_to_do(code, start, fix):
    failure = classify(OSError(code, os.strerror(code), "/srv/cache/previews/.abc.mp4.tmp"))
    assert failure is not None and failure.kind == UNWRITABLE
    assert failure.message.startswith(start), failure.message
    assert fix in failure.message and "VIDSONAR_CACHE" in failure.message
    bare = classify(PermissionError(errno.EACCES, "Permission denied"))  # no path known
    assert bare.kind == UNWRITABLE and "Permission denied" in bare.message


def test_a_failure_raised_from_one_is_recognised_and_others_are_not():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the index failed") from inner
    except RuntimeError as outer:
        assert classify(outer).kind == DISK_FULL
    assert classify(ValueError("a bug")) is None
    assert classify(OSError(errno.ENOENT, "No such file")) is None


@pytest.mark.parametrize("command", [["info"], ["search", "a cat"], ["jobs"]])
def test_a_damaged_catalog_is_one_line_naming_it(tmp_path, command):
    home = tmp_path / "home"
    home.mkdir()
    (home / "catalog.db").write_bytes(b"this is not an sqlite file at all, only garbage bytes" * 100)
    result = CliRunner().invoke(main, ["--home", str(home), *command])
    assert result.exit_code == 1, result.output
    assert "error: the catalog database is damaged" in result.output and ".recover" in result.output
    assert "Traceback" not in result.output and str(home) in result.output


def test_the_ingest_worker_outlives_a_job_whose_failure_cannot_be_recorded(tmp_path):
    """On a full disk even marking a job failed fails; the worker thread must go on to the next."""
    from api.server.worker import IngestWorker
    from storage.catalog import Catalog
    from storage.jobs import JobStore
    worker = IngestWorker(None, JobStore(Catalog(f"sqlite:///{tmp_path}/catalog.db")))
    ran = []

    def run_job(job_id):
        ran.append(job_id)
        if job_id == 1:
            raise wrapped("database or disk is full")
    worker.run_job = run_job
    worker.start()
    worker.submit(1)
    worker.submit(2)
    deadline = time.monotonic() + 10
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    alive = worker.alive
    worker.stop(timeout=10)
    assert ran == [1, 2] and alive
