"""The Milvus backend: one collection per concept space, through pymilvus's MilvusClient.

Schema: ``id`` INT64 primary key (the packed snippet id), ``vector`` FLOAT_VECTOR (inner
product on unit vectors = cosine), ``video_id`` INT64, ``start``/``end`` DOUBLE and ``tags``
ARRAY<VARCHAR>. Filters become expressions (``video_id in [...]``); a video is deleted by
that expression; ``group_by_field="video_id"`` gives one hit per video. Every request uses
Strong consistency, so a process reads its own writes at once.

The collection is one copy for every process (a server), so it is ``shared``: the seq it
reflects is kept in the collection's properties (``vidsonar.seq``), not in a local file.
Milvus Lite (a local path) is embedded in one process: it opens the ``.db`` exclusively, so
processes that share an archive need ``milvus-lite server`` or a Milvus deployment.

Limits respected here: topk <= 16,384 per search, requests <= 64 MB (adds are batched).
Adds are upserts, so an add that lands twice (a call pymilvus retried) leaves one row an id.
Every call is bounded in time and a server that cannot be reached, or refuses vidsonar, is
told as that (storage.backends.milvus_outage). A read-only archive refuses a Milvus Lite index:
Milvus Lite writes in its folder (its lock, index files) even to search.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager

import numpy as np

from storage.backends import IndexURL, VectorBackend, milvus_outage
from storage.backends.milvus_outage import call
from storage.ids import INDEX_BITS
from vidsonar.errors import IndexError_, InputError, MissingDependencyError, SpaceMismatchError

log = logging.getLogger(__name__)

MAX_TOPK = 16_384
MAX_REQUEST_BYTES = 48 * 1024 * 1024  # under Milvus's 64 MB gRPC limit, with room for framing
MAX_TAGS, MAX_TAG_LEN = 64, 200
LITE_INDEXES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW")
SERVER_INDEXES = LITE_INDEXES + ("IVF_PQ", "DISKANN", "GPU_IVF_FLAT", "GPU_IVF_PQ", "GPU_CAGRA")


def choose_milvus_index(count: int, dim: int, lite: bool, gpu: bool = False,
                        requested: str | None = None) -> tuple[str, dict]:
    """(index type, build params) for a collection expected to hold ``count`` vectors.

    Milvus Lite offers FLAT, IVF_FLAT, IVF_SQ8 and HNSW (no PQ): exact FLAT up to 200k, then
    IVF_SQ8 (a quarter of the bytes). A server adds IVF_PQ, DISKANN and, on a GPU build,
    GPU_IVF_PQ / GPU_CAGRA: HNSW up to 10M vectors in RAM, DISKANN (vectors on SSD) beyond,
    GPU_CAGRA where the deployment has GPUs. ``requested`` ($VIDSONAR_MILVUS_INDEX) overrides.
    """
    allowed = LITE_INDEXES if lite else SERVER_INDEXES
    if requested:
        kind = requested.strip().upper()
        if kind not in allowed:
            where = "Milvus Lite" if lite else "a Milvus server"
            raise InputError(f"index type {requested!r} is not offered by {where}; "
                             f"choose one of {', '.join(allowed)}")
    elif lite:
        kind = "FLAT" if count <= 200_000 else "IVF_SQ8"
    elif gpu:
        kind = "GPU_CAGRA"
    else:
        kind = "HNSW" if count <= 10_000_000 else "DISKANN"
    nlist = int(min(65_536, max(16, 4 * np.sqrt(max(count, 1)))))
    params = {"FLAT": {}, "IVF_FLAT": {"nlist": nlist}, "IVF_SQ8": {"nlist": nlist},
              "HNSW": {"M": 16, "efConstruction": 200},
              "IVF_PQ": {"nlist": nlist, "m": _pq_m(dim), "nbits": 8},
              "GPU_IVF_FLAT": {"nlist": nlist}, "GPU_IVF_PQ": {"nlist": nlist, "m": _pq_m(dim), "nbits": 8},
              "GPU_CAGRA": {"intermediate_graph_degree": 64, "graph_degree": 32},
              "DISKANN": {}}[kind]
    return kind, params


def search_params(kind: str, build: dict, k: int) -> dict:
    if kind == "HNSW":
        return {"ef": max(k, 64)}
    if kind.startswith("IVF") or kind.startswith("GPU_IVF"):
        return {"nprobe": max(8, min(build.get("nlist", 16), build.get("nlist", 16) // 8))}
    if kind == "DISKANN":
        return {"search_list": max(k, 100)}
    if kind == "GPU_CAGRA":
        return {"itopk_size": max(128, k)}
    return {}


def _pq_m(dim: int) -> int:
    for m in (64, 48, 32, 24, 16, 8):
        if dim % m == 0 and m <= dim // 8:  # sub-vectors of 8+ dims keep PQ codes useful
            return m
    return 8


def connect(url: IndexURL, read_only: bool = False):
    """A ``MilvusClient`` for ``url``: IndexUnreachableError or IndexRefusedError for a server
    that cannot be reached or refuses us, IndexError_ for Milvus Lite read-only or locked."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependencyError("pymilvus", "VIDSONAR_INDEX=milvus:... (vidsonar[milvus])") from exc
    milvus_outage.quiet_loggers()
    if url.lite and read_only:
        raise IndexError_(f"cannot open the Milvus Lite index {url.uri} of a read-only archive: "
                          "Milvus Lite writes in its folder (a lock file, index files) even to "
                          "search; serve that folder with `milvus-lite server --data-dir DIR` "
                          "where it can be written and use --index milvus:http://HOST:PORT, or "
                          "search a writable copy of the archive")
    if url.lite:
        os.makedirs(os.path.dirname(url.uri) or ".", exist_ok=True)
        with _lite_failures() as failures:
            try:
                return MilvusClient(uri=url.uri)
            except Exception as exc:  # pymilvus raises its own ConnectionConfigException
                raise _lite_error(url.uri, exc, failures) from exc
    timeout = milvus_outage.timeout_seconds()
    kwargs = {"uri": url.uri, "timeout": timeout}
    if url.token:
        kwargs["token"] = url.token
    try:
        return MilvusClient(**kwargs)
    except Exception as exc:
        told = milvus_outage.told(exc, url.redacted(), timeout)
        if told is not exc:
            raise told from exc
        raise IndexError_(f"cannot reach Milvus at {url.redacted()}: {exc}") from exc


