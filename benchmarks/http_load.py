"""Search latency through HTTP: N concurrent clients for T seconds against a real server.

Starts ``vidsonar serve`` in a subprocess on 127.0.0.1 (on the demo's sample archive, made
if the home is empty) unless ``--url`` names a running server, then has 16 clients, each
with its own connection, send text searches back to back (the demo's queries in six
languages, half with their language, half with auto) for 30 s after a short warm-up.
Reports p50/p90/p99/max latency, throughput and every error; saves JSON and a CSV row
under ``benchmarks/results/``. With ``--while-ingesting``, a CLI ``vidsonar ingest`` of fresh
clips runs in another process on the same archive during the load (a shared archive: the
server follows its commits), and the result says how many videos it committed meanwhile and
whether the server's index caught up with the catalog afterwards. The load generator shares the machine with the server:
on a small machine its CPU use is part of what is measured.

    python -m benchmarks.http_load [--seconds 30] [--clients 16] [--url URL] [--home DIR] [--while-ingesting]
    vidsonar bench http
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
WARM_UP_SECONDS = 3.0


def queries() -> list[dict]:
    from samples.footage import QUERIES
    out = []
    for i, (lang, text) in enumerate((lang, text) for by_lang in QUERIES.values()
                                     for lang, text in by_lang.items()):
        out.append({"q": text, "k": "10", **({"lang": lang} if i % 2 == 0 else {})})
    return out


def ensure_archive(home: Path) -> None:
    """The demo's sample footage, ingested, unless the home already holds videos."""
    from search.archive import Archive
    archive = Archive(home)
    if archive.catalog.counts()["videos"]:
        return
    from samples.footage import build_sample_archive
    videos = build_sample_archive(home.parent / f"{home.name}-samples")
    archive.ingestor().ingest([v.path for v in videos])


def fresh_clips(folder: Path, count: int, seconds: float = 6.0) -> list[Path]:
    """``count`` clips no archive holds yet: sample photos in a rotating order, each clip
    panning for a length of its own (so no two files share their bytes, and none is skipped as
    a duplicate)."""
    from samples.footage import PHOTOS, make_clip
    names = list(PHOTOS)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photos = [names[(i + j) % len(names)] for j in range(2)]
        path = folder / f"clip-{i:03d}.mp4"
        make_clip(path, photos, seconds=seconds / 2 + 0.05 * i)
        paths.append(path)
    return paths


