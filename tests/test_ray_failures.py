"""Ray ingestion when the cluster misbehaves, on a real cluster of ``ray start`` raylets
(``tests.ray_cluster``): a head that holds the driver, node ``gpu`` (2 CPUs and the only,
logical, GPU) and node ``cpu`` (2 CPUs), each in a mount namespace blind to the driver's
``driver_only`` folder and in a memory cgroup of ``NODE_MEMORY`` (a machine of that size: its
kernel kills the process that outgrows it). Without root the checks that need those skip.

- a file that kills the process reading it fails alone, and the batch goes on;
- an encoder actor that cannot load its space fails the run at once, in one line; one killed
  each time it loads, on a node short of memory, fails it after a few restarts;
- the driver killed, then the node of the encoder lost: each run ends (the second one within
  ``VIDSONAR_RAY_LOST_NODE_SECONDS``, naming the node), nothing is left holding the cluster,
  and the same command, run again each time, does only what is missing: in the end every
  video once, under the ids a clean run gives.

The head checks its nodes' health every second, 3 misses making a node dead (Ray's default:
every 3 s, 13 s to call a killed node dead here), so a lost node is seen in a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from indexer.decode import pyav
from samples.footage import write_video
from storage.catalog import Catalog
from storage.items import ItemStore
from storage.jobs import JobStore
from tests.conftest import REPO, VIDSONAR, moving_frames
from tests.ray_cluster import (Cluster, ingest_cli, memory_cgroup, memory_limit, memory_used,
                               running_cluster)
from tests.test_ingest_resume import completed

pytest.importorskip("ray", reason="ray[data] is not installed (pip install 'vidsonar[ray]')")
NODE_MEMORY = 2048 * 1024 * 1024  # a node holds ~300 MB idle here, up to ~950 MB in a normal run
CLIPS = 10  # clips of 10 s: 3 snippets each


@pytest.fixture(scope="module")
def places(tmp_path_factory, shared_cache) -> dict[str, Path]:
    """Folders made before the cluster starts (so the nodes can be blind to one), after the
    session's lite cache is set: the cluster's environment, and the CLI's, use it."""
    return {"homes": tmp_path_factory.mktemp("homes"), "footage": tmp_path_factory.mktemp("footage"),
            "driver_only": tmp_path_factory.mktemp("driver_only")}


@pytest.fixture(scope="module")
def cluster(places) -> Cluster:
    health = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    with contextlib.ExitStack() as stack:
        made = stack.enter_context(running_cluster([places["driver_only"]], head_env=health))
        for name, args in (("gpu", ["--num-cpus", "2", "--num-gpus", "1"]), ("cpu", ["--num-cpus", "2"])):
            made.add(name, args, stack.enter_context(memory_cgroup(f"vidsonar-{name}", NODE_MEMORY)))
        yield made


@pytest.fixture(scope="module")
def clips(places) -> list[Path]:
    d = places["footage"]
    return [write_video(d / f"clip{i:02d}.mp4", moving_frames(120, 96, 64, seed=60 + i), fps=12)
            for i in range(CLIPS)]


