"""Where a model runs: the device and number format a space or trainer asks for."""

from __future__ import annotations

import os


def pick_device(device: str | None = "auto"):
    import torch
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str | None, device):
    """float16 on GPU (SONAR was trained in fp16), float32 on CPU unless told otherwise."""
    import torch
    if dtype in (None, "", "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
            "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[dtype]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _BlasLimit:
    """One process-wide limit of one BLAS thread, shared by its users (see ``one_blas_thread``)."""

    def __init__(self):
        import threading
        self.lock = threading.Lock()
        self.users = 0
        self.controller = None
        self.limiter = None

    def acquire(self) -> None:
        with self.lock:
            if self.users == 0:
                if self.controller is None:
                    from threadpoolctl import ThreadpoolController
                    self.controller = ThreadpoolController()  # finds the loaded BLAS libraries, once
                self.limiter = self.controller.limit(limits=1, user_api="blas")
            self.users += 1

    def release(self) -> None:
        with self.lock:
            if self.users == 0:
                raise RuntimeError("one_blas_thread released more often than acquired")
            self.users -= 1
            if self.users == 0:
                self.limiter.restore_original_limits()
                self.limiter = None

    @property
    def held(self) -> bool:
        return self.users > 0

    def __enter__(self) -> "_BlasLimit":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


_ONE_BLAS_THREAD = _BlasLimit()


def one_blas_thread() -> _BlasLimit:
    """numpy's BLAS on one thread, process-wide, while anyone holds it: for an ingestion run.

    The products in an encoder's path are small (lite's label bridge: 32 x 1000 @ 1000 x 384,
    a fraction of a millisecond), and OpenBLAS's workers busy-wait about 0.1 s after each
    threaded call (and after their count is set back): in a 2-core ingest they burned about
    1 core-second of the 5-6 a run took, on the decoder's core. So the runners hold this for a
    whole run, not per call. Nested and concurrent holders share one limit, and the last to
    release restores the libraries' own counts; a search running meanwhile gets one BLAS
    thread too. (numpy's OpenBLAS keeps one count for the process; in an OpenMP build, such as
    faiss's, the count is per thread, so there only the holder's thread is limited.)
    """
    return _ONE_BLAS_THREAD
