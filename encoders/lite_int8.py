"""EfficientNet-Lite0 in int8: the lite vision graph quantized by ONNX Runtime, once, at first use.

EfficientNet-Lite was designed to be quantized (ReLU6 instead of swish, no squeeze-excite), and
on CPUs with int8 dot products (AVX512-VNNI, AVX-VNNI, ARM dotprod) ONNX Runtime runs the int8
graph about twice as fast as the float one (``benchmarks/lite_encoder.py``).

Recipe (``QUANT_RECIPE``; a change gives new cache files):

- static QDQ quantization, int8 weights per output channel, uint8 activations;
- activation ranges from the minimum and maximum seen in a calibration pass (ReLU6 bounds
  most of them anyway; a percentile calibration agreed on 2% more top-1 classes on the sample
  photos but took 130 s instead of about 10 s at first use);
- the classifier (logits out) stays float; the stem convolution is quantized apart, on the raw
  pixels (``stem_on_raw_pixels``): the normalized input (u - 127) / 128 of a uint8 pixel u is
  exactly a uint8 tensor of scale 1/128 and zero point 127, so the stem reads the pixels with no
  rounding at all (a calibrated input range would round them, which is why recipe 1 kept it
  float), and only its 864 weights are rounded, per channel. That removes the float island at
  the input (cast, normalize, float convolution, layout reorder, quantize: ~20% of the time);
- calibration images: real photos that ship in installed packages and that neither the sample
  footage nor the benchmarks show (``calibration_images``), as shifted and mirrored crops, so
  the figures measured on that footage are not in-sample.

Measured against the float graph on 24 crops of the sample footage's photos: the same top-1
class on 96% of them, class probabilities at cosine 0.9935 on average, 0.971 at worst (recipe 1,
float stem: 96%, 0.9944, 0.979), so the int8 stem costs next to nothing in agreement
(``tests/test_lite_int8.py`` holds a bound).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vidsonar.errors import MissingDependencyError

log = logging.getLogger(__name__)

#: bump when the quantization recipe or the calibration set changes
QUANT_RECIPE = 2
PRECISIONS = ("int8", "fp32")
#: layers of the exported graph (node names set by the TorchScript exporter) that the
#: calibrated quantizer leaves float; the stem is then quantized on the raw pixels
STEM = "/model/_conv_stem/Conv"
FLOAT_NODES = (STEM, "/model/_fc/Gemm")
CROPS_PER_IMAGE = 4
MIN_IMAGES = 6


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return path if path.is_file() else None


def calibration_images() -> list[np.ndarray]:
    """RGB photos for calibration, from installed packages, none of them in the sample footage.

    The footage (``samples.footage``, ``benchmarks/retrieval/shipped.py``) pans over the
    named ``skimage.data`` photos and shows the iscc-samples concert video; this set takes the
    other images those packages (and matplotlib) ship: a cat, a portrait, a gift box, faces,
    a chessboard, a phantom, a retina scan. Missing packages just give fewer images.
    """
    from PIL import Image
    files = [_package_file("iscc_samples", "files", "image", "demo.jpg"),
             _package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
             _package_file("matplotlib", "mpl-data", "sample_data", "Minduka_Present_Blue_Pack.png")]
    files += [_package_file("skimage", "data", name)
              for name in ("chessboard_RGB.png", "phantom.png", "microaneurysms.png")]
    images = []
    for path in files:
        if path is not None:
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGB")))
    try:
        from skimage import data
        faces = data.lfw_subset()[:16]  # (n, 25, 25) floats in [0, 1], bundled
        images += [np.repeat((face * 255).astype(np.uint8)[..., None], 3, axis=-1) for face in faces]
    except Exception as exc:  # noqa: BLE001 - an optional source
        log.info("no lfw faces for calibration: %s", exc)
    return images


def calibration_crops(image_size: int = 224, seed: int = 0) -> np.ndarray:
    """(n, S, S, 3) uint8 crops of ``calibration_images``: seeded, so the int8 graph is reproducible."""
    from encoders.frames import fit_frame
    images = calibration_images()
    if len(images) < MIN_IMAGES:
        raise QuantizationError(f"only {len(images)} calibration images found (need {MIN_IMAGES}); "
                                "are scikit-image and matplotlib installed?")
    rng = np.random.default_rng(seed)
    crops = []
    for img in images:
        img = fit_frame(img, image_size + image_size // 7)
        for k in range(CROPS_PER_IMAGE):
            y = int(rng.integers(0, img.shape[0] - image_size + 1))
            x = int(rng.integers(0, img.shape[1] - image_size + 1))
            crop = img[y:y + image_size, x:x + image_size]
            crops.append(np.ascontiguousarray(crop[:, ::-1] if k % 2 else crop))
    return np.stack(crops)


class QuantizationError(RuntimeError):
    """The float graph could not be quantized; the caller falls back to it."""


def quantize_lite(float_path: Path, path: Path, image_size: int = 224) -> dict:
    """Quantize the float graph at ``float_path`` into ``path`` (atomically); its metadata."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                              QuantType, quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "the lite space's int8 vision encoder") from exc
    crops = calibration_crops(image_size)

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"crops": crops[i:i + 8]} for i in range(0, len(crops), 8)])

        def get_next(self):
            return next(self.batches, None)

    stem = path.with_name(f"{path.name}.{os.getpid()}")
    prepared, tmp = Path(f"{stem}.pre.onnx"), Path(f"{stem}.tmp")
    try:
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        with _quiet_root_logger():
            quantize_static(str(prepared), str(tmp), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(FLOAT_NODES))
        stem = stem_on_raw_pixels(tmp)
        tmp.replace(path)
    except (MissingDependencyError, QuantizationError):
        raise
    except Exception as exc:  # the quantizer raises many kinds
        raise QuantizationError(f"cannot quantize {float_path}: {type(exc).__name__}: {exc}") from exc
    finally:
        for leftover in (prepared, tmp, Path(f"{stem}.pre.onnx.data")):
            leftover.unlink(missing_ok=True)
    return {"recipe": QUANT_RECIPE, "onnxruntime": ort.__version__, "calibration_crops": len(crops),
            "float_nodes": [n for n in FLOAT_NODES if n != STEM or not stem], "stem": stem or "float",
            "calibration": "minmax"}


