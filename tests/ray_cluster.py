"""Real Ray clusters for tests: ``ray start`` raylets on this machine, as a user starts them.

A worker node can run in its own mount namespace (``mount_namespace``), where chosen folders
are hidden under empty read-only mounts (what a machine without the driver's home, or without
a share, sees), and in a memory cgroup of its own (``memory_cgroup``): a machine with that much
memory, whose kernel kills the process that outgrows it. Both need root; without them the
checks that need them skip. Used by the test files of the Ray runner, each with one cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO, VIDSONAR, free_port

RAY = Path(sys.executable).with_name("ray")
STARTED = "Ray runtime started."


@dataclass
class Cluster:
    address: str
    env: dict  # what a process needs to join: the code's path and the cluster's token
    isolated: bool  # whether the worker nodes have their own view of the files
    procs: list[subprocess.Popen] = field(default_factory=list)
    temp: Path | None = None  # Ray's temp folder: the session, its logs and sockets
    hidden: list[Path] = field(default_factory=list)  # what the worker nodes do not see
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)  # worker nodes by name
    prefix: list[str] | None = None  # how a worker node gets its own mount namespace
    cgroups: dict[str, Path | None] = field(default_factory=dict)  # worker nodes' memory cgroups
    args: dict[str, list[str]] = field(default_factory=dict)  # each worker node's `ray start` options

    def add(self, name: str, args: list[str], cgroup: Path | None = None) -> subprocess.Popen:
        """Start worker node ``name`` (``ray start`` options ``args``, a custom resource
        ``vidsonar_test_NAME``), blind to ``hidden`` where this machine can hide folders."""
        proc = start_node(["--address", self.address, *args, "--resources", json.dumps({f"vidsonar_test_{name}": 1})],
                          self.env, self.temp / f"{name}.log", self.prefix, self.hidden, cgroup)
        self.procs.append(proc)
        self.nodes[name], self.cgroups[name], self.args[name] = proc, cgroup, list(args)
        return proc

    def restart(self, name: str) -> subprocess.Popen:
        """Worker node ``name`` stopped with every process it left (its idle workers hold what
        earlier runs loaded), and started anew with the same options: a node with no past."""
        stop([self.nodes[name]])
        group = self.cgroups[name]
        if group is not None:
            kill_all_in(group)
        return self.add(name, self.args[name], group)


@contextlib.contextmanager
def running_cluster(hidden: list[Path], head_env: dict[str, str] | None = None,
                    port: int | None = None) -> Iterator[Cluster]:
    """A head node with no CPU (it holds the driver: ``ray.init`` picks the head node on its
    host, so every read task and encoder actor runs on a worker node; ``Cluster.add`` starts
    those), with token authentication (``ray start``'s default in Ray 2.60 once a token exists)
    and its own token in the environment: nothing is written to ~/.ray. ``head_env``: more
    variables for the head alone (Ray's ``RAY_<setting>`` system settings); ``port``: the head's
    (a free one by default; a cluster started again where a lost one was takes its port)."""
    # not under tmp_path: Ray's socket paths live under it, and a Unix socket's path is short
    temp = Path(tempfile.mkdtemp(prefix="vsray-", dir="/tmp"))
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               RAY_USAGE_STATS_ENABLED="0")
    port, prefix = port or free_port(), mount_namespace()
    made = Cluster(f"127.0.0.1:{port}", env, prefix is not None, temp=temp, hidden=list(hidden), prefix=prefix)
    try:
        made.procs.append(start_node(["--head", "--port", str(port), "--num-cpus", "0", "--num-gpus", "0",
                                      "--include-dashboard", "false", "--temp-dir", str(temp)],
                                     dict(env, **(head_env or {})), temp / "head.log"))
        yield made
    finally:
        stop(made.procs)
        shutil.rmtree(temp, ignore_errors=True)


def mount_namespace() -> list[str] | None:
    """The command prefix that runs a node in its own mount namespace, or None if this
    machine cannot (it needs root and ``unshare``)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return None
    probe = Path(tempfile.mkdtemp(prefix="vs-ns-"))
    (probe / "seen").touch()
    prefix = ["unshare", "--mount", "--propagation", "private"]
    try:
        ok = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o ro none {probe} && test ! -e {probe}/seen"],
                            capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    shutil.rmtree(probe, ignore_errors=True)
    return prefix if ok else None


@contextlib.contextmanager
def memory_cgroup(name: str, limit_bytes: int) -> Iterator[Path | None]:
    """A memory cgroup under this process's own, limited to ``limit_bytes`` (cgroup v1's
    memory controller, or v2's where it is enabled), or None where this machine cannot make
    one. A node joins it with ``start_node(..., cgroup=)``; at the end, what is left in it (a
    node's workers outlive their raylet for a while) is killed and the cgroup removed."""
    group = _make_memory_cgroup(name, limit_bytes)
    try:
        yield group
    finally:
        if group is not None:
            for _ in range(50):
                kill_all_in(group)
                with contextlib.suppress(OSError):
                    group.rmdir()
                    break
                time.sleep(0.2)


def kill_all_in(group: Path) -> None:
    """SIGKILL every process of a memory cgroup (each one a test started), and wait until it
    is empty (a few seconds at most)."""
    deadline = time.monotonic() + 10
    while True:
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def memory_used(group: Path) -> int:
    """Bytes the processes of a memory cgroup hold that the kernel cannot reclaim: anonymous
    and shared memory (Ray's object store), not the file cache, which the usage counters
    include (v1 or v2). A limit that many bytes above this leaves a new process that room,
    however much footage the node read before (a limit above usage let a cache-heavy node
    evict its cache and load the model in the room meant to be too small)."""
    stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
    if "total_rss" in stat or "rss" in stat:  # v1, hierarchical where it says so
        return int(stat.get("total_rss", stat.get("rss", 0))) + int(stat.get("total_shmem", stat.get("shmem", 0)))
    return int(stat.get("anon", 0)) + int(stat.get("shmem", 0))


@contextlib.contextmanager
def memory_limit(group: Path, limit_bytes: int) -> Iterator[None]:
    """A memory cgroup's limit set to ``limit_bytes`` for a while: a node short of memory."""
    name = "memory.limit_in_bytes" if (group / "memory.limit_in_bytes").exists() else "memory.max"
    before = (group / name).read_text().strip()
    (group / name).write_text(str(limit_bytes))
    try:
        yield
    finally:
        (group / name).write_text(before)


def _make_memory_cgroup(name: str, limit_bytes: int) -> Path | None:
    if os.geteuid() != 0:
        return None
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    own = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    v1 = next((m[1] for m in mounts if m[2] == "cgroup" and "memory" in m[3].split(",")), None)
    v2 = next((m[1] for m in mounts if m[2] == "cgroup2"), None)
    choices = []
    if v1 is not None:
        path = next((p for _, c, p in own if "memory" in c.split(",")), "/")
        choices.append((Path(v1) / path.lstrip("/"), "memory.limit_in_bytes"))
    if v2 is not None:
        path = next((p for h, c, p in own if h == "0" and c == ""), "/")
        choices.append((Path(v2) / path.lstrip("/"), "memory.max"))
    for parent, limit_file in choices:
        group = parent / f"{name}-{os.getpid()}"
        try:
            if limit_file == "memory.max" and "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                continue
            group.mkdir()
            (group / limit_file).write_text(str(limit_bytes))
            if int((group / limit_file).read_text()) > limit_bytes * 2:  # not enforced here
                raise OSError("limit not taken")
            return group
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


def node_ports() -> list[str]:
    """Every port a node opens, free ones: three nodes share this host, and other test files'
    clusters may run beside them."""
    return [arg for name in ("node-manager", "object-manager", "dashboard-agent-listen",
                             "dashboard-agent-grpc", "metrics-export", "runtime-env-agent")
            for arg in (f"--{name}-port", str(free_port()))]


def launch(args: list[str], env: dict, log: Path, prefix: list[str] | None = None,
           hide: list[Path] = (), cgroup: Path | None = None) -> subprocess.Popen:
    """``ray start --block`` in its own process group (stopped by its id at the end), inside a
    mount namespace with ``hide`` covered by empty read-only mounts when ``prefix`` is given,
    and in the memory cgroup ``cgroup`` when given."""
    command = [str(RAY), "start", "--block", "--disable-usage-stats", "--object-store-memory",
               str(96 * 1024 * 1024), "--node-ip-address", "127.0.0.1", *node_ports(), *args]
    steps = [f"echo $$ > '{cgroup}/cgroup.procs'"] if cgroup is not None else []
    if prefix:
        steps += [f"mount -t tmpfs -o ro,size=64k vidsonar-hidden '{p}'" for p in hide]
    if steps:
        command = [*(prefix or []), "sh", "-c", f'{" && ".join(steps)} && exec "$@"', "sh", *command]
    with open(log, "w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_node(args: list[str], env: dict, log: Path, prefix: list[str] | None = None,
               hide: list[Path] = (), cgroup: Path | None = None) -> subprocess.Popen:
    """Start a node and return once it has registered with the head (``ray start`` prints
    STARTED then). One at a time: nodes on one host number their sockets and logs by what
    they find in the session folder, so two starting together can take the same socket."""
    for attempt in range(2):
        proc = launch(args, env, log, prefix, hide, cgroup)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and STARTED not in log.read_text():
            time.sleep(0.2)
        if STARTED in log.read_text():
            return proc
        stop([proc])
        # Ray gives a raylet 30 s to register; on 2 busy cores it once never did: one more try
        if attempt or "timed out during startup" not in log.read_text():
            raise AssertionError(f"ray start {' '.join(args)} failed:\n{log.read_text()[-3000:]}")
    raise AssertionError("unreachable")


def stop(procs: list[subprocess.Popen]) -> None:
    """Stop nodes' process groups: SIGTERM to all, then SIGKILL what is left a few seconds later."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        for proc in procs:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for proc in procs:  # a node's own children that outlived it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def ingest_cli(cluster: Cluster, home: Path, files, *options: str, env: dict | None = None,
               cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    """``vidsonar ingest --runner ray`` (give ``--ray-address``) as a user on the cluster runs it."""
    return subprocess.run([str(VIDSONAR), "--home", str(home), "ingest", *map(str, files), "--runner", "ray",
                           *options], capture_output=True, text=True, cwd=cwd, env=env or cluster.env,
                          timeout=timeout)
