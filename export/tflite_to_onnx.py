"""A float TFLite graph (:mod:`edgefer.export.tflite_reader`) -> an ONNX graph built with ``onnx.helper`` (no torch).

Layout: TFLite activations are NHWC; the ONNX graph is NCHW throughout. The graph's image input becomes
(N, C, H, W) with a dynamic batch N; weights are transposed once, at conversion:

- ``CONV_2D`` weights are OHWI -> OIHW; ``DEPTHWISE_CONV_2D`` weights 1HW(C*M) -> (C*M)1HW with ``group = C``;
- TFLite ``SAME`` padding becomes explicit, possibly asymmetric ONNX pads (the extra pixel at the end, as
  TensorFlow does): total = max((ceil(in / s) - 1) * s + (k - 1) * d + 1 - in, 0), begin = total // 2;
- fused activations (RELU, RELU6, RELU_N1_TO_1, TANH) become their own node after the op;
- ``PAD`` paddings are reordered from NHWC to ONNX's [begins..., ends...] in NCHW; ``PRELU`` alphas and
  per-channel constants of ``ADD``/``MUL`` are reshaped to broadcast over NCHW;
- ``RESHAPE`` and ``CONCATENATION`` depend on the memory order: a 4-D input is transposed back to NHWC before a
  reshape (so the flattened order is TFLite's), and a concatenation's axis is mapped to NCHW;
- ``RESIZE_BILINEAR`` becomes ``Resize`` (linear) with TFLite's coordinate rule (align_corners, half_pixel_centers
  or asymmetric);
- ``DEQUANTIZE`` of a float16 constant is folded: the weight is stored as float32.

Any other operator, or a layout this does not cover, raises :class:`~edgefer.errors.ModelFileError` naming it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgefer.errors import ModelFileError

from .tflite_reader import TfGraph, TfOperator

OPSET = 17
IR_VERSION = 8
#: TFLite operators this converter handles.
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "RELU", "RELU6", "PRELU", "MAX_POOL_2D", "AVERAGE_POOL_2D",
             "PAD", "RESHAPE", "CONCATENATION", "RESIZE_BILINEAR", "DEQUANTIZE")
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after) pixels, the odd pixel after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(self, graph: TfGraph) -> None:
        self.g = graph
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.consts: dict[int, np.ndarray] = {}  # TFLite constants (float16 ones after DEQUANTIZE, as float32)
        self.names: dict[int, str] = {}  # TFLite tensor -> its ONNX value
        self.nchw: dict[int, bool] = {}  # whether that value is a 4-D tensor in NCHW order
        for t in graph.tensors:
            if t.data is not None:
                self.consts[t.index] = t.data.astype(np.float32) if t.data.dtype == np.float16 else t.data
        self._count = 0

    # -- helpers -------------------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [output], **attrs))
        return output

    def shape(self, index: int) -> tuple[int, ...]:
        return self.g.tensor(index).shape

    def value(self, index: int) -> str:
        """The ONNX name of an activation; refuses a constant in an activation's place."""
        if index not in self.names:
            raise ModelFileError(f"tensor {self.g.tensor(index).name!r} is used before it is computed")
        return self.names[index]

    def activation(self, kind: str, x: str, output: str) -> str:
        if kind == "NONE":
            return self.node("Identity", [x], output)
        if kind == "RELU":
            return self.node("Relu", [x], output)
        if kind in ("RELU6", "RELU_N1_TO_1"):
            lo, hi = (0.0, 6.0) if kind == "RELU6" else (-1.0, 1.0)
            return self.node("Clip", [x, self.const(np.float32(lo), "lo"), self.const(np.float32(hi), "hi")], output)
        if kind == "TANH":
            return self.node("Tanh", [x], output)
        raise ModelFileError(f"unsupported fused activation {kind}")

    def finish(self, op: TfOperator, value: str, nchw: bool) -> None:
        out = op.outputs[0]
        name = f"t{out}"
        self.activation(op.options.get("activation", "NONE"), value, name)
        self.names[out], self.nchw[out] = name, nchw

    def channel_const(self, array: np.ndarray, other_nchw: bool, hint: str) -> str:
        """A constant operand broadcast against an NCHW activation: NHWC -> NCHW, (C,) / (1, 1, C) -> (C, 1, 1)."""
        if other_nchw:
            if array.ndim == 4:
                array = array.transpose(0, 3, 1, 2)
            elif array.ndim == 3:
                array = array.transpose(2, 0, 1)
            elif array.ndim in (1, 2) and array.size > 1:
                array = array.reshape(-1, 1, 1)
        return self.const(array.astype(np.float32) if array.dtype == np.float16 else array, hint)

    def operand(self, index: int, other_nchw: bool) -> tuple[str, bool]:
        if index in self.consts:
            return self.channel_const(self.consts[index], other_nchw, "c"), other_nchw
        return self.value(index), self.nchw[index]

    def require_4d(self, op: TfOperator, index: int) -> str:
        if index in self.consts or not self.nchw.get(index, False):
            raise ModelFileError(f"{op.kind} on tensor {self.g.tensor(index).name!r}: edgefer converts it for 4-D "
                                 f"NHWC activations only")
        return self.value(index)

    # -- operators -----------------------------------------------------------------------------------------------
    def convert(self, op: TfOperator) -> None:
        if op.kind not in SUPPORTED:
            raise ModelFileError(f"unsupported TFLite operator {op.kind} (edgefer converts {', '.join(SUPPORTED)})")
        getattr(self, "op_" + op.kind.lower())(op)

    def _conv(self, op: TfOperator, weights: np.ndarray, group: int) -> None:
        x = self.require_4d(op, op.inputs[0])
        _, h, w, _ = self.shape(op.inputs[0])
        kh, kw = weights.shape[2:]
        (sh, sw), (dh, dw) = op.options["stride"], op.options["dilation"]
        pads = [0, 0, 0, 0]
        if op.options["padding"] == "SAME":
            (t, b), (l, r) = same_pads(h, kh, sh, dh), same_pads(w, kw, sw, dw)
            pads = [t, l, b, r]
        inputs = [x, self.const(weights, "w")]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            inputs.append(self.const(self.consts[op.inputs[2]].astype(np.float32), "b"))
        y = self.node("Conv", inputs, kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw], pads=pads,
                      group=group)
        self.finish(op, y, True)

    def _weights(self, op: TfOperator) -> np.ndarray:
        if op.inputs[1] not in self.consts:
            raise ModelFileError(f"{op.kind} with non-constant weights is not supported")
        return self.consts[op.inputs[1]].astype(np.float32)

    def op_conv_2d(self, op: TfOperator) -> None:
        self._conv(op, self._weights(op).transpose(0, 3, 1, 2), 1)  # OHWI -> OIHW

    def op_depthwise_conv_2d(self, op: TfOperator) -> None:
        channels = self.shape(op.inputs[0])[3]
        self._conv(op, self._weights(op).transpose(3, 0, 1, 2), channels)  # 1HW(C*M) -> (C*M)1HW

    def _binary(self, op: TfOperator, onnx_op: str) -> None:
        a_idx, b_idx = op.inputs[:2]
        layout = any(self.nchw.get(i, False) for i in (a_idx, b_idx) if i not in self.consts)
        a, _ = self.operand(a_idx, layout)
        b, _ = self.operand(b_idx, layout)
        self.finish(op, self.node(onnx_op, [a, b]), layout)

    def op_add(self, op: TfOperator) -> None:
        self._binary(op, "Add")

    def op_mul(self, op: TfOperator) -> None:
        self._binary(op, "Mul")

    def op_relu(self, op: TfOperator) -> None:
        x, layout = self.operand(op.inputs[0], True)
        self.finish(op, self.node("Relu", [x]), layout)

    def op_relu6(self, op: TfOperator) -> None:
        x, layout = self.operand(op.inputs[0], True)
        self.finish(op, self.activation("RELU6", x, self.fresh("relu6")), layout)

    def op_prelu(self, op: TfOperator) -> None:
        x, layout = self.operand(op.inputs[0], True)
        if op.inputs[1] not in self.consts:
            raise ModelFileError("PRELU with a non-constant alpha is not supported")
        alpha = self.channel_const(self.consts[op.inputs[1]].astype(np.float32), layout, "alpha")
        self.finish(op, self.node("PRelu", [x, alpha]), layout)

    def _pool(self, op: TfOperator, onnx_op: str) -> None:
        x = self.require_4d(op, op.inputs[0])
        _, h, w, _ = self.shape(op.inputs[0])
        (kh, kw), (sh, sw) = op.options["kernel"], op.options["stride"]
        pads = [0, 0, 0, 0]
        if op.options["padding"] == "SAME":
            (t, b), (l, r) = same_pads(h, kh, sh), same_pads(w, kw, sw)
            pads = [t, l, b, r]
        extra = {"count_include_pad": 0} if onnx_op == "AveragePool" else {}
        self.finish(op, self.node(onnx_op, [x], kernel_shape=[kh, kw], strides=[sh, sw], pads=pads, **extra), True)

    def op_max_pool_2d(self, op: TfOperator) -> None:
        self._pool(op, "MaxPool")

    def op_average_pool_2d(self, op: TfOperator) -> None:
        self._pool(op, "AveragePool")

    def op_pad(self, op: TfOperator) -> None:
        x = self.require_4d(op, op.inputs[0])
        if op.inputs[1] not in self.consts:
            raise ModelFileError("PAD with non-constant paddings is not supported")
        p = np.asarray(self.consts[op.inputs[1]], np.int64).reshape(4, 2)[[0, 3, 1, 2]]  # NHWC -> NCHW rows
        if p[0].any():
            raise ModelFileError("PAD along the batch axis is not supported")
        pads = np.concatenate([p[:, 0], p[:, 1]])
        self.finish(op, self.node("Pad", [x, self.const(pads, "pads")], mode="constant"), True)

    def op_reshape(self, op: TfOperator) -> None:
        src = op.inputs[0]
        x = self.value(src)
        if self.nchw.get(src, False):
            x = self.node("Transpose", [x], perm=[0, 2, 3, 1])  # flatten in TFLite's (NHWC) order
        target = list(self.shape(op.outputs[0]))
        if not target or target[0] != 1 or self.shape(src)[0] != 1:
            raise ModelFileError(f"RESHAPE to {tuple(target)}: edgefer converts reshapes that keep a batch of 1")
        y = self.node("Reshape", [x, self.const(np.array([0, *target[1:]], np.int64), "shape")])
        if len(target) == 4:
            y = self.node("Transpose", [y], perm=[0, 3, 1, 2])
        self.finish(op, y, len(target) == 4)

    def op_concatenation(self, op: TfOperator) -> None:
        layouts = {self.nchw.get(i, False) for i in op.inputs}
        if len(layouts) != 1 or any(i in self.consts for i in op.inputs):
            raise ModelFileError("CONCATENATION of constants or of mixed layouts is not supported")
        nchw = layouts.pop()
        rank = len(self.shape(op.inputs[0]))
        axis = op.options["axis"] % rank
        if nchw:
            axis = _NHWC_TO_NCHW_AXIS[axis]
        self.finish(op, self.node("Concat", [self.value(i) for i in op.inputs], axis=axis), nchw)

    def op_resize_bilinear(self, op: TfOperator) -> None:
        x = self.require_4d(op, op.inputs[0])
        _, h, w, _ = self.shape(op.inputs[0])
        _, oh, ow, _ = self.shape(op.outputs[0])
        if op.options.get("align_corners"):
            mode = "align_corners"
        elif op.options.get("half_pixel_centers"):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        scales = self.const(np.array([1.0, 1.0, oh / h, ow / w], np.float32), "scales")
        y = self.node("Resize", [x, "", scales], mode="linear", coordinate_transformation_mode=mode)
        self.finish(op, y, True)

    def op_dequantize(self, op: TfOperator) -> None:
        src = op.inputs[0]
        if src not in self.consts:
            raise ModelFileError("DEQUANTIZE of a computed tensor is not supported")
        self.consts[op.outputs[0]] = self.consts[src].astype(np.float32)