def stem_on_raw_pixels(path: Path) -> str:
    """Quantize the stem convolution of the QDQ graph at ``path`` (in place) on the raw pixels.

    The graph's input is uint8 pixels u, transposed, cast to float and normalized as
    (u - mean) / std before the float stem. With an integer mean in [0, 255] that is exactly
    the dequantization of u with zero point ``mean`` and scale 1 / std, so the cast and the
    normalization become one DequantizeLinear of the uint8 tensor; the weights are rounded
    per output channel to int8 and the bias to int32 at the product scale, as ONNX Runtime
    needs to fuse the stem into a QLinearConv. Returns what it did, or "" where the graph does
    not have that shape (the stem then stays float).
    """
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.load(str(path))
    graph = model.graph
    by_output = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    stem = next((n for n in graph.node if n.name == STEM and n.op_type == "Conv"), None)
    chain = []
    x = stem.input[0] if stem is not None and len(stem.input) == 3 else None
    for op in ("Div", "Sub", "Cast"):  # walk back from the stem to the uint8 tensor
        node = by_output.get(x)
        if node is None or node.op_type != op:
            return ""
        chain.append(node)
        x = node.input[0]
    div, sub, _ = chain
    if div.input[1] not in inits or sub.input[1] not in inits or not {stem.input[1], stem.input[2]} <= set(inits):
        return ""
    std = float(numpy_helper.to_array(inits[div.input[1]]))
    mean = float(numpy_helper.to_array(inits[sub.input[1]]))
    if not (std > 0 and mean.is_integer() and 0 <= mean <= 255):
        return ""
    w = numpy_helper.to_array(inits[stem.input[1]]).astype(np.float64)
    b = numpy_helper.to_array(inits[stem.input[2]]).astype(np.float64)
    x_scale = 1.0 / std
    w_scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127.0
    w_scale = np.maximum(w_scale, np.abs(b) / (x_scale * 2.0 ** 30))  # every bias fits in int32
    w_scale[w_scale == 0] = 1.0  # a channel of zeros
    w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    b_q = np.round(b / (x_scale * w_scale)).astype(np.int32)
    arrays = {"stem/x_scale": np.array(x_scale, np.float32), "stem/x_zero_point": np.array(int(mean), np.uint8),
              "stem/w": w_q, "stem/w_scale": w_scale.astype(np.float32),
              "stem/w_zero_point": np.zeros(len(w), np.int8),
              "stem/b": b_q, "stem/b_scale": (x_scale * w_scale).astype(np.float32),
              "stem/b_zero_point": np.zeros(len(w), np.int32)}
    graph.initializer.extend(numpy_helper.from_array(a, name) for name, a in arrays.items())
    dequantize = [
        helper.make_node("DequantizeLinear", [x, "stem/x_scale", "stem/x_zero_point"], ["stem/x"], name="stem/x_dq"),
        helper.make_node("DequantizeLinear", ["stem/w", "stem/w_scale", "stem/w_zero_point"], ["stem/w_dq"],
                         name="stem/w_dq", axis=0),
        helper.make_node("DequantizeLinear", ["stem/b", "stem/b_scale", "stem/b_zero_point"], ["stem/b_dq"],
                         name="stem/b_dq", axis=0)]
    del stem.input[:]
    stem.input.extend(["stem/x", "stem/w_dq", "stem/b_dq"])
    dropped = {n.name for n in chain}
    nodes = [n for n in graph.node if n.name not in dropped]
    at = nodes.index(stem)
    graph.ClearField("node")
    graph.node.extend(nodes[:at] + dequantize + nodes[at:])
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return f"int8 on raw pixels (zero point {int(mean)}, scale 1/{std:g})"


class _ThreadBelowError(logging.Filter):
    """Drops the records under ERROR that one thread logs."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.thread != self.thread


@contextmanager
def _quiet_root_logger():
    """The quantizer logs warnings on the root logger itself (``logging.warning``) for the
    uint8 input it leaves alone: those of this thread are dropped. A filter on the root logger
    sees only what is logged on it, not what other loggers pass up; lowering the root's level
    instead silenced every logger of every thread meanwhile (a server's warm-up quantizing
    while its worker warned), and two threads quantizing at once could leave it lowered."""
    root, quiet = logging.getLogger(), _ThreadBelowError()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def int8_path(float_path: Path) -> Path:
    return float_path.with_name(f"{float_path.stem}-int8r{QUANT_RECIPE}.onnx")


def float_path_of(path: Path) -> Path:
    """The float graph an ``int8_path`` was made from."""
    return path.with_name(path.name.replace(f"-int8r{QUANT_RECIPE}.onnx", ".onnx"))