@contextmanager
def _lite_failures():
    """The exceptions Milvus Lite logs while it opens a folder (it logs them and gives pymilvus
    only "Open local milvus failed"), kept from stderr and handed to the error we raise."""
    caught: list[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.exc_info and record.exc_info[1] is not None:
                caught.append(record.exc_info[1])
    logger = logging.getLogger("milvus_lite.server_manager")
    handler, saved = Keep(logging.ERROR), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    try:
        yield caught
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _lite_error(uri: str, exc: BaseException, failures: list[BaseException]) -> IndexError_:
    why = failures[-1] if failures else exc
    if type(why).__name__ == "DataDirLockedError":
        return IndexError_(f"cannot open Milvus Lite at {uri}: {why}. Milvus Lite is embedded in "
                           "one process; to share an archive between processes run `milvus-lite "
                           "server` or a Milvus server and use milvus:http://HOST:PORT")
    return IndexError_(f"cannot open Milvus Lite at {uri}: {type(why).__name__}: {why}")


class MilvusBackend(VectorBackend):
    name = "milvus"
    keeps_vectors = True
    shared = True

    def __init__(self, url: IndexURL, space: str, dim: int, collection: str | None = None,
                 read_only: bool = False):
        self.url, self.space, self.dim, self.read_only = url, space, dim, read_only
        self.collection = collection or "vidsonar_" + re.sub(r"[^A-Za-z0-9_]", "_", space)
        self.client = None
        self._seq = 0
        self._builds = 0
        self._kind, self._build = "", {}
        self._silence = milvus_outage.Silence()

    # --- calls --------------------------------------------------------------------------
    def _rpc(self, method: str, *args, **kwargs):
        """One call of the client, bounded in time and its failures told (milvus_outage). A
        collection the server answers is not loaded (it restarted) is loaded, and the call
        made again."""
        if self.client is None:
            self.client = connect(self.url, self.read_only)
        shown, bounded = self.url.redacted(), not self.url.lite
        silence = self._silence if bounded else None
        try:
            return call(self.client, method, shown, *args, bounded=bounded, silence=silence, **kwargs)
        except Exception as exc:
            if method == "load_collection" or not milvus_outage.not_loaded(exc):
                raise
            log.warning("Milvus collection %s at %s was not loaded (the server restarted?): "
                        "loading it", self.collection, shown)
        call(self.client, "load_collection", shown, self.collection, bounded=bounded, silence=silence)
        return call(self.client, method, shown, *args, bounded=bounded, silence=silence, **kwargs)

    def ping(self) -> None:
        """IndexUnreachableError (or IndexRefusedError) unless the server answers now."""
        self._rpc("has_collection", self.collection)

    # --- state --------------------------------------------------------------------------
    def open(self) -> None:
        if not self._rpc("has_collection", self.collection):
            if self.read_only:
                raise IndexError_(f"no Milvus collection {self.collection!r} at "
                                  f"{self.url.redacted()}, and a read-only archive does not "
                                  "create one: ingest into a writable one first")
            self._create(0)
        desc = self._rpc("describe_collection", self.collection)
        dims = [f.get("params", {}).get("dim") for f in desc["fields"] if f["name"] == "vector"]
        if dims and int(dims[0]) != self.dim:
            raise SpaceMismatchError(
                f"the Milvus collection {self.collection!r} at {self.url.redacted()} holds "
                f"{dims[0]}-d vectors, and the {self.space!r} space makes {self.dim}-d ones: it "
                "was made for another space of that name; drop it (then `vidsonar reindex`), or "
                "point --index at another Milvus server or database")
        props = desc.get("properties") or {}
        self._seq = int(props.get("vidsonar.seq", 0))
        self._builds = int(props.get("vidsonar.builds", 0))
        info = self._rpc("describe_index", self.collection, "vector") or {}
        self._kind = str(info.get("index_type", "FLAT"))
        self._build = {k: v for k, v in (info.get("params") or {}).items()} if isinstance(
            info.get("params"), dict) else {}
        self._rpc("load_collection", self.collection)

    def _create(self, count: int) -> None:
        from pymilvus import DataType, MilvusClient
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("video_id", DataType.INT64)
        schema.add_field("start", DataType.DOUBLE)
        schema.add_field("end", DataType.DOUBLE)
        schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR,
                         max_capacity=MAX_TAGS, max_length=MAX_TAG_LEN)
        kind, build = choose_milvus_index(count, self.dim, self.url.lite,
                                          requested=os.environ.get("VIDSONAR_MILVUS_INDEX"))
        index = MilvusClient.prepare_index_params()
        index.add_index(field_name="vector", index_type=kind, metric_type="IP", params=build)
        self._rpc("create_collection", self.collection, schema=schema, index_params=index,
                  consistency_level="Strong")
        self._kind, self._build = kind, build
        log.info("created Milvus collection %s (%s %s) at %s", self.collection, kind, build,
                 self.url.redacted())

    def recreate(self, count: int) -> None:
        """Drop the collection and create it empty, its index type chosen for ``count``."""
        if self._rpc("has_collection", self.collection):
            self._rpc("drop_collection", self.collection)
        self._create(count)
        self._builds += 1
        self._seq = 0
        self._rpc("load_collection", self.collection)

    @property
    def manifest(self):
        """A FAISS-like manifest, so callers that show one need not care which backend."""
        from storage.vectors import Manifest
        return Manifest(factory=f"milvus:{self._kind}", space=self.space, dim=self.dim,
                        params=",".join(f"{k}={v}" for k, v in self._build.items()),
                        count=self.count, seq=self._seq, builds=self._builds)

    @property
    def count(self) -> int:
        res = self._rpc("query", self.collection, filter="", output_fields=["count(*)"],
                        consistency_level="Strong")
        return int(res[0]["count(*)"]) if res else 0

    @property
    def seq(self) -> int:
        return self._seq

    def set_seq(self, seq: int) -> None:
        self._seq = int(seq)

    def saved_seq(self) -> int | None:
        props = self._rpc("describe_collection", self.collection).get("properties") or {}
        return int(props["vidsonar.seq"]) if "vidsonar.seq" in props else None

    def save(self, seq: int) -> None:
        """Milvus persists every write itself; here only the seq (and the build count) move."""
        self._seq = int(seq)
        self._rpc(
            "alter_collection_properties", self.collection, properties={"vidsonar.seq": str(self._seq),
                                         "vidsonar.builds": str(self._builds)})

    # --- writing ------------------------------------------------------------------------
    def add(self, ids, vectors, start=None, end=None, tags=None) -> None:
        ids = np.asarray(ids, np.int64)
        if not len(ids):
            return
        vectors = np.ascontiguousarray(vectors, np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected ({len(ids)}, {self.dim}) vectors, got {vectors.shape}")
        start = np.zeros(len(ids)) if start is None else np.asarray(start, np.float64)
        end = np.zeros(len(ids)) if end is None else np.asarray(end, np.float64)
        tags = tags or {}
        videos = ids >> INDEX_BITS
        per_row = self.dim * 4 + 64 + 8 * MAX_TAGS
        batch = max(1, MAX_REQUEST_BYTES // per_row)
        for lo in range(0, len(ids), batch):
            hi = min(lo + batch, len(ids))
            rows = [{"id": int(ids[i]), "vector": vectors[i].tolist(), "video_id": int(videos[i]),
                     "start": float(start[i]), "end": float(end[i]),
                     "tags": [t[:MAX_TAG_LEN] for t in tags.get(int(videos[i]), [])][:MAX_TAGS]}
                    for i in range(lo, hi)]
            # upsert, not insert: a Milvus server keeps duplicate primary keys on insert, and
            # pymilvus retries a call cut off by a reconnect, which may have landed (replays are
            # safe either way: IndexStore._apply removes a video's rows before adding them)
            self._rpc("upsert", self.collection, rows)

    def remove_videos(self, video_ids) -> int:
        video_ids = [int(v) for v in video_ids]
        removed = 0
        for lo in range(0, len(video_ids), 10_000):
            chunk = video_ids[lo:lo + 10_000]
            res = self._rpc("delete", self.collection, filter=f"video_id in {chunk}")
            removed += _deleted(res)
        return removed

    # --- reading ------------------------------------------------------------------------
    def search(self, queries, k, *, videos=None, k_factor=None, per_video=False):
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        if k > MAX_TOPK:
            raise InputError(f"k={k} is more than Milvus returns in one search ({MAX_TOPK})")
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        expr = ""
        if videos is not None:
            videos = [int(v) for v in np.asarray(videos).ravel()]
            if not videos:
                return scores, ids
            expr = f"video_id in {videos}"
        kwargs = {"group_by_field": "video_id"} if per_video else {}
        per_query = max(1, MAX_REQUEST_BYTES // (self.dim * 4))
        for lo in range(0, len(queries), per_query):
            res = self._rpc(
                "search", self.collection, data=[q.tolist() for q in queries[lo:lo + per_query]], limit=k,
                filter=expr, output_fields=["video_id"], consistency_level="Strong",
                search_params={"metric_type": "IP", "params": search_params(self._kind, self._build, k)},
                **kwargs)
            for r, hits in enumerate(res, start=lo):
                for j, hit in enumerate(list(hits)[:k]):
                    ids[r, j], scores[r, j] = int(hit["id"]), float(hit["distance"])
        return scores, ids

    def vectors(self, ids):
        ids = np.asarray(ids, np.int64).ravel()
        got: dict[int, list[float]] = {}
        for lo in range(0, len(ids), MAX_TOPK):
            chunk = [int(i) for i in ids[lo:lo + MAX_TOPK]]
            for row in self._rpc("query", self.collection, ids=chunk, output_fields=["vector"],
                                 consistency_level="Strong"):
                got[int(row["id"])] = row["vector"]
        found = np.array([i for i in ids if int(i) in got], np.int64)
        if not len(found):
            return found, np.zeros((0, self.dim), np.float32)
        return found, np.array([got[int(i)] for i in found], np.float32)

    def describe(self) -> dict:
        return {"backend": "milvus", "uri": self.url.redacted(), "collection": self.collection,
                "deployment": "lite" if self.url.lite else "server", "index_type": self._kind,
                "index_params": self._build, "count": self.count, "dim": self.dim,
                "seq": self._seq, "builds": self._builds}

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            finally:
                self.client = None


def _deleted(res) -> int:
    if isinstance(res, dict):
        return int(res.get("delete_count", 0))
    try:
        return len(res)
    except TypeError:
        return 0
