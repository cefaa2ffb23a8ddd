"""Feeding a vision tower on a GPU: uint8 pixels over pinned memory, bf16 autocast, big batches.

On a GPU the forward pass is cheap next to what surrounds it unless three things hold:

- frames cross the bus as uint8 (a quarter of float32's bytes), from page-locked ("pinned")
  host memory so the copy is asynchronous (``non_blocking``), and are converted and normalized
  on the GPU, where that costs nothing;
- matrix products run in bfloat16 (float16 where the GPU lacks bf16) under ``torch.autocast``:
  the weights stay float32, so results are comparable to the CPU's and LayerNorms stay exact;
- batches are large enough to fill the GPU (``default_batch_size``), and results stay on the
  GPU until the last batch, so the host never waits on each batch in turn.

On CPU nothing changes: float32, no autocast, the batch size the caller gives. Only torch and
numpy are needed (``benchmarks/gpu_check.py`` runs this on a bare GPU machine).
"""

from __future__ import annotations

import contextlib

import numpy as np

AUTOCAST_CHOICES = ("auto", "bf16", "fp16", "none")


def is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def autocast_dtype(device, mode: str | None = "auto"):
    """The torch dtype to autocast to on ``device`` for ``mode``, or None for plain float32."""
    import torch
    mode = (mode or "auto").lower()
    if mode not in AUTOCAST_CHOICES:
        raise ValueError(f"unknown autocast mode {mode!r}; known: {', '.join(AUTOCAST_CHOICES)}")
    if mode == "none" or not is_cuda(device):
        return None  # CPU autocast (bf16 on CPU) is slower than float32 on most CPUs
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device, mode: str | None = "auto"):
    """A context running matrix products in bf16/fp16 on CUDA; a no-op on CPU or with ``none``."""
    import torch
    dtype = autocast_dtype(device, mode)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def default_batch_size(device, image_size: int, cpu_batch: int = 32) -> int:
    """Frames per forward pass: ``cpu_batch`` on CPU; on CUDA sized to the pixels and the GPU.

    256 frames at 224-336 px, 128 at 448 px (bigG: about 2.5 GB of activations per layer
    at bf16), halved on GPUs under 24 GB; ``vision.batch_size`` in a space config overrides it.
    """
    if not is_cuda(device):
        return cpu_batch
    import torch
    batch = 256 if image_size <= 384 else 128
    try:
        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    except (RuntimeError, AssertionError):
        return batch
    return batch if total >= 24 * 2**30 else batch // 2


def to_device_pixels(crops: np.ndarray, device, mean, std):
    """(n, S, S, 3) uint8 crops -> (n, 3, S, S) float32 normalized tensor on ``device``.

    ``mean`` and ``std`` are tensors shaped (1, 3, 1, 1) on any device, in the [0, 1] scale.
    On CUDA the uint8 batch goes through pinned memory with a non-blocking copy.
    """
    import torch
    x = torch.from_numpy(np.ascontiguousarray(crops))
    if is_cuda(device):
        x = x.pin_memory().to(device, non_blocking=True)
    else:
        x = x.to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean.to(x.device)) / std.to(x.device)
