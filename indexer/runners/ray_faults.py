"""When the Ray cluster misbehaves mid-run: a bounded wait for rows, and one line for the user.

Ray retries what a lost node was doing on the nodes left (read tasks, and encoder actors
restarted elsewhere), and that is usually enough. Where it is not (the node had the only GPU,
the nodes left are too few), Ray waits for ever for resources that may never come back. So the
driver takes its rows through ``rows_of``, which watches the cluster while it waits:

- a node that was alive during the run and is gone is named in a warning at once, saying
  what the nodes left lack, if anything;
- once a node is lost, the run fails if no row has come back for ``patience`` seconds
  (``$VIDSONAR_RAY_LOST_NODE_SECONDS``, default ``LOST_NODE_SECONDS``: time for an
  autoscaler to bring a replacement), naming the lost node and what the nodes left lack;
- an encoder actor whose process dies (the kernel's OOM killer as it loads a model its node
  has no memory for, a crash in its runtime) is restarted by Ray for ever, in a loop where it
  dies each time: after ``ENCODER_RESTARTS`` restarts with no row back the run fails, naming
  the node. (An actor whose model raises an error instead is not restarted: Ray Data ends the
  run with it at once, and ``one_line`` says it.)

The head lost (its GCS, the cluster's control plane, and its raylet) is another matter: a call
to the head blocks until it comes back, and Ray itself ends a driver whose head has not
answered for ``gcs_rpc_server_reconnect_timeout_s`` (60 s) with a line of its own
(``std::_Exit``: no Python code runs, the job is left running). So the driver knocks at the
head's port while it takes rows, and fails the run once the head has not answered for
``head_patience`` seconds (``$VIDSONAR_RAY_LOST_HEAD_SECONDS``, default ``LOST_HEAD_SECONDS``,
Ray's own; a head back sooner, as with Ray's GCS fault tolerance, lets the run go on), having
set Ray's wait ``HEAD_GRACE_SECONDS`` longer (``bound_ray_head_wait``). Where Ray ends the
driver anyway (the head lost while the driver was in a call to it, as it starts the run), its
job is left as a killed driver's is: the next run marks it failed and does the rest.

Either way the error is a ``ClusterError``: the driver has written every video whose rows all
came, and the next run does the rest. ``one_line`` turns Ray's errors that end a run (an actor
that could not start, a worker that died) into such an error, keeping the real cause where a
worker gave it (``ray_worker.RayEncoder``) rather than Ray's traceback.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator

from vidsonar.errors import ClusterError

log = logging.getLogger(__name__)

#: how long after a node is lost the run may go without a row before it fails
LOST_NODE_SECONDS = 300.0
#: restarts of the encoder actors, with no row back between them, that end the run
ENCODER_RESTARTS = 3
#: how long the run waits for a Ray head that stopped answering before it fails
LOST_HEAD_SECONDS = 60.0
#: how much longer than that Ray itself waits before it ends the driver: time to end the run
HEAD_GRACE_SECONDS = 30.0
#: how long one knock at the head's port may take
HEAD_CONNECT_SECONDS = 2.0
#: how often the driver looks at the cluster while it waits for rows
POLL_SECONDS = 2.0
#: how long a run that gives up waits for the thread taking its rows to stop
JOIN_SECONDS = 15.0


def patience() -> float:
    return float(os.environ.get("VIDSONAR_RAY_LOST_NODE_SECONDS", LOST_NODE_SECONDS))


def head_patience() -> float:
    return float(os.environ.get("VIDSONAR_RAY_LOST_HEAD_SECONDS", LOST_HEAD_SECONDS))


def bound_ray_head_wait(head_patience: float) -> None:
    """Ray's own wait for a lost head, after which it ends the driver's process, set
    ``HEAD_GRACE_SECONDS`` longer than the run's, unless the user set it (then it is theirs to
    keep longer than ``$VIDSONAR_RAY_LOST_HEAD_SECONDS``). Called before this process first
    uses Ray (``ray._raylet``, as the address is checked): set later, before ``ray.init`` but
    after that, Ray's message named the new value and it still ended a driver at 60 s."""
    wait = str(int(head_patience + HEAD_GRACE_SECONDS))
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", wait)


