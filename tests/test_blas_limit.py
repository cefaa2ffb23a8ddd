"""one_blas_thread: numpy's BLAS on one thread while held, shared by nested holders, then restored."""

import threading

import numpy as np
import pytest

from encoders.device import _BlasLimit, one_blas_thread

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is in requirements.lock")


def _blas_threads() -> list[int]:
    """Thread counts of the process-wide BLAS libraries (numpy's). An OpenMP build's count (faiss
    brings one) is per calling thread in OpenMP, so another thread cannot see it."""
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas" and lib.get("threading_layer") != "openmp"]


@pytest.fixture
def two_blas_threads():
    """numpy's BLAS set to 2 threads (the libraries' own count on a 1-core runner would be 1)."""
    if not _blas_threads():
        pytest.skip("no BLAS library loaded by numpy here")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        yield


def test_held_means_one_thread_and_release_restores(two_blas_threads):
    limit = _BlasLimit()
    assert set(_blas_threads()) == {2}
    with limit:
        assert set(_blas_threads()) == {1}
        a = np.ones((64, 64), np.float32)
        assert float((a @ a)[0, 0]) == 64.0  # products still work under the limit
    assert set(_blas_threads()) == {2}


def test_nested_and_concurrent_holders_share_one_limit(two_blas_threads):
    limit = _BlasLimit()
    limit.acquire()
    inner_saw = []

    def other():
        with limit:
            inner_saw.append(_blas_threads())

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert set(inner_saw[0]) == {1}
    assert set(_blas_threads()) == {1}, "the other holder's release must not lift the limit"
    limit.release()
    assert set(_blas_threads()) == {2}
    assert not limit.held


def test_release_without_acquire_is_an_error():
    with pytest.raises(RuntimeError, match="released more often"):
        _BlasLimit().release()


def test_the_runners_share_the_process_limit():
    assert one_blas_thread() is one_blas_thread()