def burst_video(path: Path, burst: int = 7000) -> Path:
    """40 s of 250 px frames at 4 fps, then ``burst`` more in 3.5 s (2,000 fps). A snippet's
    window keeps every frame it shows until it closes (``indexer.decode``), these as decoded
    (10-bit 4:4:4, ~300 KB each): the window of the burst holds 2 GB, however the video's
    rows stream. Its 10 snippets before it are passed on first (a part of 7 of them)."""
    av = pyav()
    frame = np.zeros((250, 250, 3), np.uint8)
    frame[..., 0] = np.arange(250)[None, :]
    times = [i * 500 for i in range(160)] + [80_000 + i for i in range(burst)]  # in 1/2000 s
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width = stream.height = 250
        stream.pix_fmt, stream.codec_context.time_base = "yuv444p10le", Fraction(1, 2000)
        stream.options = {"preset": "ultrafast"}
        for i, pts in enumerate(times):
            frame[:40, :40] = 255 * (i % 2)
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = pts, stream.codec_context.time_base
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def test_a_file_that_kills_its_reader_fails_alone(cluster, places, clips):
    """A video whose one snippet needs 2 GB (``burst_video``) read on a node of 2 GB: the kernel
    kills the process reading it, in each of its tries (each one after the first skipping the
    snippets passed on), where Ray would retry it for ever. The file fails alone, naming what
    happened; the others go on."""
    if None in cluster.cgroups.values():
        pytest.skip("needs a memory cgroup (root, cgroup v1 or v2 memory controller) for each node")
    long = burst_video(places["footage"] / "burst.mp4")
    try:
        proc = ingest_cli(cluster, places["homes"] / "oom", [clips[0], long, clips[1]], "--ray-address",
                          cluster.address, timeout=180)
    finally:
        long.unlink()
    assert proc.returncode == 3, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.startswith("ingested 2 videos (6 snippets)"), proc.stdout
    failures = [line for line in proc.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(failures) == 1 and failures[0].startswith(f"  failed: {long}: the process reading it died")
    assert "needs more memory than a node has" in failures[0]
    assert sum(oom_kills(group) for group in cluster.cgroups.values()) >= 3  # the kernel's doing


def test_an_encoder_that_cannot_load_its_space_fails_the_run_in_one_line(cluster, places, clips):
    """A space whose weights file only the driver has (a config naming a local path that the
    worker nodes lack): the actor's real error, once, as the command's last line (exit 1),
    and in the job; no retry loop, no traceback from vidsonar."""
    if not cluster.isolated:
        pytest.skip("needs mount namespaces (root and unshare) to hide a folder from the worker nodes")
    # its bytes do not matter: the nodes cannot see it, and the driver loads no model itself
    weights = places["driver_only"] / "tiny-vit.pt"
    weights.write_bytes(b"weights only the driver's machine has")
    home = places["homes"] / "weights"
    (home / "spaces").mkdir(parents=True)
    (home / "spaces" / "tiny-here.json").write_text(json.dumps({
        "name": "tiny-here", "family": "open-clip-dual", "dim": 32, "languages": "flores200",
        "vision": {"model": "tiny-vit-test", "weights": f"file:{weights}", "image_size": 32},
        "options": {"device": "cpu"}}))
    proc = ingest_cli(cluster, home, clips[:2], "--ray-address", cluster.address,
                      env=dict(cluster.env, VIDSONAR_SPACE="tiny-here"), timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [proc.stderr.splitlines()[-1]], proc.stderr[-3000:]
    assert re.match(r"error: the encoder actor on Ray node \S+ \([0-9a-f]{12}\) ", errors[0]), errors
    assert f"cannot load concept space 'tiny-here': weight source 'file:{weights}': {weights} does not exist" \
        in errors[0]
    assert "the 0 videos this run wrote are kept" in errors[0]
    job = JobStore(Catalog(f"sqlite:///{home / 'catalog.db'}")).list()[0]
    assert job.status == "failed" and job.error == "ClusterError: " + errors[0].removeprefix("error: ")


def test_an_encoder_killed_as_it_loads_ends_the_run_naming_its_node(cluster, places, clips):
    """The node of the one GPU left 150 MB of memory, too little for the model: the kernel
    kills the encoder actor as it loads, and Ray starts it again there, for ever (a crash
    in the model's runtime would loop alike). The run ends after a few such restarts, naming
    the node, where it waited for ever."""
    if cluster.cgroups.get("gpu") is None:
        pytest.skip("needs a memory cgroup (root, cgroup v1 or v2 memory controller) for each node")
    # a node with no past: the idle workers of earlier runs hold hundreds of MB, and the kernel
    # kills the largest process of the group, so one of them would die instead of the actor
    cluster.restart("gpu")
    group = cluster.cgroups["gpu"]
    kills = oom_kills(group)
    with memory_limit(group, memory_used(group) + 150 * 1024 * 1024):
        proc = ingest_cli(cluster, places["homes"] / "small", clips[:2], "--ray-address", cluster.address,
                          "--gpus-per-encoder", "1", timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    # the driver looks every POLL_SECONDS, so it may see a restart or two beyond the third
    said = re.match(r"error: the encoder actor on Ray node \S+ \([0-9a-f]{12}\) died (\d+) times in a row, "
                    r"Ray starting it again each time: its process is killed as it loads or runs the model "
                    r"there \(out of memory on that node", proc.stderr.splitlines()[-1])
    assert said, proc.stderr[-3000:]
    assert int(said.group(1)) >= 3, said.group(0)
    assert oom_kills(group) >= kills + int(said.group(1))  # the actor, each time it died


def test_a_killed_driver_and_a_lost_node_each_end_and_the_same_command_finishes(cluster, places, clips):
    """The same command three times: its driver SIGKILLed mid-run (nothing of its job left
    holding the cluster); then the node of its encoder (the one GPU) lost mid-run (the run
    fails within the bound, naming the node, where Ray would wait for ever for a GPU); then
    to the end on the node left (the GPU request dropped with a warning). Nothing committed
    is lost or redone, and the archive holds what a clean run gives, under the same ids."""
    home = places["homes"] / "chain"
    db = home / "catalog.db"
    command = [str(VIDSONAR), "--home", str(home), "ingest", *map(str, clips), "--runner",
               "ray", "--ray-address", cluster.address, "--gpus-per-encoder", "1", "--json"]
    env = dict(cluster.env, VIDSONAR_RAY_LOST_NODE_SECONDS="2")
    runs = []

    def start() -> subprocess.Popen:
        """The command, its output to files (Ray's messages could fill a pipe no one reads)."""
        out, err = (home.parent / f"chain{len(runs)}.{name}" for name in ("out", "err"))
        with open(out, "w") as o, open(err, "w") as e:
            runs.append((subprocess.Popen(command, cwd=REPO, env=env, stdout=o, stderr=e), out, err))
        return runs[-1][0]

    def ended(timeout: float) -> tuple[int, str, str]:
        proc, out, err = runs[-1]
        proc.wait(timeout)
        return proc.returncode, out.read_text(), err.read_text()

    def when_completed(count: int) -> None:
        deadline = time.monotonic() + 180
        while completed(db) < count:
            assert runs[-1][0].poll() is None, runs[-1][2].read_text()[-3000:]
            assert time.monotonic() < deadline, "the ingest made no progress"
            time.sleep(0.05)

    # 1. the driver killed: its actors go, and nothing of the job holds a CPU or the GPU
    start()
    when_completed(1)
    runs[-1][0].send_signal(signal.SIGKILL)
    ended(60)
    assert wait_idle(cluster) == [], "the killed driver's job still holds the cluster"
    done = [ok_paths(db)]

    # 2. the same command; the node running its encoder lost: the run ends, naming the node
    start()
    when_completed(len(done[0]) + 1)
    os.killpg(cluster.nodes["gpu"].pid, signal.SIGKILL)
    code, out, err = ended(120)
    assert code == 1, out + err[-3000:]
    last = err.splitlines()[-1]
    assert re.match(r"error: Ray node \S+ \([0-9a-f]{12}\) was lost mid-run, and the nodes left cannot take "
                    r"up its work: 1 encoder actor\(s\) of 1 CPU, 1 GPU each", last), err[-3000:]
    assert "the same command again does only what is missing" in last
    assert "was lost mid-run: Ray runs its work again on the nodes left, which lack" in err  # at once
    done.append(ok_paths(db) - done[0])
    second = len(done[0]) + len(done[1])
    assert done[1] and second < CLIPS
    with sqlite3.connect(db) as conn:  # what is ok is whole; what is not has nothing written yet
        rows = conn.execute("SELECT v.status, count(s.id), count(e.snippet_id) FROM videos v LEFT JOIN "
                            "snippets s ON s.video_id = v.id LEFT JOIN embeddings e ON e.snippet_id = s.id "
                            "GROUP BY v.id").fetchall()
    assert sorted(rows) == sorted([("ok", 3, 3)] * second + [("pending", 0, 0)] * (CLIPS - second))

    # 3. the same command: the rest, and only the rest, on the node left
    start()
    code, out, err = ended(180)
    assert code == 0, err[-3000:]
    report = json.loads(out)
    assert (report["ingested"], report["skipped"], report["failed"]) == (CLIPS - second, second, [])
    assert "encoding on CPU" in err  # the GPU went with its node
    catalog = Catalog(f"sqlite:///{db}")
    # a file committed is skipped unread by the runs after (each run hashes what it plans)
    hashes = {i.path: i.hashes for i in ItemStore(catalog).all()}
    assert hashes == {str(c): 1 if str(c) in done[0] else 2 if str(c) in done[1] else 3 for c in clips}
    assert [(v.id, v.path, v.status) for v in catalog.videos()] == \
        [(i + 1, str(clip), "ok") for i, clip in enumerate(clips)]  # the ids of a clean run
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM snippets JOIN embeddings ON snippet_id = id").fetchone() == \
            (3 * CLIPS,)
    assert sum(1 for _ in (home / "thumbs").rglob("*.jpg")) == 3 * CLIPS


HOLDERS = """
import json, sys, time, ray
from ray._private.state import state  # the actors' table in the head's GCS (no dashboard here)
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
deadline = time.monotonic() + float(sys.argv[2])
while True:
    total, free = ray.cluster_resources(), ray.available_resources()
    held = [f"{k}: {total[k] - free.get(k, 0.0):g}" for k in ("CPU", "GPU")
            if total.get(k, 0.0) - free.get(k, 0.0) > 1e-6]
    # Ray Data's own detached helpers (stats, autoscaling) stay for the next job, holding nothing
    held += [a["ActorClassName"] for a in state.actor_table(None).values()
             if a["State"] not in ("DEAD",) and not a["IsDetached"]]
    if not held or time.monotonic() > deadline:
        print(json.dumps(held))
        break
    time.sleep(0.5)
"""


def wait_idle(cluster: Cluster, seconds: float = 60) -> list[str]:
    """What still holds the cluster (CPUs, GPUs, live actors of a job) after up to ``seconds``."""
    proc = subprocess.run([sys.executable, "-c", HOLDERS, cluster.address, str(seconds)], capture_output=True,
                          text=True, env=cluster.env, cwd=REPO, timeout=seconds + 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def oom_kills(group: Path) -> int:
    """How many processes the kernel killed in a memory cgroup for outgrowing it."""
    for name, key in (("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill")):  # v1, v2
        if (group / name).exists():
            return sum(int(line.split()[1]) for line in (group / name).read_text().splitlines()
                       if line.split()[0] == key)
    return 0


def ok_paths(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {p for (p,) in conn.execute("SELECT path FROM videos WHERE status = 'ok'")}