def answers(address: str, timeout: float = HEAD_CONNECT_SECONDS) -> bool:
    """Whether something accepts a TCP connection at ``address`` (HOST:PORT) within ``timeout``."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


class Watch:
    """The cluster during a run: the nodes lost, whether the rest can go on, and how often
    the run's encoder actors were restarted.

    The run holds ``actors`` encoder actors of ``actor`` resources each (``{"CPU": 1, "GPU":
    g}``) and needs a reader of one CPU besides; ``patience``, ``head_patience``: see the
    module; ``head``: the head's GCS, HOST:PORT (None: not watched)."""

    def __init__(self, ray, actor: dict[str, float], actors: int, patience: float,
                 head_patience: float = LOST_HEAD_SECONDS, head: str | None = None):
        self.ray, self.actor, self.actors, self.patience = ray, actor, actors, patience
        self.head, self.head_patience = head, head_patience
        self.head_lost_at: float | None = None
        self.head_looked = time.monotonic()
        self.seen = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
        self.lost: dict[str, dict] = {}
        self.lost_at = 0.0
        self.last_rows = time.monotonic()
        self.checked = time.monotonic()
        self.restarts = 0  # the encoder actors' restarts when rows last came (as last seen)
        self.job = ray.get_runtime_context().get_job_id()

    def rows_came(self) -> None:
        self.last_rows = time.monotonic()

    def check(self) -> None:
        """Raise ``ClusterError`` where a lost node, or an encoder actor that keeps dying,
        leaves the run stuck, or the head has been lost too long (see the module)."""
        if not self.head_answers():
            return  # a call to the head would block until it came back
        self._check_encoders()
        self._check_nodes()
        self.checked = time.monotonic()

    def head_answers(self) -> bool:
        """Whether the head's GCS port answers; raise ``ClusterError`` once it has not for
        ``head_patience`` seconds. Rows may still come from the workers meanwhile (to a driver
        not on the head's machine), but Ray ends the driver soon after: so rows or none."""
        now = self.head_looked = time.monotonic()
        if self.head is None or answers(self.head):
            if self.head_lost_at is not None:
                log.warning("the Ray head at %s answers again, after %.0f s: the run goes on", self.head,
                            now - self.head_lost_at)
                self.head_lost_at = None
            return True
        if self.head_lost_at is None:
            self.head_lost_at = now
            log.warning("the Ray head at %s does not answer: the run fails in %.0f s unless it comes back",
                        self.head, self.head_patience)
        if now - self.head_lost_at >= self.head_patience:
            raise self.head_error()
        return False

    def head_error(self) -> ClusterError:
        return ClusterError(f"the Ray head at {self.head} was lost mid-run: it has not answered for "
                            f"{time.monotonic() - self.head_lost_at:.0f} s (VIDSONAR_RAY_LOST_HEAD_SECONDS)")

    @property
    def head_lost(self) -> bool:
        return self.head_lost_at is not None

    def _check_encoders(self) -> None:
        try:
            restarts, where = self._encoder_restarts()
        except Exception:  # noqa: BLE001 - Ray's debugging API: without it, no such check
            log.debug("cannot read the encoder actors' restarts", exc_info=True)
            return
        if self.last_rows > self.checked:  # rows came since the last look: count from here
            self.restarts = restarts
        if restarts - self.restarts >= ENCODER_RESTARTS:
            raise ClusterError(
                f"the encoder actor on Ray node {where} died {restarts - self.restarts} times in a row, "
                "Ray starting it again each time: its process is killed as it loads or runs the model "
                "there (out of memory on that node, or a crash in its runtime: that node's Ray logs "
                "say which)")

    def _encoder_restarts(self) -> tuple[int, str]:
        """The restarts of this run's encoder actors, and the node of the last that restarted
        (the actors' table in the head, through Ray's debugging API: the state API needs the
        dashboard, which a cluster may run without)."""
        from ray._private.state import actors
        table = actors(job_id=self.ray.JobID.from_hex(self.job)).values()
        mine = [a for a in table if "RayEncoder" in a.get("ActorClassName", "")]
        node = next((a["Address"].get("NodeID", "") for a in mine if a.get("NumRestarts")), "")
        where = node_label(self.seen[node]) if node in self.seen else f"? ({node[:12]})"
        return sum(int(a.get("NumRestarts", 0)) for a in mine), where

    def _check_nodes(self) -> None:
        now = time.monotonic()
        alive = [n for n in self.ray.nodes() if n.get("Alive")]
        for n in alive:
            self.seen.setdefault(n["NodeID"], n)
        ids = {n["NodeID"] for n in alive}
        gone = [i for i in self.seen if i not in ids and i not in self.lost]
        for i in gone:
            self.lost[i] = self.seen[i]
            self.lost_at = now
        if not self.lost:
            return
        lacking = self.lacking(alive)
        if gone:
            log.warning("Ray node %s was lost mid-run: Ray runs its work again on the nodes left%s",
                        ", ".join(node_label(self.seen[i]) for i in gone),
                        f", which lack what it needs ({lacking}): the run fails in {self.patience:.0f} s "
                        "unless a node that has it joins" if lacking else "")
        quiet = now - max(self.last_rows, self.lost_at)
        if quiet >= self.patience:
            names = [node_label(n) for n in self.lost.values()]
            why = (f"the nodes left cannot take up its work: {lacking}" if lacking else
                   f"no work has come back from the nodes left in {quiet:.0f} s")
            raise ClusterError(f"Ray node{'s' * (len(names) > 1)} {', '.join(names)} "
                               f"{'were' if len(names) > 1 else 'was'} lost mid-run, and {why} "
                               "(VIDSONAR_RAY_LOST_NODE_SECONDS)")

    def lacking(self, alive: list[dict]) -> str:
        """What the alive nodes lack to host the encoder actors and one reader ('' if nothing)."""
        free = [dict(n.get("Resources", {})) for n in alive]
        placed = 0
        for node in free:
            while placed < self.actors and all(node.get(k, 0.0) >= v for k, v in self.actor.items()):
                for k, v in self.actor.items():
                    node[k] = node.get(k, 0.0) - v
                placed += 1
        reader = any(node.get("CPU", 0.0) >= 1 for node in free)
        if placed == self.actors and reader:
            return ""
        have = {k: sum(n.get("Resources", {}).get(k, 0.0) for n in alive) for k in ("CPU", "GPU")}
        wants = ", ".join(f"{v:g} {k}" for k, v in self.actor.items() if v)
        return (f"{self.actors} encoder actor(s) of {wants} each and a reader of 1 CPU need more than "
                f"the {have['CPU']:g} CPUs and {have['GPU']:g} GPUs they have")


