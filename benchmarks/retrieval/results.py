"""Benchmark results in one DuckDB table, exported to CSV.

One long table, one row per number, so every benchmark (retrieval, ingestion) and every run
lands in the same place and compares with SQL::

    results(run_id, system, dataset, language, metric, value, hardware, git_revision, time)

``time`` is UTC. ``language`` is a FLORES-200 code, ``all`` (pooled over languages) or ``-`` (not a language
matter, e.g. ingestion throughput).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

COLUMNS = ("run_id", "system", "dataset", "language", "metric", "value", "hardware", "git_revision",
           "time")
SCHEMA = """CREATE TABLE IF NOT EXISTS results (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    language VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE,
    hardware VARCHAR NOT NULL, git_revision VARCHAR NOT NULL, time TIMESTAMP NOT NULL)"""
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """What every row of one benchmark run shares."""
    run_id: str
    hardware: str
    git_revision: str
    time: datetime

    @classmethod
    def new(cls, prefix: str = "run") -> "Run":
        now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC: TIMESTAMPTZ needs pytz
        return cls(f"{prefix}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", hardware(), git_revision(), now)


def hardware() -> str:
    """CPU model and count, and the GPU if torch sees one."""
    from benchmarks.machine import cpu_model
    parts = [f"{cpu_model()} x{os.cpu_count()}"]
    try:
        import torch
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return "; ".join(parts)


def git_revision() -> str:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it."""
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def connect(path: str | Path):
    import duckdb
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    return con


def write(path: str | Path, run: Run, rows: Iterable[dict]) -> int:
    """Append rows ``{system, dataset, language, metric, value}`` of ``run``; returns the count."""
    data = [(run.run_id, r["system"], r["dataset"], r.get("language", "-"), r["metric"],
             None if r["value"] is None else float(r["value"]), run.hardware, run.git_revision, run.time)
            for r in rows]
    con = connect(path)
    try:
        if data:
            con.executemany(f"INSERT INTO results VALUES ({', '.join('?' * len(COLUMNS))})", data)
    finally:
        con.close()
    return len(data)


def read(path: str | Path, run_id: str | None = None) -> list[dict]:
    con = connect(path)
    try:
        where, args = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM results {where} "
                          "ORDER BY time, run_id, dataset, system, language, metric", args)
        return [dict(zip(COLUMNS, row)) for row in cur.fetchall()]
    finally:
        con.close()


def export_csv(path: str | Path, csv_path: str | Path, run_id: str | None = None) -> Path:
    """Write the table (or one run of it) as CSV, through DuckDB's own writer."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path)
    try:
        where = "WHERE run_id = $run" if run_id else ""
        query = (f"SELECT {', '.join(COLUMNS)} FROM results {where} "
                 "ORDER BY time, run_id, dataset, system, language, metric")
        con.execute(f"COPY ({query}) TO '{_sql_string(csv_path)}' (HEADER, DELIMITER ',')",
                    {"run": run_id} if run_id else {})
    finally:
        con.close()
    return csv_path


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")
