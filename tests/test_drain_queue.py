"""The overlapped runner's queue: decoders that find it full wait for a drain, and the encoder
knows when no decoder is at work (it then takes every core)."""

from __future__ import annotations

import threading

import pytest

from indexer.runners.local import DrainQueue, _Stop


def wait_until(cond, q: DrainQueue) -> None:
    """Block until ``cond()`` holds; every change to the queue notifies its condition."""
    with q.cond:
        assert q.cond.wait_for(cond, timeout=10), "the queue never reached the expected state"


def test_a_full_queue_makes_its_producer_wait_for_the_drain_and_the_wide_stretch():
    stop = threading.Event()
    q = DrainQueue(depth=4, low=1, producers=1, stop=stop)
    for i in range(4):
        q.put(i)
    assert q.producing() == 1
    fifth = threading.Thread(target=q.put, args=(4,))
    fifth.start()
    wait_until(lambda: q.waiting == 1, q)
    assert q.producing() == 0  # waiting for a drain: the encoder may take its core
    assert [q.get(), q.get()] == [0, 1] and q.waiting == 1  # 2 left: above low, still waiting
    q.set_wide(True)  # a batch runs on the producer's core
    assert q.get() == 2
    fifth.join(0.2)
    assert fifth.is_alive() and q.producing() == 0  # drained to low, but the wide batch runs
    q.set_wide(False)
    fifth.join(10)
    assert not fifth.is_alive() and q.producing() == 1
    assert [q.get(), q.get()] == [3, 4]  # order kept


def test_finished_producers_do_not_count_and_the_last_one_is_told():
    q = DrainQueue(depth=8, low=2, producers=2, stop=threading.Event())
    assert q.producing() == 2
    assert q.finished() is False and q.producing() == 1
    assert q.finished() is True and q.producing() == 0


def test_stop_releases_a_waiting_producer_and_an_idle_consumer():
    stop = threading.Event()
    q = DrainQueue(depth=1, low=0, producers=1, stop=stop)
    q.put("x")
    errors: list[BaseException] = []

    def put_more():
        try:
            q.put("y")
        except _Stop as exc:
            errors.append(exc)

    t = threading.Thread(target=put_more)
    t.start()
    wait_until(lambda: q.waiting == 1, q)
    stop.set()
    t.join(10)
    assert not t.is_alive() and len(errors) == 1
    empty = DrainQueue(depth=2, low=0, producers=1, stop=stop)
    with pytest.raises(_Stop):
        empty.get()


def test_low_must_lie_below_depth():
    with pytest.raises(ValueError, match="low"):
        DrainQueue(depth=2, low=2, producers=1, stop=threading.Event())
