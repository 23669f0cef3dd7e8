"""Building an ONNX graph from a Keras CNN read by :mod:`export.keras_hdf5`, with onnx.helper (no TensorFlow).

The Keras model is channels-last (N, H, W, C); the ONNX graph is channels-first (N, C, H, W), so kernels are
transposed and a softmax over the channels becomes ``Softmax(axis=1)``. Supported layers and their Keras
semantics (keras.io layer reference, Keras 2):

- ``Conv2D``: cross-correlation, ``padding="valid"`` (no padding) or ``"same"`` (output ``ceil(in / stride)``,
  total padding ``max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)``, the smaller half before and the
  larger half after -- TensorFlow's rule: with an odd total the extra row/column goes to the bottom/right),
  optional bias and activation.
- ``SeparableConv2D``: a depthwise conv (stride, padding and dilation applied here; output channel
  ``c * depth_multiplier + m`` reads input channel ``c``) followed by a 1x1 pointwise conv, then bias and
  activation. ``DepthwiseConv2D``: the depthwise part alone.
- ``BatchNormalization`` (inference): ``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``
  with the layer's own ``epsilon``; ``center``/``scale`` off mean beta = 0 / gamma = 1.
- ``Activation`` (relu, softmax, sigmoid, tanh, linear), ``ReLU``, ``Add``, ``Dropout`` (identity at inference).
- ``MaxPooling2D`` / ``AveragePooling2D`` with ``"valid"``/``"same"`` padding (padded cells never win a max and
  are not counted in an average).
- ``GlobalAveragePooling2D``: mean over H and W, giving (N, C).

Anything else raises :class:`edgefer.errors.ModelFileError` naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgefer.errors import ModelFileError

from .keras_hdf5 import KerasLayer, KerasModel

#: ONNX opset the graphs use (ONNX Runtime >= 1.12 and TensorRT 8.5+ read it).
OPSET = 17
#: IR version matching :data:`OPSET`, so older runtimes on edge devices accept the file.
IR_VERSION = 8

_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


@dataclass
class _Tensor:
    """An ONNX value standing for a Keras layer's output: its name and shape (C, H, W) or (C,)."""

    name: str
    shape: tuple[int, ...]


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int, int]:
    """Keras/TensorFlow ``"same"`` padding along one axis: ``(out_size, pad_before, pad_after)``.

    ``out = ceil(size / stride)``; the total padding is split with the extra unit (odd totals) after.
    """
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2, total - total // 2


