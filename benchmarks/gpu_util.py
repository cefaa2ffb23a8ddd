"""GPU utilisation while a benchmark runs: sampled in a thread, summarized, or "not available".

    with GpuUtilSampler() as gpu:
        run_the_work()
    row["gpu"] = gpu.summary()   # {"available": True, "source": "pynvml", "mean_util_pct": ...}

Readings come from NVML through ``pynvml`` (the ``nvidia-ml-py`` package) where it imports
and finds a GPU, else from ``nvidia-smi --query-gpu`` every interval, else the summary says
why there is none (``{"available": False, "reason": ...}``). Utilisation is NVML's: the share
of time in the interval during which a kernel ran, which can read 100% for a GPU that is busy
but far from its peak; memory is the device's used memory, all processes together.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time


class GpuUtilSampler:
    def __init__(self, interval: float = 0.2, index: int = 0):
        self.interval, self.index = interval, index
        self.samples: list[tuple[float, float]] = []  # (utilisation %, memory used MiB)
        self.source, self.reason = None, None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read = self._pick_reader()

    def _pick_reader(self):
        try:
            import pynvml
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "pynvml"

            def read():
                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                return float(util.gpu), pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
            return read
        except Exception as exc:  # ImportError, or NVMLError without a driver or GPU
            nvml_reason = f"pynvml: {type(exc).__name__}: {exc}".rstrip(": ")
        smi = shutil.which("nvidia-smi")
        if smi is None:
            self.reason = f"no GPU utilisation reader ({nvml_reason}; nvidia-smi not on PATH)"
            return None
        query = [smi, f"--id={self.index}", "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits"]
        try:
            subprocess.run(query, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            self.reason = f"no GPU utilisation reader ({nvml_reason}; nvidia-smi failed: {exc})"
            return None
        self.source = "nvidia-smi"

        def read():
            out = subprocess.run(query, capture_output=True, text=True, timeout=10, check=True).stdout
            util, mem = out.strip().splitlines()[0].split(",")
            return float(util), float(mem)
        return read

    @property
    def available(self) -> bool:
        return self._read is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except Exception as exc:  # a reading that fails ends sampling, not the benchmark
                self.reason = f"sampling stopped: {type(exc).__name__}: {exc}"
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "GpuUtilSampler":
        self.started = time.perf_counter()
        if self.available:
            self._thread = threading.Thread(target=self._loop, name="gpu-util", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.seconds = time.perf_counter() - self.started

    def summary(self) -> dict:
        if not self.available or not self.samples:
            return {"available": False, "reason": self.reason or "no samples taken (the run was too short)"}
        util = [u for u, _ in self.samples]
        return {"available": True, "source": self.source, "samples": len(util),
                "interval_s": self.interval, "mean_util_pct": round(sum(util) / len(util), 1),
                "max_util_pct": round(max(util), 1),
                "max_memory_used_mib": round(max(m for _, m in self.samples), 1),
                **({"note": self.reason} if self.reason else {})}
