"""The systems the ANN benchmark compares, each behind one small adapter.

An adapter builds itself on the base vectors (``build``), reports its footprint
(``ram_bytes``, ``disk_bytes``) and yields its operating points: (setting, search function)
pairs, where a search function maps a (nq, d) float32 batch to (nq, k) int64 row numbers of
the base. Heavy packages (hnswlib, lancedb) are imported inside their adapters.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from storage.index_choice import ivf_pq_choice
from storage.vectors import VectorIndex

SearchFn = Callable[[np.ndarray, int], np.ndarray]


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _read_through(path: Path, chunk: int = 64 << 20) -> None:
    """Read a file once so it sits in the OS page cache, as on a server that has been
    answering queries a while: the rerank's latency is then CPU, not disk seeks. (A cold
    cache costs a random 2 KiB read per candidate; the CSV of a cold run shows it.)"""
    with open(path, "rb") as f:
        while f.read(chunk):
            pass


class System(ABC):
    """One system under test: build it on the base vectors, then search it in each setting."""
    name = ""

    def __init__(self, workdir: Path):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=workdir))
        self.ram_bytes = 0
        self.disk_bytes = 0

    @abstractmethod
    def build(self, base: np.ndarray) -> None: ...

    @abstractmethod
    def settings(self) -> Iterator[tuple[str, SearchFn]]: ...

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class Vidsonar(System):
    """What ``choose_index`` picks for the collection (IVF-PQ), with and without the rerank."""
    name = "vidsonar"

    def __init__(self, workdir: Path, nprobes: tuple[int, ...], k_factors: tuple[int, ...]):
        super().__init__(workdir)
        self.nprobes, self.k_factors = nprobes, k_factors

    def build(self, base: np.ndarray) -> None:
        n, d = base.shape
        self.choice = ivf_pq_choice(n, d)
        self.index = VectorIndex.create(self.choice.factory, d, "bench", self.choice.params,
                                        self.choice.k_factor, directory=self.workdir)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n, size=min(n, self.choice.train_size), replace=False))
        self.index.train(base[sample])
        for start in range(0, n, 50_000):
            self.index.add(np.arange(start, min(start + 50_000, n)), base[start:start + 50_000])
        self.index.save(self.workdir)
        files = self.index.full.files()
        index_file = self.workdir / "index.faiss"
        # resident: the FAISS index plus the row -> id array; the float16 rows stay on disk
        self.ram_bytes = index_file.stat().st_size + self.index.full.ids.nbytes
        self.disk_bytes = index_file.stat().st_size + sum(f.stat().st_size for f in files)
        self.index = VectorIndex.load(self.workdir, mmap=None)  # as IndexStore opens it
        _read_through(self.index.full.vectors_path)

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        default = int(self.choice.params.split("nprobe=")[1].split(",")[0])
        for nprobe in self.nprobes:
            self.index.set_params(f"nprobe={nprobe}")
            yield f"{self.choice.factory} nprobe={nprobe} pq-only", \
                lambda q, k: self.index.search(q, k, rerank=False)[1]
            yield f"{self.choice.factory} nprobe={nprobe} rerank=x{self.choice.k_factor}", \
                lambda q, k: self.index.search(q, k)[1]
        self.index.set_params(f"nprobe={default}")
        for kf in self.k_factors:
            if kf == self.choice.k_factor:
                continue
            def search(q, k, kf=kf):
                return self.index.search(q, k, k_factor=kf)[1]
            yield f"{self.choice.factory} nprobe={default} rerank=x{kf}", search


class FaissRefine(System):
    """FAISS's own answer to the same need: the same IVF-PQ wrapped in Refine(SQfp16), in RAM."""
    name = "faiss-refine"

    def __init__(self, workdir: Path, vidsonar: Vidsonar, nprobes: tuple[int, ...]):
        super().__init__(workdir)
        self.vidsonar, self.nprobes = vidsonar, nprobes

    def build(self, base: np.ndarray) -> None:
        import faiss
        d = base.shape[1]
        # the vidsonar index's labels are rows 0..n-1 in order, as IndexRefine needs
        ivf = faiss.read_index(str(self.vidsonar.workdir / "index.faiss"))
        self.sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for start in range(0, len(base), 100_000):
            self.sq.add(base[start:start + 100_000])
        self.index = faiss.IndexRefine(ivf, self.sq)
        self.ivf, self.k_factor = ivf, self.vidsonar.choice.k_factor
        self.index.k_factor = self.k_factor
        self.ram_bytes = len(faiss.serialize_index(ivf)) + self.sq.sa_code_size() * self.sq.ntotal
        self.disk_bytes = self.ram_bytes

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        import faiss
        for nprobe in self.nprobes:
            faiss.extract_index_ivf(self.ivf).nprobe = nprobe
            yield f"{self.vidsonar.choice.factory},Refine(SQfp16) nprobe={nprobe} k_factor={self.k_factor}", \
                lambda q, k: self.index.search(q, k)[1]


class Flat(System):
    """Exact search: the limit every other system is measured against."""
    name = "faiss-flat"

    def build(self, base: np.ndarray) -> None:
        import faiss
        self.index = faiss.IndexFlatIP(base.shape[1])
        for start in range(0, len(base), 100_000):
            self.index.add(base[start:start + 100_000])
        self.ram_bytes = self.disk_bytes = 4 * base.size

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        yield "Flat", lambda q, k: self.index.search(q, k)[1]