def node_label(node: dict) -> str:
    """A node as the workers name it (``ray_worker.node_name``): its address and id's start."""
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:12]})"


def rows_of(batches: Iterator, watch: Watch, abandon=lambda: None) -> Iterator:
    """The batches of a Ray Data iterator, taken in a thread of their own so that the caller
    can look at the cluster while none comes (``Watch.check``, every ``POLL_SECONDS``), and at
    the head while they do. ``abandon`` stops the dataset where the caller gives up before its
    end (not where the head is lost: it would call the head, and log each task it could not
    stop)."""
    pipe: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def pump() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        pipe.put(("batch", batch), timeout=POLL_SECONDS)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pipe.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            pipe.put(("error", exc))

    thread = threading.Thread(target=pump, name="vidsonar-ray-rows", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            try:
                kind, value = pipe.get(timeout=POLL_SECONDS)
            except queue.Empty:
                watch.check()
                continue
            if kind == "end":
                finished = True
                return
            if kind == "error":
                finished = True
                if watch.head_lost:  # what failed in Ray then is the head's going
                    raise watch.head_error() from value
                raise value
            watch.rows_came()
            if time.monotonic() - watch.head_looked >= POLL_SECONDS:
                watch.head_answers()
            yield value
    finally:
        stop.set()
        if not finished and not watch.head_lost:
            try:
                abandon()
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                log.debug("could not stop the Ray dataset", exc_info=True)
        # done with Ray before the caller disconnects: a call after it would start Ray anew
        # (where the head is lost the thread waits in a call to it, as long as Ray lets it)
        thread.join(0 if watch.head_lost else JOIN_SECONDS)


def one_line(exc: BaseException) -> ClusterError | None:
    """The ``ClusterError`` a user reads for a Ray error that ended the run, or None for an
    error that is not the cluster's (a bug: its traceback is the useful part).

    A worker's own ``ClusterError`` (an encoder that cannot load its space) reaches the driver
    inside Ray's error text, as the last line of the traceback it carries: that line is the
    message. Any other failure of Ray's machinery (an actor or worker that died, an object
    lost) is named by its type and first line."""
    from ray import exceptions as e
    if isinstance(exc, ClusterError):
        return exc
    marker = f"{ClusterError.__module__}.{ClusterError.__name__}: "
    text = str(exc)
    for line in reversed(text.splitlines()):
        if line.startswith(marker):
            return ClusterError(line[len(marker):])
    if isinstance(exc, e.RayError) and not isinstance(exc, e.RayTaskError):
        first = " ".join(text.strip().split("\n")[0].split()) or "no detail"
        return ClusterError(f"the Ray cluster failed the run ({type(exc).__name__}: {first})")
    return None
