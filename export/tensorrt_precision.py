"""How an engine gets its precision on each TensorRT version: the one decision, and the fp16 ONNX graph it may need.

Facts from NVIDIA's documentation and release notes:

- TensorRT 10.x builds a *weakly typed* network by default: the ``BuilderFlag.FP16`` flag lets the builder pick
  fp16 kernels for an fp32 graph. ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (10.x: value 1) makes it take
  every tensor's type from the graph instead.
- TensorRT 11 removed weak typing: networks are always strongly typed (the ``STRONGLY_TYPED`` flag is kept for
  compatibility and ignored), and the FP16 / INT8 builder flags and the int8 calibrators are gone. fp16 therefore
  means an fp16 ONNX graph.
- int8 is explicit quantization on every version: QuantizeLinear / DequantizeLinear pairs in the ONNX graph with
  symmetric signed int8 (zero point 0), per-channel weights and per-tensor activations. NVIDIA's guide ("Explicit
  Quantization"): "Use explicit quantization with Strong Typing. Precision-control build flags are not required
  and should not be specified." The int8 calibrators were deprecated in 10.1. The graph is made by
  :func:`edgefer.export.int8.quantize_int8` with :func:`edgefer.export.int8.tensorrt_types`.

:func:`decide_precision` turns (precision, TensorRT version) into a :class:`PrecisionPlan`;
:func:`fp16_graph` converts an fp32 ONNX graph to fp16 with ONNX Runtime's converter
(``onnxruntime.transformers.float16``), keeping LayerNormalization and Softmax in fp32 and the graph's input and
output float32; :func:`check_tensorrt_qdq` checks that a QDQ graph is what TensorRT's explicit quantization takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgefer.errors import ArgumentError, ExportError
from edgefer.metadata import PRECISIONS

#: The oldest TensorRT supported: 10.0 (Python ``IPluginRegistry.load_library``, IPluginV3); JetPack 6's 10.3 is
#: the oldest target.
MIN_VERSION = (10, 0)
#: Ops :func:`fp16_graph` keeps in fp32: their reductions (mean, variance, the exponentials' sum) overflow fp16's
#: 65504 or lose its 11-bit mantissa.
FP32_OPS = ("LayerNormalization", "Softmax")
#: Graph kinds a plan asks for.
GRAPHS = ("fp32", "fp16", "int8-qdq")


@dataclass(frozen=True)
class PrecisionPlan:
    """How to build an engine of one precision on one TensorRT version.

    Attributes:
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        graph: the ONNX graph to parse: ``"fp32"`` (the export as it is), ``"fp16"`` (:func:`fp16_graph`) or
            ``"int8-qdq"`` (symmetric QDQ, :func:`edgefer.export.int8.quantize_int8` with TensorRT's types).
        strongly_typed: whether the network is strongly typed (tensor types from the graph).
        strongly_typed_flag: whether to pass ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` to
            ``create_network`` (10.x; 11.x is always strongly typed and ignores the flag).
        builder_flags: ``tensorrt.BuilderFlag`` member names to set (``("FP16",)`` on 10.x fp16, else none).
        reason: one line naming the rule.
    """

    precision: str
    graph: str
    strongly_typed: bool
    strongly_typed_flag: bool
    builder_flags: tuple[str, ...]
    reason: str


def parse_version(version: str) -> tuple[int, int]:
    """``"10.3.0.30"`` -> ``(10, 3)``.

    Raises:
        ArgumentError: not a ``MAJOR.MINOR[...]`` version string.
    """
    match = re.fullmatch(r"(\d+)\.(\d+)(?:[.\w+-]*)", str(version).strip())
    if not match:
        raise ArgumentError(f"not a TensorRT version: {version!r} (expected MAJOR.MINOR, e.g. '10.3.0')")
    return int(match.group(1)), int(match.group(2))


def decide_precision(precision: str, tensorrt_version: str) -> PrecisionPlan:
    """The graph, typing and builder flags for ``precision`` on TensorRT ``tensorrt_version``.

    ============  ===============================================  =============================================
    precision     TensorRT 10.x                                    TensorRT 11.x and later
    ============  ===============================================  =============================================
    fp32          fp32 graph, weakly typed, no flag                fp32 graph, strongly typed
    fp16          fp32 graph, weakly typed, ``BuilderFlag.FP16``   fp16 graph (LN, Softmax fp32), strongly typed
    int8          symmetric QDQ graph, ``STRONGLY_TYPED`` flag     symmetric QDQ graph, strongly typed
    ============  ===============================================  =============================================

    Args:
        precision: one of ``"fp32"``, ``"fp16"``, ``"int8"``.
        tensorrt_version: ``tensorrt.__version__`` (e.g. ``"10.3.0.30"``, ``"11.1.0"``).

    Raises:
        ArgumentError: unknown precision, a malformed version, or a TensorRT older than :data:`MIN_VERSION`.
    """
    if precision not in PRECISIONS:
        raise ArgumentError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    major, minor = parse_version(tensorrt_version)
    if (major, minor) < MIN_VERSION:
        raise ArgumentError(f"TensorRT {tensorrt_version} is too old: edgefer needs TensorRT >= "
                            f"{MIN_VERSION[0]}.{MIN_VERSION[1]} (JetPack 6 ships 10.3)")
    weak = major < 11  # TensorRT 11 removed weak typing
    if precision == "int8":
        return PrecisionPlan("int8", "int8-qdq", True, weak, (),
                             "int8 is explicit quantization on every TensorRT: symmetric QDQ graph, strongly typed, "
                             "no precision flags (NVIDIA's explicit quantization guide)")
    if precision == "fp16" and weak:
        return PrecisionPlan("fp16", "fp32", False, False, ("FP16",),
                             f"TensorRT {major}.x is weakly typed: the FP16 builder flag on the fp32 graph")
    if precision == "fp16":
        return PrecisionPlan("fp16", "fp16", True, False, (),
                             f"TensorRT {major}.x has no FP16 flag (strongly typed only): an fp16 ONNX graph")
    return PrecisionPlan("fp32", "fp32", not weak, False, (),
                         f"fp32 graph; TensorRT {major}.x is {'weakly' if weak else 'strongly'} typed")


def fp16_graph(model, keep_fp32: tuple[str, ...] = FP32_OPS):
    """An fp16 copy of the fp32 ONNX ``model`` (an ``onnx.ModelProto``) for a strongly typed network.

    Uses ONNX Runtime's converter, ``onnxruntime.transformers.float16.convert_float_to_float16``, with
    ``keep_io_types=True`` (the input clip and the logits stay float32, with Casts at the graph's edges, so the
    runtime feeds and reads float32 on every precision) and ``keep_fp32`` in its ``op_block_list`` (those nodes
    compute in fp32 between Casts). Initializers beyond fp16's range are clamped to +-65504 by the converter.

    Raises:
        ExportError: the converter failed (the message gives its reason).
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        half = convert_float_to_float16(model, keep_io_types=True,
                                        op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(keep_fp32))
        ordered = OnnxModel(half)  # the converter appends the input Casts last; ONNX (and TensorRT) need them first
        ordered.topological_sort()
        return ordered.model
    except Exception as exc:  # the converter raises plain exceptions (shape inference, unknown types)
        raise ExportError(f"fp16 conversion of the ONNX graph failed: {type(exc).__name__}: {exc}") from exc


def check_tensorrt_qdq(model) -> dict[str, int]:
    """Check that the QDQ ONNX ``model`` is explicit quantization TensorRT takes.

    Every QuantizeLinear / DequantizeLinear must have an int8 zero point equal to 0 (or none, which means 0 in
    int8 only when the quantized tensor is int8); a DequantizeLinear of a constant weight (an int8 initializer)
    read by a Conv, MatMul or Gemm must be per channel (a 1-D scale with ``axis`` on the weight's output channels:
    0 for Conv, the last axis for a MatMul's weight, 0 for a Gemm with ``transB=1``); every other scale (the
    activations, other constants) must be a scalar (per tensor).

    Returns:
        ``{"quantize": n, "dequantize": n, "per_channel_weights": n}``.

    Raises:
        ExportError: a zero point that is not int8 or not all 0, an activation quantized per channel, a weight
            quantized per tensor or along the wrong axis, or no QDQ node at all.
    """
    import onnx.numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    counts = {"quantize": 0, "dequantize": 0, "per_channel_weights": 0}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        counts["quantize" if node.op_type == "QuantizeLinear" else "dequantize"] += 1
        if len(node.input) < 3 or not node.input[2]:
            raise ExportError(f"{node.op_type} {node.name!r} has no zero point: TensorRT's int8 needs an explicit "
                              "int8 zero point of 0")
        zp = inits.get(node.input[2])
        if zp is None:
            raise ExportError(f"{node.op_type} {node.name!r}: its zero point is computed, not a constant")
        if zp.data_type != onnx.TensorProto.INT8:
            raise ExportError(f"{node.op_type} {node.name!r}: zero point of type "
                              f"{onnx.TensorProto.DataType.Name(zp.data_type)}, TensorRT needs signed int8")
        if onnx.numpy_helper.to_array(zp).any():
            raise ExportError(f"{node.op_type} {node.name!r}: zero point not 0 (asymmetric); TensorRT's "
                              "quantization is symmetric")
        scale = inits.get(node.input[1])
        scale_rank = len(scale.dims) if scale is not None else 0
        weight = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        expected = None
        if weight is not None and weight.data_type == onnx.TensorProto.INT8 and len(weight.dims) >= 2:
            expected = _output_channel_axis(consumers.get(node.output[0], []), node.output[0], len(weight.dims))
        if expected is not None:  # the weight of a Conv / MatMul / Gemm
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % len(weight.dims)
            if scale_rank != 1 or scale.dims[0] != weight.dims[axis] or axis != expected:
                raise ExportError(f"DequantizeLinear {node.name!r}: weight {node.input[0]} {list(weight.dims)} must "
                                  f"be quantized per output channel (axis {expected}), got axis {axis} with a scale "
                                  f"of shape {list(scale.dims) if scale is not None else '?'}")
            counts["per_channel_weights"] += 1
        elif scale_rank != 0:
            raise ExportError(f"{node.op_type} {node.name!r}: {node.input[0]} (not a Conv/MatMul/Gemm weight) "
                              "quantized per channel; TensorRT quantizes activations per tensor")
    if not counts["quantize"] or not counts["dequantize"]:
        raise ExportError("the graph has no QuantizeLinear/DequantizeLinear nodes: not an explicitly quantized model")
    return counts


def _output_channel_axis(consumers: list, tensor: str, rank: int) -> int | None:
    """The output-channel axis of a weight ``tensor`` for the op that reads it (None when no rule applies)."""
    for node in consumers:
        if node.op_type in ("Conv", "ConvTranspose") and list(node.input[1:2]) == [tensor]:
            return 0 if node.op_type == "Conv" else 1
        if node.op_type == "MatMul" and list(node.input[1:2]) == [tensor]:
            return rank - 1
        if node.op_type == "Gemm" and list(node.input[1:2]) == [tensor]:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            return 0 if trans_b else 1
    return None
