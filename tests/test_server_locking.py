"""The server's explicit locks: encoders one call at a time, the index under one lock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from api.server.locking import LockedSpace, LockedStore
from encoders.base import ConceptSpace, SpaceConfig, l2_normalize

CFG = SpaceConfig("lock-test", "none", 4, "e5")


class CountingSpace(ConceptSpace):
    """Deterministic vectors; records how many calls run at once (it must never be above 1)."""

    needs_language = False
    has_labels = True

    def __init__(self, config):
        super().__init__(config)
        self.running = self.most = 0
        self.guard = threading.Lock()

    def _enter(self):
        with self.guard:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)  # long enough for an unguarded second call to overlap
        with self.guard:
            self.running -= 1

    def _encode_text(self, texts, lang, query):
        self._enter()
        return l2_normalize(np.ones((len(texts), 4), np.float32))

    def encode_snippets(self, frames):
        self._enter()
        return l2_normalize(np.ones((len(frames), 4), np.float32))

    def nearest_labels(self, vectors, k=3):
        return [[("thing", 1.0)] for _ in vectors]


def _hammer(fn, n=8):
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_each_encoder_runs_one_call_at_a_time_and_abilities_pass_through():
    inner = CountingSpace(CFG)
    batches = []
    space = LockedSpace(inner, threading.RLock(), threading.RLock(), on_batch=batches.append)
    assert isinstance(space, ConceptSpace) and space.name == "lock-test" and space.dim == 4
    assert (space.has_labels, space.has_anchors, space.has_decoder, space.needs_language) == (True, False, False, False)
    assert space.nearest_labels(np.ones((1, 4)))[0][0][0] == "thing"
    _hammer(lambda: space.encode_snippets(np.zeros((1, 2, 8, 8, 3), np.uint8)))
    assert inner.most == 1
    inner.most = 0
    _hammer(lambda: space.encode_query(["a red thing"], None))
    assert inner.most == 1
    assert sum(batches) == 8  # every single query went through the batcher


def test_a_search_does_not_wait_for_the_vision_encoder():
    vision = threading.RLock()
    space = LockedSpace(CountingSpace(CFG), threading.RLock(), vision)
    done = threading.Event()
    with vision:  # an ingestion batch in progress
        t = threading.Thread(target=lambda: (space.encode_query(["x"], None), done.set()))
        t.start()
        t.join(10)
        assert done.is_set()


class FakeStore:
    """Answers like an IndexStore, and notes whether another thread could take the lock meanwhile."""

    def __init__(self, lock):
        self.lock, self.free_during_call = lock, []

    def _probe(self):
        out = []
        t = threading.Thread(target=lambda: out.append(self.lock.acquire(blocking=False)))
        t.start()
        t.join()
        if out[0]:
            self.lock.release()
        self.free_during_call.append(out[0])

    def search(self, queries, k):
        self._probe()
        return np.zeros((1, k), np.float32), np.zeros((1, k), np.int64)

    def add(self, ids, vectors):
        self._probe()


def test_index_calls_hold_the_lock_and_unknown_ones_do_not_pass_through():
    lock = threading.RLock()
    inner = FakeStore(lock)
    store = LockedStore(inner, lock)
    store.search(np.zeros((1, 4), np.float32), 3)
    store.add(np.zeros(1, np.int64), np.zeros((1, 4), np.float32))
    assert inner.free_during_call == [False, False]
    with pytest.raises(AttributeError):
        store.not_a_store_method()
