"""EfficientNet-Lite0 on ONNX Runtime: the lite space's vision encoder at decoding speed.

Through torch the bundled classifier runs at 27-43 images/s on 2 CPU cores; the same weights
exported to ONNX and run by ONNX Runtime, several times that (``benchmarks/lite_encoder.py``).
The graph is exported once, at first use, from the bundled weights with torch's TorchScript
exporter (``dynamo=False``: it works offline with torch 2.9), and cached in the space's cache
directory beside the label-prompt embeddings::

    <cache_dir>/lite-vision-<key>.onnx        the graph: uint8 (n, S, S, 3) crops -> (n, 1000) logits
    <cache_dir>/lite-vision-<key>.onnx.json   its SHA-256, the weights' SHA-256, torch's version

``key`` hashes the weights file, the crop size, the normalization and this module's export
format, so new weights (or a new graph layout) get a new file. A cached file is trusted only
if its checksum matches its sidecar and ONNX Runtime loads it and answers a probe with the
right shape; otherwise it is exported again. Normalization (``(x - mean) / std``) and the
NHWC -> NCHW transpose are inside the graph, so a batch goes in as decoded uint8 pixels.

``load_lite_vision`` picks the runtime: ``onnx`` (required), ``torch``, or ``auto`` (ONNX
Runtime where it is installed and the export works, torch otherwise, with the reason logged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from encoders.device import available_cores
from encoders.efficientnet import EfficientNetLite0, bundled_weights_path
from encoders.frames import center_crop
from encoders.identity import file_digest
from encoders.lite_int8 import PRECISIONS, float_path_of, int8_path, quantize_lite
from vidsonar.errors import MissingDependencyError, VidsonarError

log = logging.getLogger(__name__)

#: bump when the exported graph changes (inputs, wrapper, opset): old cache files are then ignored
EXPORT_FORMAT = 1
OPSET = 17
RUNTIMES = ("auto", "onnx", "torch")


class LiteExportError(VidsonarError):
    """The lite vision encoder could not be exported to (or loaded from) ONNX."""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()




def cache_path(cache_dir: Path, weights_sha: str, image_size: int, mean: float, std: float) -> Path:
    key = hashlib.sha256(f"{weights_sha}/{image_size}/{mean}/{std}/format{EXPORT_FORMAT}/opset{OPSET}"
                         .encode()).hexdigest()[:16]
    return Path(cache_dir) / f"lite-vision-{key}.onnx"


def export_lite(weights: Path, path: Path, image_size: int, mean: float, std: float) -> None:
    """Export the torch classifier with uint8 NHWC input; written atomically with its sidecar."""
    import torch

    net = EfficientNetLite0(image_size, mean, std, weights_path=weights)

    class Pixels(torch.nn.Module):
        """Decoded crops in, logits out: the same arithmetic as ``EfficientNetLite0.logits``."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, crops):
            x = crops.permute(0, 3, 1, 2).float()
            return self.model((x - mean) / std)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    example = torch.zeros(2, image_size, image_size, 3, dtype=torch.uint8)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
            torch.onnx.export(Pixels(net.model).eval(), (example,), str(tmp), dynamo=False,
                              input_names=["crops"], output_names=["logits"], opset_version=OPSET,
                              dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}})
        import onnx
        onnx.checker.check_model(str(tmp))
        meta = {"sha256": file_sha256(tmp), "weights_sha256": file_sha256(weights), "torch": torch.__version__,
                "onnx": onnx.__version__, "opset": OPSET, "format": EXPORT_FORMAT, "image_size": image_size,
                "mean": mean, "std": std}
        tmp.replace(path)  # the graph first: a sidecar never vouches for a file that is not there
        write_sidecar(path, meta)
    finally:
        tmp.unlink(missing_ok=True)