def tflite_to_onnx(graph: TfGraph, *, input_name: str = "input", output_names: Sequence[str] | None = None,
                   graph_name: str = "tflite", doc: str = "") -> onnx.ModelProto:
    """Convert ``graph`` (one 4-D NHWC float image input) into an ONNX model.

    Args:
        graph: from :func:`edgefer.export.tflite_reader.read_tflite`.
        input_name: the ONNX input's name; its shape is (N, C, H, W) float32 (N dynamic).
        output_names: names for the graph's outputs, in TFLite's order (default: the TFLite names). Outputs keep
            TFLite's shape (a 4-D output is returned NHWC) with a dynamic batch N.
        graph_name, doc: stored in the ONNX graph.

    Returns:
        the ONNX model (opset :data:`OPSET`), checked with ``onnx.checker``.

    Raises:
        ModelFileError: an unsupported operator, activation or layout; a graph whose input is not one 4-D image.
    """
    conv = _Converter(graph)
    if len(graph.inputs) != 1 or len(graph.tensor(graph.inputs[0]).shape) != 4:
        raise ModelFileError("edgefer converts TFLite models with one 4-D (NHWC) image input only")
    src = graph.tensor(graph.inputs[0])
    _, h, w, c = src.shape
    conv.names[src.index], conv.nchw[src.index] = input_name, True
    for op in graph.operators:
        conv.convert(op)
    names = list(output_names) if output_names is not None else [graph.tensor(i).name for i in graph.outputs]
    if len(names) != len(graph.outputs):
        raise ModelFileError(f"the model has {len(graph.outputs)} outputs, {len(names)} names were given")
    outputs = []
    for index, name in zip(graph.outputs, names):
        value = conv.value(index)
        shape = list(graph.tensor(index).shape)
        if conv.nchw.get(index, False):
            value = conv.node("Transpose", [value], perm=[0, 2, 3, 1])
        conv.node("Identity", [value], name)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape[1:]]))
    onnx_graph = helper.make_graph(
        conv.nodes, graph_name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", c, h, w])],
        outputs, initializer=conv.initializers, doc_string=doc)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgefer")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
