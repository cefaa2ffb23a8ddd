"""EfficientNet-Lite0 in int8: the lite vision graph quantized by ONNX Runtime, once, at first use.

EfficientNet-Lite was designed to be quantized (ReLU6 instead of swish, no squeeze-excite), and
on CPUs with int8 dot products (AVX512-VNNI, AVX-VNNI, ARM dotprod) ONNX Runtime runs the int8
graph about twice as fast as the float one (``benchmarks/lite_encoder.py``).

Recipe (``QUANT_RECIPE``; a change gives new cache files):

- static QDQ quantization, int8 weights per output channel, uint8 activations;
- activation ranges from the minimum and maximum seen in a calibration pass (ReLU6 bounds
  most of them anyway; a percentile calibration agreed on 2% more top-1 classes on the sample
  photos but took 130 s instead of about 10 s at first use);
- the stem convolution (raw normalized pixels in) and the classifier (logits out) stay float:
  they are 2 of 50 layers and carry most of the rounding error;
- calibration images: real photos that ship in installed packages and that neither the sample
  footage nor the benchmarks show (``calibration_images``), as shifted and mirrored crops, so
  the figures measured on that footage are not in-sample.

Measured against the float graph on the sample footage's photos: top-1 class the same on 93%
of frames, class probabilities at cosine 0.995 (``tests/test_lite_int8.py`` holds a bound).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vidsonar.errors import MissingDependencyError

log = logging.getLogger(__name__)

#: bump when the quantization recipe or the calibration set changes
QUANT_RECIPE = 1
PRECISIONS = ("int8", "fp32")
#: float layers of the exported graph (their node names, set by the TorchScript exporter)
FLOAT_NODES = ("/model/_conv_stem/Conv", "/model/_fc/Gemm")
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
        tmp.replace(path)
    except (MissingDependencyError, QuantizationError):
        raise
    except Exception as exc:  # the quantizer raises many kinds
        raise QuantizationError(f"cannot quantize {float_path}: {type(exc).__name__}: {exc}") from exc
    finally:
        for leftover in (prepared, tmp, Path(f"{stem}.pre.onnx.data")):
            leftover.unlink(missing_ok=True)
    return {"recipe": QUANT_RECIPE, "onnxruntime": ort.__version__, "calibration_crops": len(crops),
            "float_nodes": list(FLOAT_NODES), "calibration": "minmax"}


@contextmanager
def _quiet_root_logger():
    """The quantizer logs warnings on the root logger for the uint8 input it leaves alone."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def int8_path(float_path: Path) -> Path:
    return float_path.with_name(f"{float_path.stem}-int8r{QUANT_RECIPE}.onnx")
