"""Shared fixtures: generated videos, bad files, the real sample archive, the lite space."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from tests.pg import catalog_url, pg_cluster, pg_url  # noqa: F401  (fixtures: SQLite and a real PostgreSQL)

# machines here are small and shared: no per-example deadline, the default example count
settings.register_profile("vidsonar", deadline=None)
settings.load_profile("vidsonar")

REPO = Path(__file__).resolve().parents[1]
VIDSONAR = Path(sys.executable).with_name("vidsonar")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Iterator[Path]:
    """One cache for the session, so label-prompt embeddings are computed once (~10 s).

    $VIDSONAR_CACHE points at it while the session runs (CLI subprocesses inherit it) and is
    restored afterwards.
    """
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDSONAR_CACHE", str(path))
        yield path


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Spaces and families a test registers are forgotten after it."""
    from encoders.registry import scoped_registry
    with scoped_registry():
        yield


@pytest.fixture
def home(tmp_path, shared_cache) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def lite_space(shared_cache):
    from encoders.registry import load_space
    return load_space("lite", cache_dir=shared_cache)


def moving_frames(n: int, w: int = 96, h: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Frames of a bright square sliding over noise: every frame differs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = base.copy()
        x = (i * 3) % max(w - 16, 1)
        f[h // 4:h // 4 + 16, x:x + 16] = 255
        frames.append(f)
    return frames


def write_picture(path: Path, frames: list[np.ndarray], fmt: str, ms: int = 100) -> Path:
    """An image file written by Pillow in ``fmt`` ("JPEG", "PNG", "GIF"...), whatever the
    name says; several frames make an animation (GIF) ``ms`` milliseconds a frame."""
    from PIL import Image
    first, *rest = [Image.fromarray(f) for f in frames]
    more = {"save_all": True, "append_images": rest, "duration": ms, "loop": 0} if rest else {}
    first.save(path, fmt, **more)
    return path


def write_rotated_video(folder: Path) -> Path:
    """A 96x64 clip whose stream says "display rotated by 90 degrees" (as phones write it)."""
    import av
    from samples.footage import write_video
    src = write_video(folder / "land.mp4", moving_frames(24, w=96, h=64), fps=12)
    rotated = folder / "rot.mp4"
    with av.open(str(src)) as inp, av.open(str(rotated), "w") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        outs.set_display_rotation(90)
        for packet in inp.demux(ins):
            if packet.dts is not None:
                packet.stream = outs
                out.mux(packet)
    return rotated


def write_vfr_video(path: Path, times: list[Fraction], w: int = 96, h: int = 64) -> Path:
    """An MP4 whose frames sit at the given (irregular) times."""
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=1000)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for t, img in zip(times, moving_frames(len(times), w, h)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(t * 1000)
            frame.time_base = Fraction(1, 1000)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """One file for each way a video can be bad."""
    from samples.footage import write_video
    d = tmp_path_factory.mktemp("bad")
    files = {"empty": d / "empty.mp4", "text": d / "notes.mp4", "audio_only": d / "audio.m4a",
             "truncated": d / "truncated.mp4"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not a video\n" * 20)
    _write_audio_only(files["audio_only"])
    full = write_video(d / "full.mp4", moving_frames(48), fps=12)
    data = full.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])  # MP4 index (moov) is at the end
    full.unlink()
    return files


def _write_audio_only(path: Path) -> None:
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        for i in range(10):
            samples = (np.sin(np.arange(1024) * 0.05) * 0.1).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory):
    """The demo's sample archive: real photos as clips and reels, and the real concert video."""
    from samples.footage import build_sample_archive
    return build_sample_archive(tmp_path_factory.mktemp("samples"))


def run_cli(*args: str, home: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["VIDSONAR_HOME"] = str(home)
    proc = subprocess.run([str(VIDSONAR), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"vidsonar {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def ingested_archive(tmp_path_factory, sample_videos, bad_files, shared_cache):
    """The sample archive plus every bad file, ingested once through the real CLI."""
    home = tmp_path_factory.mktemp("archive-home")
    folder = sample_videos[0].path.parent
    proc = run_cli("ingest", str(folder), *map(str, bad_files.values()), "--json", home=home, check=False)
    assert proc.returncode == 3, proc.stderr  # ran, but files failed: the report is still complete
    return home, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def registered_hash_space():
    """The deterministic hash space registered by name for one module (servers and CLIs open
    their space by name); modules ask for it with ``pytestmark = usefixtures(...)``."""
    from tests.fakes import HASH_SPACE, hash_space
    with hash_space(HASH_SPACE):
        yield HASH_SPACE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                return json.load(resp)
        except OSError:
            time.sleep(0.3)
    raise AssertionError("server did not become healthy")


@contextmanager
def vidsonar_server(env: dict) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `vidsonar serve` subprocess on a free loopback port, stopped (SIGINT, then kill)
    when the block ends; yields its URL and process (wait with ``wait_healthy``)."""
    port = free_port()
    proc = subprocess.Popen([str(VIDSONAR), "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
