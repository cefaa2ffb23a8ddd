"""Local runners: the stages in one process.

- ``run_sequential``: one file at a time, batches within a video (the pipeline as it was);
- ``run_overlapped`` (the default): decoder threads plan and read (hashing, decoding,
  thumbnail JPEGs), each a whole video at a time, while another thread embeds batches that
  span videos, and the calling thread writes (catalog, thumbnails, index) and reports
  progress. Decoding thus overlaps encoding, and nothing but embedding runs on the
  encoder's thread. PyAV, torch and onnxruntime release the GIL in their heavy loops, which
  is what makes threads pay. One decoder keeps up with a CPU encoder; a GPU encoder needs
  several (``decoders``; ``default_decoders``).

Cores follow the work (``ConceptSpace.share_cores``): the encoder leaves a core to each
decoder that is decoding, and takes every core while none is (a decoder waits on a full queue
whenever the encoder is the slower stage, and at the end of a run the decoders are done).
A decoder that finds the queue full waits until it has drained to one batch and no batch
runs on the decoders' cores, so the two take turns in long stretches instead of contending.
The encoder loads its models first (``ConceptSpace.prepare``), while the first video decodes.
numpy's BLAS runs on one thread for the whole run (``encoders.device.one_blas_thread``): its
workers busy-wait after each call, on the decoders' cores.

Batches are cut at fixed sizes in arrival order (never on a timer). With one decoder a run's
batches, and so its vectors, are the same every time; with several, videos arrive
interleaved as their decoders go, so which snippets share a batch varies from run to run
(their content and ids do not).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator

from encoders.device import one_blas_thread
from indexer.stages.encode import Encoder
from indexer.stages.plan import READ, PlanItem
from indexer.stages.read import ReadSpec, read_video
from indexer.stages.write import Writer

_DONE = ("done", None)


def _timed_rows(rows: Iterator[dict], report) -> Iterator[dict]:
    """Rows of the read stage, the time spent producing them counted as decoding."""
    while True:
        with report.timed("decode"):
            r = next(rows, None)
        if r is None:
            return
        yield r


def run_sequential(plan: Iterable[PlanItem], encoder: Encoder, spec: ReadSpec, writer: Writer,
                   report, batch_snippets: int = 16) -> None:
    encoder.space.share_cores(0)  # decoding and encoding take turns: each gets every core
    with one_blas_thread():
        _run_sequential(plan, encoder, spec, writer, report, batch_snippets)


def _run_sequential(plan, encoder, spec, writer, report, batch_snippets) -> None:
    for item in plan:
        writer.planned(item)
        if item.action != READ:
            continue
        batch: list[dict] = []
        for r in _timed_rows(read_video(item.task(), spec), report):
            if r["kind"] == "snippet":
                batch.append(r)
                if len(batch) >= batch_snippets:
                    _encode_into(encoder, batch, writer, report)
                continue
            if r["kind"] == "error":
                batch.clear()
            _encode_into(encoder, batch, writer, report)
            writer.accept(r)


def _encode_into(encoder: Encoder, batch: list[dict], writer: Writer, report) -> None:
    if batch:
        with report.timed("encode"):
            out = encoder.encode_rows(batch)
        batch.clear()
        for r in out:
            writer.accept(r)


class _Stop(Exception):
    pass


class DrainQueue:
    """The decoders' bounded queue of rows, with turns between decoders and the encoder.

    A producer that finds it full waits until it holds ``low`` items or fewer and the consumer
    is not in a ``wide`` stretch (running on the producers' cores), then goes on. ``producing``
    counts the producers at work: neither waiting for a drain nor finished.
    """

    def __init__(self, depth: int, low: int, producers: int, stop: threading.Event):
        if not 0 <= low < depth:
            raise ValueError(f"need 0 <= low < depth, got low={low}, depth={depth}")
        self.depth, self.low, self.stop = depth, low, stop
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.producers, self.waiting, self.wide = producers, 0, False

    def put(self, item) -> None:
        with self.cond:
            if len(self.items) >= self.depth:
                self.waiting += 1
                try:
                    while len(self.items) > self.low or self.wide:
                        self._wait()
                finally:
                    self.waiting -= 1
            self.items.append(item)
            self.cond.notify_all()

    def get(self):
        with self.cond:
            while not self.items:
                self._wait()
            item = self.items.popleft()
            self.cond.notify_all()
            return item

    def producing(self) -> int:
        with self.cond:
            return self.producers - self.waiting

    def finished(self) -> bool:
        """One producer is done; True for the last one."""
        with self.cond:
            self.producers -= 1
            self.cond.notify_all()
            return self.producers == 0

    def set_wide(self, wide: bool) -> None:
        with self.cond:
            self.wide = wide
            self.cond.notify_all()

    def _wait(self) -> None:
        if self.stop.is_set():
            raise _Stop
        self.cond.wait(0.1)


def default_decoders(space) -> int:
    """Decoder threads for an overlapped run: one beside a CPU encoder (it keeps up, and a
    second would take the encoder's cores); beside a GPU encoder, a quarter of the cores
    (2 to 8), since one thread decodes ~100-170x real time on this CPU and a GPU encodes more."""
    from encoders.device import available_cores
    if not space.vision_device.startswith("cuda"):
        return 1
    return max(2, min(8, available_cores() // 4))


def run_overlapped(plan: Iterable[PlanItem], encoder: Encoder, spec: ReadSpec, writer: Writer,
                   report, batch_snippets: int = 16, queue_snippets: int | None = None,
                   decoders: int = 1) -> None:
    with one_blas_thread():
        _run_overlapped(plan, encoder, spec, writer, report, batch_snippets, queue_snippets, decoders)


def _run_overlapped(plan, encoder, spec, writer, report, batch_snippets, queue_snippets,
                    decoders) -> None:
    stop = threading.Event()
    decoders = max(1, int(decoders))
    # bounded: decoded frames are big (a 224 px snippet is ~1.6 MB); room for a few batches
    # past the drain mark, so that the encoder's stretches on every core are long
    depth = queue_snippets or max(4 * batch_snippets, 2 * batch_snippets * decoders)
    decoded = DrainQueue(depth, min(depth - 1, batch_snippets * decoders), decoders, stop)
    encoded: queue.Queue = queue.Queue(maxsize=4 * batch_snippets)
    space = encoder.space
    space.share_cores(decoders)  # a core for each decoder thread, from the start (prepare sizes by it)

    def put(q: queue.Queue, message) -> None:
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stop

    items, plan_lock = iter(plan), threading.Lock()

    def next_item():
        with plan_lock:  # the plan is a generator (it reserves ids): one thread at a time
            return next(items, None)

    def decode() -> None:
        try:
            while (item := next_item()) is not None:
                decoded.put(("plan", item))  # before the video's rows: the writer needs it first
                if item.action == READ:
                    for r in _timed_rows(read_video(item.task(), spec), report):
                        decoded.put(("row", r))
            if decoded.finished():
                decoded.put(_DONE)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            _hand_over(decoded.put, exc)

    def encode() -> None:
        batch: list[dict] = []
        try:
            space.prepare()
            while True:
                kind, value = decoded.get()
                if kind == "row" and value["kind"] == "snippet":
                    batch.append(value)
                    if len(batch) >= batch_snippets:
                        _flush(batch)
                    continue
                if kind == "done":
                    _flush(batch)
                if kind == "row" and value["kind"] == "error":  # its snippets need no embedding
                    batch[:] = [r for r in batch if r["video_id"] != value["video_id"]]
                put(encoded, (kind, value))  # plan items, end and error rows pass through
                if kind in ("done", "error"):
                    return
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            _hand_over(lambda message: put(encoded, message), exc)

    def _flush(batch: list[dict]) -> None:
        if not batch:
            return
        busy = decoded.producing()
        space.share_cores(busy)  # a core per decoder at work; all of them while none is
        decoded.set_wide(busy == 0)
        try:
            with report.timed("encode"):
                out = encoder.encode_rows(batch)
        finally:
            decoded.set_wide(False)
        batch.clear()
        for r in out:
            put(encoded, ("row", r))

    threads = [threading.Thread(target=decode, name=f"vidsonar-decode-{i}", daemon=True)
               for i in range(decoders)]
    threads.append(threading.Thread(target=encode, name="vidsonar-encode", daemon=True))
    for t in threads:
        t.start()
    try:
        while True:
            kind, value = _get(encoded, stop)
            if kind == "done":
                break
            if kind == "error":
                raise value
            if kind == "plan":
                writer.planned(value)
            else:
                writer.accept(value)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        space.share_cores(0)  # the run is over: searches and the next run get every core


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                raise _Stop from None


def _hand_over(put, exc: BaseException) -> None:
    """Pass a thread's exception on (``put`` one message); nothing if the run is stopping."""
    try:
        put(("error", exc))
    except _Stop:
        pass