class FaissHNSW(System):
    name = "faiss-hnsw32"

    def __init__(self, workdir: Path, efs: tuple[int, ...]):
        super().__init__(workdir)
        self.efs = efs

    def build(self, base: np.ndarray) -> None:
        import faiss
        self.index = faiss.index_factory(base.shape[1], "HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 40
        for start in range(0, len(base), 100_000):
            self.index.add(base[start:start + 100_000])
        self.ram_bytes = self.disk_bytes = len(faiss.serialize_index(self.index))

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        for ef in self.efs:
            self.index.hnsw.efSearch = ef
            yield f"HNSW32 efC=40 efSearch={ef}", lambda q, k: self.index.search(q, k)[1]


class Hnswlib(System):
    name = "hnswlib"

    def __init__(self, workdir: Path, efs: tuple[int, ...]):
        super().__init__(workdir)
        self.efs = efs

    def build(self, base: np.ndarray) -> None:
        import hnswlib
        n, d = base.shape
        self.index = hnswlib.Index(space="ip", dim=d)
        self.index.init_index(max_elements=n, M=16, ef_construction=100, random_seed=0)
        self.index.set_num_threads(os.cpu_count() or 1)
        for start in range(0, n, 100_000):
            self.index.add_items(base[start:start + 100_000], np.arange(start, min(start + 100_000, n)))
        path = self.workdir / "hnswlib.bin"
        self.index.save_index(str(path))
        self.ram_bytes = self.disk_bytes = path.stat().st_size

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        for ef in self.efs:
            self.index.set_ef(ef)
            def search(q, k):
                labels, _ = self.index.knn_query(q, k=k)
                return labels.astype(np.int64)
            yield f"M=16 efC=100 ef={ef}", search


class Lance(System):
    """LanceDB's IVF_PQ with the same nlist and M, with and without its own refine."""
    name = "lancedb"

    def __init__(self, workdir: Path, nprobes: tuple[int, ...], nlist: int, m: int, k_factor: int):
        super().__init__(workdir)
        self.nprobes, self.nlist, self.m, self.k_factor = nprobes, nlist, m, k_factor

    def build(self, base: np.ndarray) -> None:
        os.environ.setdefault("LANCE_LOG", "error")  # one deprecation warning per query otherwise
        import lancedb
        import pyarrow as pa
        from lancedb.index import IvfPq
        n, d = base.shape
        db = lancedb.connect(str(self.workdir))
        def batches():
            for start in range(0, n, 100_000):
                part = np.ascontiguousarray(base[start:start + 100_000])
                yield pa.record_batch({
                    "id": pa.array(np.arange(start, start + len(part))),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), d)})
        schema = pa.schema({"id": pa.int64(), "vector": pa.list_(pa.float32(), d)})
        self.table = db.create_table("vectors", data=batches(), schema=schema)
        self.table.create_index("vector", config=IvfPq(distance_type="dot", num_partitions=self.nlist,
                                                       num_sub_vectors=self.m))
        self.disk_bytes = _dir_bytes(self.workdir)
        index_dirs = list(self.workdir.rglob("_indices"))
        # LanceDB caches the IVF_PQ index in RAM and reads raw vectors from disk to refine
        self.ram_bytes = sum(_dir_bytes(p) for p in index_dirs)

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        for nprobe in self.nprobes:
            for refine in (None, self.k_factor):
                def search(q, k, nprobe=nprobe, refine=refine):
                    out = np.full((len(q), k), -1, np.int64)
                    for i, vector in enumerate(q):
                        query = self.table.search(vector).distance_type("dot").nprobes(nprobe).limit(k)
                        if refine:
                            query = query.refine_factor(refine)
                        ids = query.select(["id"]).to_arrow()["id"].to_numpy()
                        out[i, :len(ids)] = ids
                    return out
                yield f"IVF{self.nlist},PQ{self.m} nprobes={nprobe} refine={refine or 'none'}", search


class MilvusLite(System):
    """vidsonar's Milvus backend on Milvus Lite (embedded, pure Python): the code path of a
    Milvus deployment, at Lite's speed. One row per index type Lite offers."""
    name = "milvus-lite"

    def __init__(self, workdir: Path, kinds: tuple[str, ...] = ("FLAT", "IVF_SQ8", "HNSW")):
        super().__init__(workdir)
        self.kinds = kinds

    def build(self, base: np.ndarray) -> None:
        import time

        from storage.backends import parse_index_url
        from storage.backends.milvus_backend import MilvusBackend
        self.base, self.backends, self.build_s = base, {}, {}
        n, d = base.shape
        for kind in self.kinds:
            os.environ["VIDSONAR_MILVUS_INDEX"] = kind
            try:
                started = time.perf_counter()
                backend = MilvusBackend(parse_index_url(f"milvus:{self.workdir / kind}.db"), "bench", d)
                backend.open()
                for start in range(0, n, 20_000):
                    part = np.ascontiguousarray(base[start:start + 20_000], np.float32)
                    # video 1's snippets 0..n-1 in order: ids are rows, like the other systems
                    backend.add((1 << 20) + np.arange(start, start + len(part)), part)
                backend.client.flush(backend.collection)
                backend.count  # noqa: B018 - waits for the index to take every row
                self.build_s[kind] = time.perf_counter() - started
                self.backends[kind] = backend
            finally:
                os.environ.pop("VIDSONAR_MILVUS_INDEX", None)
        self.ram_bytes = self.disk_bytes = _dir_bytes(self.workdir) / max(len(self.kinds), 1)

    def settings(self) -> Iterator[tuple[str, SearchFn]]:
        for kind, backend in self.backends.items():
            def search(q, k, backend=backend):
                ids = backend.search(q, k)[1]
                return np.where(ids >= 0, ids - (1 << 20), -1)
            yield f"{kind} ({self.build_s[kind]:.0f} s to load)", search

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()
        super().close()