def write_sidecar(path: Path, meta: dict) -> None:
    """``path``'s sidecar (``<path>.json``, which ``verified`` reads), written atomically."""
    tmp = path.with_name(f"{path.name}.json.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        tmp.replace(path.with_name(path.name + ".json"))
    finally:
        tmp.unlink(missing_ok=True)


def verified(path: Path) -> bool:
    """Whether ``path`` exists and matches the checksum its sidecar recorded at export."""
    sidecar = path.with_name(path.name + ".json")
    try:
        meta = json.loads(sidecar.read_text())
        return path.is_file() and meta.get("sha256") == file_sha256(path)
    except (OSError, ValueError, AttributeError):
        return False


class OnnxLite0:
    """EfficientNet-Lite0 logits from an ONNX Runtime session; the interface of ``EfficientNetLite0``."""

    def __init__(self, model_path: Path, image_size: int = 224, threads: int | None = None,
                 precision: str = "fp32"):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "the lite space's ONNX vision encoder") from exc
        self.image_size = image_size
        self.model_path = Path(model_path)
        self.threads = threads or available_cores()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads  # one batch at a time: all cores inside each operator
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # no busy-waiting between operators: the decoders share these cores, and in a 2-core
        # ingest the spinning pool took 15% more CPU for the same batches (and slowed the run)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.precision = precision
        self.runtime = f"onnxruntime {ort.__version__} {precision} ({self.threads} threads)"
        # for the space's summary: every thread count's session is this one's variant
        self.variant = f"{precision}, onnxruntime {ort.__version__}"
        probe = self.run(np.zeros((1, image_size, image_size, 3), np.uint8))
        if probe.shape != (1, 1000) or not np.isfinite(probe).all():
            raise LiteExportError(f"{self.model_path} answers a probe with shape {probe.shape}, not (1, 1000)")

    @property
    def files(self) -> list[Path]:
        """What ``load`` reads to make this session again: the graph and its sidecar, and for
        the int8 graph the float one it was made from, with its sidecar (``_cached_int8``
        checks both)."""
        graphs = [self.model_path] + ([float_path_of(self.model_path)] if self.precision == "int8" else [])
        return [f for g in graphs for f in (g, g.with_name(g.name + ".json"))]

    def run(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(crops, np.uint8)})[0]

    def with_threads(self, threads: int | None) -> "OnnxLite0":
        """A session of the same graph on ``threads`` cores (None: all of them).

        The graph was checked when this session was made, so only a session is built (well
        under a second). Its outputs were bit-identical to this one's here, for 1 and 2 threads
        and both precisions (``tests/test_lite_int8.py`` asserts it for int8), so callers may switch
        between the two from batch to batch."""
        threads = threads or available_cores()
        return self if threads == self.threads else type(self)(self.model_path, self.image_size, threads,
                                                               self.precision)

    def logits(self, frames: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """(n, H, W, 3) uint8 frames, short side >= image_size -> (n, 1000) logits."""
        crops = center_crop(frames, self.image_size)
        out = [self.run(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)

    @classmethod
    def load(cls, cache_dir: str | Path, image_size: int = 224, mean: float = 127.0, std: float = 128.0,
             weights: str | Path | None = None, threads: int | None = None,
             precision: str = "fp32") -> "OnnxLite0":
        """The cached graph for these weights, exported first if it is missing, damaged or stale;
        with ``precision="int8"``, its quantized copy (``encoders.lite_int8``), made the same way,
        or the float graph with a warning where quantizing fails."""
        if precision not in PRECISIONS:
            raise ValueError(f"unknown lite vision precision {precision!r}; known: {', '.join(PRECISIONS)}")
        try:
            import onnxruntime  # noqa: F401  (fail before spending seconds on an export)
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "the lite space's ONNX vision encoder") from exc
        weights = Path(weights) if weights else bundled_weights_path()
        # file_digest: the same SHA-256, cached, so the run's identity check (which hashes these
        # weights too, encoders.identity) and this load read the 18 MB once
        path = cache_path(Path(cache_dir).expanduser(), file_digest(weights), image_size, mean, std)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            from filelock import FileLock
            lock = FileLock(str(path) + ".lock")
            lock.acquire()  # two processes starting together export once
        except OSError as exc:
            raise LiteExportError(f"cannot use {path.parent} as the ONNX cache: {exc}") from exc
        try:
            if precision == "int8":  # the usual case: both graphs cached, only the int8 one loaded
                session = cls._cached_int8(path, image_size, threads)
                if session is not None:
                    return session
            session = cls._cached(path, image_size, threads, "fp32")
            if session is None:
                try:
                    export_lite(weights, path, image_size, mean, std)
                    session = cls(path, image_size, threads)
                except (MissingDependencyError, LiteExportError):
                    raise
                except Exception as exc:  # the exporter raises many kinds; the caller decides on a fallback
                    raise LiteExportError(f"cannot export EfficientNet-Lite0 ({weights}) to ONNX: "
                                          f"{type(exc).__name__}: {exc}") from exc
            return session if precision == "fp32" else cls._int8(session, threads)
        finally:
            lock.release()

    @classmethod
    def _cached(cls, path: Path, image_size: int, threads: int | None, precision: str) -> "OnnxLite0 | None":
        """The session of a cached graph that checks out and loads; None (and the file gone) otherwise."""
        if verified(path):
            try:
                return cls(path, image_size, threads, precision)
            except Exception as exc:  # a file that checks out but does not load is not trusted either
                log.warning("cached lite ONNX graph %s does not load (%s); making it again", path, exc)
        elif path.exists():
            log.warning("cached lite ONNX graph %s fails its checksum; making it again", path)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".json").unlink(missing_ok=True)
        return None

    @classmethod
    def _cached_int8(cls, float_path: Path, image_size: int, threads: int | None) -> "OnnxLite0 | None":
        """The cached int8 session, if it was made from the float graph cached now (both checked
        against their sidecars): the float graph is then not loaded at all. None otherwise."""
        path = int8_path(float_path)
        try:
            made_from = json.loads(path.with_name(path.name + ".json").read_text()).get("float_sha256")
            float_sha = json.loads(float_path.with_name(float_path.name + ".json").read_text()).get("sha256")
        except (OSError, ValueError, AttributeError):
            return None
        if made_from is None or made_from != float_sha or not verified(float_path):
            return None
        return cls._cached(path, image_size, threads, "int8")

    @classmethod
    def _int8(cls, float_session: "OnnxLite0", threads: int | None) -> "OnnxLite0":
        """The int8 copy of ``float_session``'s graph (made once, cached beside it), or the float
        session itself, with the reason logged, where quantizing fails."""
        float_path, size = float_session.model_path, float_session.image_size
        path = int8_path(float_path)
        session = cls._cached(path, size, threads, "int8")
        if session is not None:
            return session
        try:
            meta = quantize_lite(float_path, path, size)
            write_sidecar(path, {**meta, "sha256": file_sha256(path), "float_sha256": file_sha256(float_path)})
            return cls(path, size, threads, "int8")
        except Exception as exc:  # noqa: BLE001 - the float graph is a correct, slower answer
            path.unlink(missing_ok=True)
            log.warning("lite vision encoder runs in float (about 2x slower): int8 failed: %s", exc)
            return float_session


def load_lite_vision(cache_dir: str | Path, image_size: int = 224, mean: float = 127.0, std: float = 128.0,
                     runtime: str = "auto", threads: int | None = None, weights: str | Path | None = None,
                     precision: str = "int8"):
    """The lite vision encoder on ``runtime``: ``onnx``, ``torch`` or ``auto`` (ONNX, else torch);
    on ONNX Runtime in ``precision`` (``int8`` or ``fp32``; torch is always float)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown lite vision runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    if runtime != "torch":
        try:
            return OnnxLite0.load(cache_dir, image_size, mean, std, weights=weights, threads=threads,
                                  precision=precision)
        except (MissingDependencyError, LiteExportError) as exc:
            if runtime == "onnx":
                raise
            log.warning("lite vision encoder runs on torch (several times slower): %s", exc)
    return EfficientNetLite0(image_size, mean, std, weights_path=weights)