def start_ingest(home: Path, folder: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("vidsonar")
    env = {**os.environ, "VIDSONAR_HOME": str(home)}
    return subprocess.Popen([str(exe), "ingest", str(folder), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def health_of(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/health", timeout=10) as resp:
        return json.load(resp)


def caught_up(url: str, wait: float = 30.0) -> float | None:
    """Seconds until the server's index holds every catalog snippet (None: not within ``wait``)."""
    started = time.monotonic()
    while time.monotonic() - started < wait:
        h = health_of(url)
        if h.get("index_vectors") == h.get("snippets"):
            return round(time.monotonic() - started, 2)
        time.sleep(0.25)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("vidsonar")
    env = {**os.environ, "VIDSONAR_HOME": str(home)}
    proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become healthy in 300 s")


async def _client(url: str, qs: list[dict], offset: int, stop_at: float, measure_from: float,
                  latencies: list[float], errors: list[str]) -> None:
    import httpx
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        i = offset
        while (now := time.perf_counter()) < stop_at:
            params = qs[i % len(qs)]
            i += 1
            try:
                resp = await client.get("/api/search", params=params)
                ok = resp.status_code == 200 and resp.json()["hits"]
                error = None if ok else f"{resp.status_code}: {resp.text[:200]}"
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                error = f"{type(exc).__name__}: {exc}"
            done = time.perf_counter()
            if now >= measure_from:
                if error:
                    errors.append(error)
                else:
                    latencies.append(done - now)


async def _load(url: str, clients: int, seconds: float) -> tuple[list[float], list[str], float]:
    qs = queries()
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    measure_from = start + WARM_UP_SECONDS
    stop_at = measure_from + seconds
    await asyncio.gather(*(_client(url, qs, c * 7, stop_at, measure_from, latencies, errors)
                           for c in range(clients)))
    return latencies, errors, time.perf_counter() - measure_from


def hardware() -> str:
    from benchmarks.machine import cpu_model
    return f"{os.cpu_count()} CPUs {cpu_model()}; {platform.system()} {platform.release()}".strip()


def run(seconds: float = 30.0, clients: int = 16, url: str | None = None,
        home: str | os.PathLike | None = None, while_ingesting: bool = False,
        clips: int = 60) -> dict:
    proc = ingest = None
    if while_ingesting and url is not None:
        raise SystemExit("--while-ingesting starts its own server and ingest: drop --url")
    if url is None:
        home_path = Path(home or os.environ.get("VIDSONAR_HOME")
                         or Path(tempfile.gettempdir()) / "vidsonar-bench-http").expanduser()
        home_path.mkdir(parents=True, exist_ok=True)
        ensure_archive(home_path)
        proc, url = start_server(home_path)
    during: dict = {}
    try:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:
                health = json.load(resp)
        except OSError as exc:
            raise SystemExit(f"no vidsonar server answers at {url}: {exc}") from None
        if while_ingesting:
            folder = home_path.parent / f"{home_path.name}-fresh-{time.time_ns():x}"
            fresh_clips(folder, clips)
            ingest = start_ingest(home_path, folder)
            videos_before = health["videos"]
        load_before = os.getloadavg()[0]
        latencies, errors, wall = asyncio.run(_load(url, clients, seconds))
        load_after = os.getloadavg()[0]
        if ingest is not None:
            still_running = ingest.poll() is None
            committed = health_of(url)["videos"] - videos_before  # the catalog, as the server sees it
            if still_running:
                ingest.send_signal(signal.SIGINT)  # a killed run is finished by the next one
            ingest.wait(timeout=120)
            during = {"ingest_clips": clips, "ingest_still_running_at_end": still_running,
                      "videos_committed_during_load": committed,
                      "index_caught_up_after_s": caught_up(url)}
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.kill()
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "clients": clients, "seconds": round(wall, 2), "requests": len(latencies) + len(errors),
        "errors": len(errors), "error_samples": errors[:5],
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "searches_per_s": round(len(latencies) / wall, 1),
        "space": health.get("space"), "index_vectors": health.get("index_vectors"),
        "hardware": hardware(),
        "load_avg_1min": [round(load_before, 2), round(load_after, 2)],  # others on the machine
        "server": "vidsonar serve (uvicorn, 1 process) on 127.0.0.1",
        "while_ingesting": bool(while_ingesting), **during,
    }


def save(result: dict) -> Path:
    """``http_load.json`` (this run) and a row in ``http_load.csv`` (every run)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "http_load.json").write_text(json.dumps(result, indent=2) + "\n")
    path = RESULTS / "http_load.csv"
    row = {k: v for k, v in result.items() if k != "error_samples"}
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    fields = list(dict.fromkeys([*(rows[0].keys() if rows else []), *row]))
    with open(path, "w", newline="") as f:  # rewritten whole, so new columns line up
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows([*rows, row])
    return path


def main(seconds: float = 30.0, clients: int = 16, url: str | None = None,
         home: str | None = None, as_json: bool = False, while_ingesting: bool = False) -> dict:
    result = run(seconds, clients, url, home, while_ingesting)
    path = save(result)
    if as_json:
        print(json.dumps(result))
    else:
        print(f"{result['clients']} clients for {result['seconds']} s on {result['space']} "
              f"({result['index_vectors']} vectors): {result['requests']} searches, "
              f"{result['errors']} errors, {result['searches_per_s']}/s")
        print(f"latency ms: p50 {result['p50_ms']}  p90 {result['p90_ms']}  "
              f"p99 {result['p99_ms']}  max {result['max_ms']}")
        print(f"hardware: {result['hardware']}; 1-min load average before/after "
              f"{result['load_avg_1min']}; saved {path}")
        if result["while_ingesting"]:
            print(f"meanwhile a CLI ingest committed {result['videos_committed_during_load']} videos "
                  f"(still running at the end: {result['ingest_still_running_at_end']}); the "
                  f"server's index caught up {result['index_caught_up_after_s']} s after the load")
        for sample in result["error_samples"]:
            print(f"  error: {sample}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--url")
    parser.add_argument("--home")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--while-ingesting", action="store_true")
    a = parser.parse_args()
    main(a.seconds, a.clients, a.url, a.home, a.json, a.while_ingesting)
