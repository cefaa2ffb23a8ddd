"""The int8 stem reads raw pixels: the graph rewrite of ``encoders.lite_int8.stem_on_raw_pixels``
on a small graph of the exporter's shape (transpose, cast, normalize, stem convolution)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (vidsonar pins it in requirements.lock)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (vidsonar pins it in requirements.lock)")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from encoders.lite_int8 import STEM, stem_on_raw_pixels  # noqa: E402


def stem_graph(path, mean: float, std: float, w=None, b=None, seed: int = 0) -> None:
    """uint8 NHWC pixels -> (u - mean) / std -> 3x3 stride-2 convolution, 8 channels."""
    rng = np.random.default_rng(seed)
    if w is None:
        w = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
        w[3] = 0.0  # a dead channel, with a bias
        b = rng.normal(0, 0.5, 8).astype(np.float32)
    inits = [numpy_helper.from_array(np.array(mean, np.float32), "mean"),
             numpy_helper.from_array(np.array(std, np.float32), "std"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes = [helper.make_node("Transpose", ["crops"], ["t"], name="/Transpose", perm=[0, 3, 1, 2]),
             helper.make_node("Cast", ["t"], ["c"], name="/Cast", to=TensorProto.FLOAT),
             helper.make_node("Sub", ["c", "mean"], ["s"], name="/Sub"),
             helper.make_node("Div", ["s", "std"], ["d"], name="/Div"),
             helper.make_node("Conv", ["d", "w", "b"], ["y"], name=STEM, strides=[2, 2], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "stem", [helper.make_tensor_value_info("crops", TensorProto.UINT8, [None, 16, 16, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))


def run(path, x):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {"crops": x})[0]


def test_the_stem_reads_raw_pixels_and_computes_what_the_float_stem_did(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "stem.onnx"
    stem_graph(path, 127.0, 128.0)
    want = run(path, x)
    assert stem_on_raw_pixels(path).startswith("int8 on raw pixels (zero point 127")
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert "Cast" not in ops and "Sub" not in ops and "Div" not in ops  # no float input stage left
    pixels = next(n for n in model.graph.node if n.input and n.input[0] == "t")
    assert pixels.op_type == "DequantizeLinear"  # the uint8 tensor itself, dequantized
    got = run(path, x)
    # only the weights and bias were rounded: the float stem with those rounded values, on
    # the normalized pixels, gives the same outputs (a zero point off by one does not)
    a = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    w = a["stem/w"].astype(np.float32) * a["stem/w_scale"][:, None, None, None]
    b = a["stem/b"].astype(np.float32) * a["stem/b_scale"]
    rounded = tmp_path / "rounded.onnx"
    stem_graph(rounded, 127.0, 128.0, w, b)
    np.testing.assert_allclose(got, run(rounded, x), atol=2e-5)
    err = np.abs(got - want)
    assert 0 < err.max() < 0.05  # the rounding is small, and real: another graph
    np.testing.assert_allclose(got[:, 3], want[:, 3], atol=1e-4)  # the dead channel keeps its bias


def test_a_mean_that_is_not_a_pixel_value_leaves_the_stem_float(tmp_path):
    path = tmp_path / "stem.onnx"
    stem_graph(path, 127.5, 128.0)
    before = path.read_bytes()
    assert stem_on_raw_pixels(path) == ""
    assert path.read_bytes() == before
