"""The precision and typing decision per TensorRT version, the fp16 graph, and int8 Q/DQ placement (issue 12).

Everything here is pure Python on the ONNX graph: what TensorRT would be asked to build, checked without it."""

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper
import pytest

from edgefer.errors import ArgumentError, ExportError
from edgefer.export.tensorrt_precision import (FP32_OPS, check_tensorrt_qdq, decide_precision, fp16_graph,
                                               parse_version)


@pytest.mark.parametrize("version,precision,graph,strong,flag,builder", [
    ("10.3.0.30", "fp32", "fp32", False, False, ()),  # JetPack 6
    ("10.3.0.30", "fp16", "fp32", False, False, ("FP16",)),  # weakly typed: the builder flag
    ("10.3.0.30", "int8", "int8-qdq", True, True, ()),  # explicit QDQ, strongly typed, no precision flag
    ("10.13.2", "fp16", "fp32", False, False, ("FP16",)),
    ("10.13.2", "int8", "int8-qdq", True, True, ()),
    ("11.1.0", "fp32", "fp32", True, False, ()),  # 11.x: always strongly typed, the flag is ignored
    ("11.1.0", "fp16", "fp16", True, False, ()),  # no FP16 flag: an fp16 graph
    ("11.1.0", "int8", "int8-qdq", True, False, ()),
    ("12.0", "fp16", "fp16", True, False, ()),
])
def test_precision_decision_per_version(version, precision, graph, strong, flag, builder):
    plan = decide_precision(precision, version)
    assert (plan.precision, plan.graph, plan.strongly_typed, plan.strongly_typed_flag, plan.builder_flags) == \
        (precision, graph, strong, flag, builder)
    assert plan.reason


def test_no_int8_builder_flag_or_calibrator_anywhere():
    for version in ("10.0", "10.3.0", "10.8.0.43", "11.0", "11.1.0"):
        assert "INT8" not in decide_precision("int8", version).builder_flags


@pytest.mark.parametrize("precision,version,needle", [
    ("fp8", "10.3", "unknown precision"), ("fp16", "8.6.1", "too old"), ("fp16", "9.3.0", "too old"),
    ("fp16", "ten", "not a TensorRT version"), ("fp16", "", "not a TensorRT version"),
])
def test_bad_precision_or_version(precision, version, needle):
    with pytest.raises(ArgumentError, match=needle):
        decide_precision(precision, version)


def test_parse_version():
    assert parse_version("10.3.0.30") == (10, 3) and parse_version("11.1") == (11, 1)
    assert parse_version(" 10.13.2.6+cuda12 ") == (10, 13)


def _layernorm_graph():
    """x (N, 8) -> MatMul -> LayerNormalization -> Softmax -> y: a tiny opset-17 graph."""
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w")
    scale = onnx.numpy_helper.from_array(np.ones(8, np.float32), "g")
    bias = onnx.numpy_helper.from_array(np.zeros(8, np.float32), "b")
    nodes = [oh.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             oh.make_node("LayerNormalization", ["h", "g", "b"], ["n"], name="ln", axis=-1),
             oh.make_node("Softmax", ["n"], ["y"], name="sm", axis=-1)]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 8])],
                          [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 8])], [w, scale, bias])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])


def test_fp16_graph_keeps_io_float32_and_layernorm_softmax_fp32():
    import onnxruntime as ort

    fp32 = _layernorm_graph()
    half = fp16_graph(fp32)
    onnx.checker.check_model(half)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    inits = {i.name: i for i in half.graph.initializer}
    assert inits["w"].data_type == onnx.TensorProto.FLOAT16  # the MatMul computes in fp16
    casts = {n.output[0]: n for n in half.graph.node if n.op_type == "Cast"}
    for node in half.graph.node:
        if node.op_type in FP32_OPS:  # fed by a Cast to float32, or by fp32 weights
            first = node.input[0]
            assert first in casts and casts[first].attribute[0].i == onnx.TensorProto.FLOAT, node.name
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.allclose(run(half), run(fp32), atol=2e-3)


def _qdq(zp_type=onnx.TensorProto.INT8, zp_value=0, weight_axis=0, weight_scale_len=4, act_scale_shape=()):
    """x -> Q/DQ -> Conv(DQ(int8 weight)) -> y, with the zero-point type/value and scales chosen."""
    wq = onnx.numpy_helper.from_array(np.ones((4, 2, 3, 3), np.int8), "wq")
    ws = onnx.numpy_helper.from_array(np.full(weight_scale_len, 0.1, np.float32), "ws")
    wz = onnx.helper.make_tensor("wz", onnx.TensorProto.INT8, [weight_scale_len], [0] * weight_scale_len)
    xs = onnx.numpy_helper.from_array(np.full(act_scale_shape, 0.02, np.float32), "xs")
    xz = onnx.helper.make_tensor("xz", zp_type, list(act_scale_shape), [zp_value] * int(np.prod(act_scale_shape)))
    nodes = [oh.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q"),
             oh.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq"),
             oh.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], name="wdq", axis=weight_axis),
             oh.make_node("Conv", ["xd", "w"], ["y"], name="conv")]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 5, 5])],
                          [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 3, 3])], [wq, ws, wz, xs, xz])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])


