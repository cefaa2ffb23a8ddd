"""A throwaway PostgreSQL server for tests: a fresh cluster on a unix socket, stopped by pid.

The cluster lives in a private temporary directory owned by the server's user: ``initdb``
refuses to run as root, so under root every server command runs as the ``postgres`` user
Debian's ``postgresql`` package creates (``runuser -u postgres --``). The server listens on no
TCP port, only on a socket in that directory, so parallel test runs never collide. Durability
is switched off (``fsync=off``): the data is thrown away at the end of the session.

Used as pytest fixtures (imported by ``conftest.py``): ``pg_cluster`` (one per session),
``pg_url`` (a new, empty database per test) and ``catalog_url`` (parametrized: an empty SQLite
file, then an empty PostgreSQL database; a test taking it runs on both). Where the server
binaries are missing the PostgreSQL cases skip, naming what to install.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

SERVER_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: $VIDSONAR_PG_BIN, Debian's newest, or $PATH."""
    given = os.environ.get("VIDSONAR_PG_BIN")
    candidates = [given] if given else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


class PgCluster:
    """One initdb'd cluster, started with ``start()`` and stopped (by its pid) with ``stop()``;
    ``halt()`` and ``resume()`` stop and start its server in between, as an outage would."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="vidsonar-pg-"))
        self.data = self.root / "data"
        self.pid: int | None = None
        self._admin = None  # an engine on the maintenance database, for CREATE DATABASE
        if self.as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n"
                               f"{proc.stderr}\n{tail}")
        return proc

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SERVER_USER, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self.resume()

    def resume(self) -> None:
        """Start the server on the cluster's data (again, after ``halt``)."""
        options = (f"-k {self.root} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "-o", options, "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def halt(self) -> None:
        """Stop the server as an administrator's fast shutdown does (SIGINT to the postmaster:
        sessions are ended, committed data stays), keeping the data for ``resume``."""
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the PostgreSQL server (pid {self.pid}) did not stop in 60 s")
            time.sleep(0.05)
        self.pid = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SERVER_USER}@/{database}?host={self.root}"

    def new_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import sqlalchemy as sa
        name = f"t_{uuid.uuid4().hex[:12]}"
        if self._admin is None:
            self._admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown by the postmaster's pid (SIGINT), then the directory goes."""
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and _alive(self.pid):
                    time.sleep(0.05)
                if _alive(self.pid):
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie that no one reaped yet does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _skip_reason() -> str | None:
    if find_bin_dir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                "`postgresql` package (make test does) or set VIDSONAR_PG_BIN")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run the PostgreSQL server"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` (util-linux) is missing"
    return None


def running_cluster():
    """A started throwaway cluster, stopped when the generator ends (skips where the server
    binaries are missing): a fixture's body."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster(find_bin_dir())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """A running throwaway PostgreSQL cluster for the whole session."""
    yield from running_cluster()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return pg_cluster.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path) -> str:
    """An empty catalog database: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return request.getfixturevalue("pg_url")