def _valid_size(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    effective = (kernel - 1) * dilation + 1
    if size < effective:
        raise ModelFileError(f"a {kernel}x{kernel} 'valid' window does not fit a spatial size of {size}")
    return (size - effective) // stride + 1


def _weight(layer: KerasLayer, key: str) -> np.ndarray:
    """The layer's weight ``key``, or ModelFileError naming the layer and what it holds."""
    if key not in layer.weights:
        raise ModelFileError(f"{layer.class_name} layer {layer.name!r} has no {key!r} weights "
                             f"(it holds {sorted(layer.weights) or 'none'})")
    return layer.weights[key]


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    # -- spatial windows ------------------------------------------------------------------------------------
    @staticmethod
    def window(layer: KerasLayer, shape: tuple[int, ...], kernel: tuple[int, int], strides: tuple[int, int],
               dilation: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
        """ONNX ``pads`` [top, left, bottom, right] and the output (H, W) of a Keras window op."""
        if len(shape) != 3:
            raise ModelFileError(f"layer {layer.name!r} ({layer.class_name}) needs a (H, W, C) input")
        _, h, w = shape
        padding = layer.config.get("padding", "valid")
        if padding == "same":
            oh, top, bottom = same_padding(h, kernel[0], strides[0], dilation[0])
            ow, left, right = same_padding(w, kernel[1], strides[1], dilation[1])
            return [top, left, bottom, right], (oh, ow)
        if padding == "valid":
            return [0, 0, 0, 0], (_valid_size(h, kernel[0], strides[0], dilation[0]),
                                  _valid_size(w, kernel[1], strides[1], dilation[1]))
        raise ModelFileError(f"layer {layer.name!r} has padding {padding!r}; only 'same' and 'valid' are supported")

    def activation(self, layer: KerasLayer, x: _Tensor, kind: str, out: str) -> _Tensor:
        if kind == "linear":
            return _Tensor(self.node("Identity", [x.name], out), x.shape)
        if kind not in _ACTIVATIONS:
            raise ModelFileError(f"layer {layer.name!r} has activation {kind!r}, which the converter does not support")
        attrs = {"axis": 1} if kind == "softmax" else {}
        return _Tensor(self.node(_ACTIVATIONS[kind], [x.name], out, **attrs), x.shape)

    # -- layers ---------------------------------------------------------------------------------------------
    def conv(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        cfg = layer.config
        kernel = _weight(layer, "kernel")
        kh, kw, cin, cout = kernel.shape
        strides, dilation = tuple(cfg.get("strides", (1, 1))), tuple(cfg.get("dilation_rate", (1, 1)))
        if cin != x.shape[0]:
            raise ModelFileError(f"Conv2D {layer.name!r} kernel expects {cin} channels, its input has {x.shape[0]}")
        pads, (oh, ow) = self.window(layer, x.shape, (kh, kw), strides, dilation)
        inputs = [x.name, self.const(f"{layer.name}.weight", kernel.transpose(3, 2, 0, 1))]
        if cfg.get("use_bias", True):
            inputs.append(self.const(f"{layer.name}.bias", _weight(layer, "bias")))
        y = _Tensor(self.node("Conv", inputs, f"{layer.name}.conv", kernel_shape=[kh, kw], strides=list(strides),
                              dilations=list(dilation), pads=pads), (cout, oh, ow))
        return self.activation(layer, y, cfg.get("activation", "linear"), layer.name)

    def depthwise(self, layer: KerasLayer, x: _Tensor, out: str) -> _Tensor:
        cfg = layer.config
        kernel = _weight(layer, "depthwise_kernel")
        kh, kw, cin, multiplier = kernel.shape
        if cin != x.shape[0]:
            raise ModelFileError(f"{layer.name!r} depthwise kernel expects {cin} channels, its input has {x.shape[0]}")
        strides, dilation = tuple(cfg.get("strides", (1, 1))), tuple(cfg.get("dilation_rate", (1, 1)))
        pads, (oh, ow) = self.window(layer, x.shape, (kh, kw), strides, dilation)
        # Keras output channel c * multiplier + m reads input channel c: ONNX group conv, one group per channel.
        weight = kernel.transpose(2, 3, 0, 1).reshape(cin * multiplier, 1, kh, kw)
        inputs = [x.name, self.const(f"{layer.name}.depthwise_weight", weight)]
        return _Tensor(self.node("Conv", inputs, out, kernel_shape=[kh, kw], strides=list(strides),
                                 dilations=list(dilation), pads=pads, group=cin), (cin * multiplier, oh, ow))

    def separable(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        y = self.depthwise(layer, x, f"{layer.name}.depthwise")
        pointwise = _weight(layer, "pointwise_kernel")
        cout = pointwise.shape[3]
        inputs = [y.name, self.const(f"{layer.name}.pointwise_weight", pointwise.transpose(3, 2, 0, 1))]
        if layer.config.get("use_bias", True):
            inputs.append(self.const(f"{layer.name}.bias", _weight(layer, "bias")))
        z = _Tensor(self.node("Conv", inputs, f"{layer.name}.pointwise", kernel_shape=[1, 1]), (cout,) + y.shape[1:])
        return self.activation(layer, z, layer.config.get("activation", "linear"), layer.name)

    def depthwise_layer(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        y = self.depthwise(layer, x, f"{layer.name}.depthwise")
        if layer.config.get("use_bias", True):
            y = _Tensor(self.node("Add", [y.name, self.const(f"{layer.name}.bias",
                                                            _weight(layer, "bias").reshape(-1, 1, 1))],
                                  f"{layer.name}.biased"), y.shape)
        return self.activation(layer, y, layer.config.get("activation", "linear"), layer.name)

    def batch_norm(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        cfg = layer.config
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, len(x.shape)):
            raise ModelFileError(f"BatchNormalization {layer.name!r} normalises axis {axis}, not the channels")
        c = x.shape[0]
        gamma = _weight(layer, "gamma") if cfg.get("scale", True) else np.ones(c, np.float32)
        beta = _weight(layer, "beta") if cfg.get("center", True) else np.zeros(c, np.float32)
        inputs = [x.name] + [self.const(f"{layer.name}.{k}", v) for k, v in
                             (("gamma", gamma), ("beta", beta), ("moving_mean", _weight(layer, "moving_mean")),
                              ("moving_variance", _weight(layer, "moving_variance")))]
        return _Tensor(self.node("BatchNormalization", inputs, layer.name, epsilon=float(cfg["epsilon"])), x.shape)

    def pool(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        cfg = layer.config
        size = tuple(cfg.get("pool_size", (2, 2)))
        strides = tuple(cfg.get("strides") or size)
        pads, (oh, ow) = self.window(layer, x.shape, size, strides, (1, 1))
        if layer.class_name == "MaxPooling2D":
            return _Tensor(self.node("MaxPool", [x.name], layer.name, kernel_shape=list(size), strides=list(strides),
                                     pads=pads), (x.shape[0], oh, ow))
        return _Tensor(self.node("AveragePool", [x.name], layer.name, kernel_shape=list(size), strides=list(strides),
                                 pads=pads, count_include_pad=0), (x.shape[0], oh, ow))

    def global_average(self, layer: KerasLayer, x: _Tensor) -> _Tensor:
        pooled = self.node("GlobalAveragePool", [x.name], f"{layer.name}.pool")
        return _Tensor(self.node("Flatten", [pooled], layer.name, axis=1), (x.shape[0],))

    def add(self, layer: KerasLayer, xs: list[_Tensor]) -> _Tensor:
        if len({t.shape for t in xs}) != 1:
            raise ModelFileError(f"Add layer {layer.name!r} adds tensors of different shapes {[t.shape for t in xs]}")
        total = xs[0].name
        for i, t in enumerate(xs[1:], start=1):
            total = self.node("Add", [total, t.name], layer.name if i == len(xs) - 1 else f"{layer.name}.{i}")
        return _Tensor(total, xs[0].shape)


def _input_shape(layer: KerasLayer) -> tuple[int, int, int]:
    cfg = layer.config
    shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ModelFileError(f"input {layer.name!r} is not channels_last")
    if shape is None or len(shape) != 4 or any(s is None for s in shape[1:]):
        raise ModelFileError(f"input {layer.name!r} has shape {shape}; a static (None, H, W, C) image is required")
    _, h, w, c = shape
    return int(c), int(h), int(w)


def keras_to_onnx_graph(model: KerasModel, *, input_name: str = "input"
                        ) -> tuple[_GraphBuilder, str, tuple[int, ...], str, tuple[int, ...]]:
    """Translate ``model``'s layers into ONNX nodes.

    Returns the builder (its ``nodes`` and ``initializers``), the graph input's name and (C, H, W) shape, and
    the ONNX name and shape of the model's (single) output layer.

    Raises:
        ModelFileError: an unsupported layer, activation, padding, data format, or a graph that is not a single
            image input and a single output.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"expected one input and one output layer, got {model.inputs} -> {model.outputs}")
    b = _GraphBuilder()
    tensors: dict[str, _Tensor] = {}
    input_shape: tuple[int, ...] = ()
    for layer in model.layers:
        if layer.config.get("data_format", "channels_last") != "channels_last":
            raise ModelFileError(f"layer {layer.name!r} is {layer.config['data_format']}; "
                                 "only channels_last is supported")
        missing = [n for n in layer.inbound if n not in tensors]
        if missing:
            raise ModelFileError(f"layer {layer.name!r} reads {missing} before they are defined")
        xs = [tensors[n] for n in layer.inbound]
        kind = layer.class_name
        if kind == "InputLayer":
            if layer.name != model.inputs[0]:
                raise ModelFileError(f"input layer {layer.name!r} is not the model's input {model.inputs[0]!r}")
            input_shape = _input_shape(layer)
            tensors[layer.name] = _Tensor(input_name, input_shape)
            continue
        if kind != "Add" and len(xs) != 1:
            raise ModelFileError(f"layer {layer.name!r} ({kind}) has {len(xs)} inputs; expected 1")
        if kind == "Conv2D":
            y = b.conv(layer, xs[0])
        elif kind == "SeparableConv2D":
            y = b.separable(layer, xs[0])
        elif kind == "DepthwiseConv2D":
            y = b.depthwise_layer(layer, xs[0])
        elif kind == "BatchNormalization":
            y = b.batch_norm(layer, xs[0])
        elif kind == "Activation":
            y = b.activation(layer, xs[0], layer.config["activation"], layer.name)
        elif kind == "ReLU" and not layer.config.get("max_value") and not layer.config.get("negative_slope"):
            y = b.activation(layer, xs[0], "relu", layer.name)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            y = b.pool(layer, xs[0])
        elif kind == "GlobalAveragePooling2D":
            y = b.global_average(layer, xs[0])
        elif kind == "Add":
            y = b.add(layer, xs)
        elif kind == "Dropout":
            y = b.activation(layer, xs[0], "linear", layer.name)
        else:
            raise ModelFileError(f"layer {layer.name!r} is a {kind}, which the Keras converter does not support")
        tensors[layer.name] = y
    out = tensors.get(model.outputs[0])
    if out is None:
        raise ModelFileError(f"output layer {model.outputs[0]!r} is not in the layer list")
    return b, input_name, input_shape, out.name, out.shape


def make_model(builder: _GraphBuilder, input_name: str, input_shape: tuple[int, ...], output_name: str,
               output_shape: tuple[int, ...], *, graph_name: str, doc: str = "") -> onnx.ModelProto:
    """Wrap the builder's nodes in an ONNX model with a dynamic batch axis ``N`` and the opset of this module."""
    graph = helper.make_graph(
        builder.nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", *output_shape])],
        initializer=builder.initializers, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgefer")
    model.ir_version = IR_VERSION
    return model