def test_qdq_checker_accepts_symmetric_per_channel():
    assert check_tensorrt_qdq(_qdq()) == {"quantize": 1, "dequantize": 2, "per_channel_weights": 1}


@pytest.mark.parametrize("kwargs,needle", [
    (dict(zp_type=onnx.TensorProto.UINT8, zp_value=128), "UINT8"),  # ONNX Runtime's x86 default, asymmetric
    (dict(zp_value=3), "not 0"),
    (dict(weight_axis=1, weight_scale_len=2), "per output channel"),
    (dict(weight_scale_len=1, weight_axis=0), "per output channel"),
    (dict(act_scale_shape=(2,)), "per tensor"),
])
def test_qdq_checker_refuses_what_tensorrt_does_not_take(kwargs, needle):
    with pytest.raises(ExportError, match=needle):
        check_tensorrt_qdq(_qdq(**kwargs))


def test_qdq_checker_refuses_a_float_graph():
    with pytest.raises(ExportError, match="no QuantizeLinear"):
        check_tensorrt_qdq(_layernorm_graph())


@pytest.fixture(scope="module")
def tiny_fp32(tmp_path_factory):
    import torch

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", dim=32, num_heads=2, mlp_hidden=64).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    report = export_onnx(model, path, metadata, random_batches=(1,))
    assert report.opset >= 17
    return path, metadata


def test_the_export_keeps_layernorm_one_node(tiny_fp32):
    ops = [n.op_type for n in onnx.load(str(tiny_fp32[0])).graph.node]
    assert ops.count("LayerNormalization") >= 3 and "Pow" not in ops and "Sqrt" not in ops  # not decomposed


def test_int8_export_for_tensorrt_places_symmetric_qdq(tiny_fp32, tmp_path):
    """The int8 graph an engine is built from: edgefer.export.int8 with TensorRT's types, checked on the graph."""
    from edgefer.export.calibration_clips import CalibrationSet
    from edgefer.export.int8 import quantize_int8, tensorrt_types

    path, metadata = tiny_fp32
    rng = np.random.default_rng(0)  # the placement does not depend on the data; agreement is not tested here
    clips = CalibrationSet(rng.random((2, 16, 3, 112, 112), dtype=np.float32),
                           rng.random((1, 16, 3, 112, 112), dtype=np.float32), "random")
    out = tmp_path / "q.onnx"
    quantize_int8(path, out, metadata, clips, types=tensorrt_types(), min_agreement=0.0)
    model = onnx.load(str(out))
    inits = {i.name: i for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 20
    for node in qdq:  # symmetric signed int8 everywhere
        zp = inits[node.input[2]]
        assert zp.data_type == onnx.TensorProto.INT8 and not onnx.numpy_helper.to_array(zp).any(), node.name
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    weight_dq = [n for n in qdq if n.output[0] in conv_weights]
    assert weight_dq and all(inits[n.input[1]].dims[0] == inits[n.input[0]].dims[0] for n in weight_dq)
    assert all(next((a.i for a in n.attribute if a.name == "axis"), 1) == 0 for n in weight_dq)
    activations = [n for n in qdq if n.op_type == "QuantizeLinear"]
    assert activations and all(len(inits[n.input[1]].dims) == 0 for n in activations)
    counts = check_tensorrt_qdq(model)
    assert counts["per_channel_weights"] >= len(weight_dq)


def test_fp16_graph_of_a_real_export_agrees_with_fp32(tiny_fp32):
    """The graph a TensorRT 11 fp16 engine is built from, run on ONNX Runtime: same top-1, cosine >= 0.999."""
    import onnxruntime as ort

    from edgefer.export.int8 import agreement

    fp32 = onnx.load(str(tiny_fp32[0]))
    half = fp16_graph(fp32)
    onnx.checker.check_model(half)
    kept = [n for n in half.graph.node if n.op_type in FP32_OPS]
    assert kept and not any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer
                            if i.name in {x for n in kept for x in n.input})
    clips = np.random.default_rng(0).random((2, 16, 3, 112, 112), dtype=np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"clip": clips})[0]
    top1, _, cos_min = agreement(run(fp32), run(half))
    assert top1 == 1.0 and cos_min >= 0.999
