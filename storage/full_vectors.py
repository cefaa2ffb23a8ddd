"""Full-precision copies of the indexed vectors, float16 on disk, for the exact rerank.

PQ codes of 64 bytes rank 1024-d vectors poorly; reranking the best ``k * k_factor`` PQ
candidates with the real vectors wins the recall back. Those vectors (2 KiB each at 1024-d
in float16) stay in a memory-mapped file: a query touches ``k * k_factor`` rows, so the RAM
cost is the OS page cache of rows actually read, not the whole file. (FAISS's own refine
index, ``...,Refine(SQfp16)``, does the same in RAM but cannot remove vectors; see the ANN
benchmark for both measured.)

Rows are append-only. The FAISS index stores *row numbers* as its labels, so the rerank
reads rows directly; ``ids[row]`` is the snippet id, -1 once removed. Files, per generation
(a rebuild starts a new one, so the old files stay valid until the manifest moves on)::

    vectors-<gen>.f16   rows x dim float16, appended in place
    ids-<gen>.i64       rows int64 snippet ids, rewritten atomically on save
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from storage.atomic import atomic_write
from vidsonar.errors import CorruptIndexError


class FullVectors:
    """Append-only float16 vectors with their ids, in memory until ``attach``-ed to a directory."""

    def __init__(self, dim: int, directory: Path | None = None, generation: str = "0",
                 rows: int = 0, read_only: bool = False, tidy: bool = True):
        """``read_only``: no rows may be added (a memory-mapped index); ``tidy=False``: the
        files are left as found (a read-only folder), even rows past the manifest's."""
        self.dim, self.generation, self.read_only, self.tidy = dim, generation, read_only, tidy
        self.directory = Path(directory) if directory is not None else None
        self._chunks: list[np.ndarray] = []  # rows not yet on disk
        self._map: np.ndarray | None = None
        self._disk_rows = 0
        self.ids = np.zeros(0, np.int64)
        self._sq = None
        # A generation some manifest names may be mapped by other processes: rows appended to
        # it reach the file only in save(), which IndexStore calls under the index lock.
        self.published = False
        if self.directory is not None and rows:
            self._open(rows)

    # --- files --------------------------------------------------------------------------
    @property
    def vectors_path(self) -> Path:
        return self.directory / f"vectors-{self.generation}.f16"

    @property
    def ids_path(self) -> Path:
        return self.directory / f"ids-{self.generation}.i64"

    def _open(self, rows: int) -> None:
        row_bytes = 2 * self.dim
        try:
            size = self.vectors_path.stat().st_size
            ids = np.fromfile(self.ids_path, dtype=np.int64)
        except OSError as exc:
            raise CorruptIndexError(f"full vectors for the rerank are missing ({exc}); "
                                    "rebuild with `vidsonar reindex`") from exc
        if size < rows * row_bytes or len(ids) != rows:
            raise CorruptIndexError(
                f"{self.vectors_path} holds {size // row_bytes} rows and {len(ids)} ids, the "
                f"manifest says {rows}; rebuild with `vidsonar reindex`")
        if size > rows * row_bytes and not self.read_only and self.tidy:
            # rows appended after the last save belong to no saved index: drop them
            os.truncate(self.vectors_path, rows * row_bytes)
        self.ids, self._disk_rows, self.published = ids, rows, True
        self._map = np.memmap(self.vectors_path, dtype=np.float16, mode="r", shape=(rows, self.dim))

    def attach(self, directory: Path, generation: str) -> None:
        """Give in-memory rows a home on disk (the first save of a freshly built index)."""
        self.directory, self.generation = Path(directory), generation
        self.directory.mkdir(parents=True, exist_ok=True)
        self.vectors_path.write_bytes(b"")
        self._disk_rows, self._map = 0, None

    # --- rows ---------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return len(self.ids)

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Store vectors; return their row numbers (the labels to give FAISS)."""
        if self.read_only:
            raise RuntimeError("full vectors were opened read-only")
        start = self.rows
        self._chunks.append(np.asarray(vectors, np.float16).reshape(-1, self.dim))
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        if self.directory is not None and not self.published and \
                self.rows - self._disk_rows >= 65_536:
            self.flush()  # a private generation (a rebuild): spill to disk as it grows
        return np.arange(start, self.rows, dtype=np.int64)

    def rows_in_range(self, lo: int, hi: int) -> np.ndarray:
        """Live rows whose snippet id is in [lo, hi)."""
        return np.flatnonzero((self.ids >= lo) & (self.ids < hi)).astype(np.int64)

    def forget(self, rows: np.ndarray) -> None:
        """Mark rows removed; their bytes stay until the next rebuild compacts them."""
        self.ids = self.ids.copy() if not self.ids.flags.writeable else self.ids
        self.ids[rows] = -1

    def get(self, rows: np.ndarray) -> np.ndarray:
        """float32 vectors of ``rows`` (any shape); negative rows give zero vectors."""
        flat = np.asarray(rows, np.int64).ravel()
        missing = flat < 0
        safe = np.where(missing, 0, flat) if missing.any() else flat
        if not self._chunks:  # the common case: every row is in the mapped file
            out = self._decode(self._map[safe])
        else:
            out = np.empty((len(flat), self.dim), np.float32)
            on_disk = safe < self._disk_rows
            if on_disk.any():
                out[on_disk] = self._map[safe[on_disk]]
            if (~on_disk).any():
                out[~on_disk] = self._in_memory()[safe[~on_disk] - self._disk_rows]
        if missing.any():
            out[missing] = 0.0
        return out.reshape(*np.shape(rows), self.dim)

    def _decode(self, half: np.ndarray) -> np.ndarray:
        """float16 -> float32 with FAISS's SIMD decoder: twice as fast as numpy's astype."""
        if self._sq is None:
            import faiss
            self._sq = faiss.ScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16)
        return self._sq.decode(np.ascontiguousarray(half).view(np.uint8))

    def _in_memory(self) -> np.ndarray:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks) if self._chunks
                            else np.zeros((0, self.dim), np.float16)]
        return self._chunks[0]

    # --- persistence --------------------------------------------------------------------
    def flush(self) -> None:
        """Append in-memory rows to the vectors file and fsync it."""
        if self.directory is None or self.rows == self._disk_rows:
            return
        with open(self.vectors_path, "ab") as f:
            f.truncate(self._disk_rows * 2 * self.dim)  # drop rows of a crashed session
            for chunk in self._chunks:
                f.write(chunk.tobytes())
            f.flush()
            os.fsync(f.fileno())
        self._disk_rows, self._chunks = self.rows, []
        self._map = np.memmap(self.vectors_path, dtype=np.float16, mode="r",
                              shape=(self._disk_rows, self.dim))

    def save(self) -> None:
        """Flush vectors, then write the ids atomically; the manifest written after seals both."""
        self.flush()
        atomic_write(self.ids_path, lambda tmp: self.ids.tofile(tmp))
        self.published = True

    def files(self) -> list[Path]:
        return [self.vectors_path, self.ids_path] if self.directory is not None else []
