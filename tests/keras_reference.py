"""An independent numpy forward pass of a Keras 2 HDF5 CNN, written from the Keras layer semantics.

Test code only: it shares nothing with ``export/keras_*.py`` (it reads the HDF5 file itself and runs the
layers channels-last in float64), so the converted ONNX graph can be checked against it.

Keras semantics implemented (keras.io layer reference, Keras 2, TensorFlow backend):

- ``Conv2D``: ``y[n, i, j, o] = sum_{a, b, c} x_pad[n, i*s + a*d, j*s + b*d, c] * K[a, b, c, o] (+ bias)``.
  ``padding="valid"`` pads nothing; ``"same"`` gives ``ceil(size / stride)`` outputs and pads
  ``max((out - 1) * stride + (k - 1) * d + 1 - size, 0)`` in total, ``floor(total / 2)`` before (top/left)
  and the rest after (bottom/right).
- ``DepthwiseConv2D``: channel ``c`` convolved with ``K[:, :, c, m]``; output channel ``c * M + m``.
- ``SeparableConv2D``: depthwise (with the layer's stride/padding), then a 1x1 pointwise conv, bias, activation.
- ``BatchNormalization``: ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the layer's epsilon.
- ``MaxPooling2D``/``AveragePooling2D``: windows over the same padding; padded cells are ignored.
- ``Add``, ``Activation`` (relu/softmax/linear/sigmoid/tanh), ``Dropout`` (identity), ``GlobalAveragePooling2D``.
"""

from __future__ import annotations

import json

import h5py
import numpy as np


def _pads(size: int, k: int, s: int, d: int, mode: str) -> tuple[int, int, int]:
    """(before, after, out) for one spatial axis."""
    span = d * (k - 1) + 1
    if mode == "valid":
        return 0, 0, (size - span) // s + 1
    assert mode == "same", mode
    out = (size + s - 1) // s
    need = (out - 1) * s + span - size
    need = need if need > 0 else 0
    return need // 2, need - need // 2, out


def _windows(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], mode: str,
             fill: float):
    """Yield (a, b, view) for each kernel tap: view[n, i, j, c] = x_pad[n, i*s + a*d, j*s + b*d, c]."""
    top, bottom, oh = _pads(x.shape[1], k[0], s[0], d[0], mode)
    left, right, ow = _pads(x.shape[2], k[1], s[1], d[1], mode)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    for a in range(k[0]):
        for b in range(k[1]):
            r0, c0 = a * d[0], b * d[1]
            yield a, b, xp[:, r0:r0 + s[0] * (oh - 1) + 1:s[0], c0:c0 + s[1] * (ow - 1) + 1:s[1], :]


def conv2d(x, kernel, strides, dilation, mode):
    """Keras Conv2D without bias: x (N, H, W, C), kernel (kh, kw, C, O)."""
    out = None
    for a, b, view in _windows(x, kernel.shape[:2], strides, dilation, mode, 0.0):
        term = np.tensordot(view, kernel[a, b], axes=([3], [0]))
        out = term if out is None else out + term
    return out


def depthwise2d(x, kernel, strides, dilation, mode):
    """Keras depthwise conv: x (N, H, W, C), kernel (kh, kw, C, M) -> (N, H', W', C*M), channel c*M + m."""
    out = None
    for a, b, view in _windows(x, kernel.shape[:2], strides, dilation, mode, 0.0):
        term = view[..., :, None] * kernel[a, b][None, None, None]
        out = term if out is None else out + term
    n, h, w, c, m = out.shape
    return out.reshape(n, h, w, c * m)


def max_pool(x, size, strides, mode):
    """Max over each window; padded cells hold -inf and never win."""
    out = None
    for _, _, view in _windows(x, size, strides, (1, 1), mode, -np.inf):
        out = view.copy() if out is None else np.maximum(out, view)
    return out


def avg_pool(x, size, strides, mode):
    """Mean over each window's cells inside the image (padding is not counted)."""
    ones = np.ones_like(x[:1, ..., :1])
    count = sum(view for _, _, view in _windows(ones, size, strides, (1, 1), mode, 0.0))
    total = sum(view for _, _, view in _windows(x, size, strides, (1, 1), mode, 0.0))
    return total / count


def activate(x, name):
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise NotImplementedError(name)


class KerasReference:
    """Run a Keras 2 HDF5 model's forward pass in numpy float64: ``KerasReference(path)(x_nhwc)``."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            group = f["model_weights"] if "model_weights" in f else f
            self.weights = {}
            for name in group:
                names = [n.decode() if isinstance(n, bytes) else n for n in group[name].attrs["weight_names"]]
                self.weights[name] = {n.split("/")[-1].split(":")[0]: np.array(group[name][n], dtype=np.float64)
                                      for n in names}
        self.layers = cfg["config"]["layers"]
        self.output = cfg["config"]["output_layers"][0][0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (N, H, W, C) float, already scaled; returns the output layer's values (float64)."""
        values = {}
        for layer in self.layers:
            kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
            srcs = [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            ins = [values[s] for s in srcs]
            w = self.weights.get(name, {})
            mode = cfg.get("padding")
            s, d = tuple(cfg.get("strides", (1, 1)) or ()), tuple(cfg.get("dilation_rate", (1, 1)))
            if kind == "InputLayer":
                y = np.asarray(x, dtype=np.float64)
            elif kind == "Conv2D":
                y = conv2d(ins[0], w["kernel"], s, d, mode)
                y = activate(y + w["bias"] if cfg["use_bias"] else y, cfg["activation"])
            elif kind == "DepthwiseConv2D":
                y = depthwise2d(ins[0], w["depthwise_kernel"], s, d, mode)
                y = activate(y + w["bias"] if cfg["use_bias"] else y, cfg["activation"])
            elif kind == "SeparableConv2D":
                y = depthwise2d(ins[0], w["depthwise_kernel"], s, d, mode)
                y = conv2d(y, w["pointwise_kernel"], (1, 1), (1, 1), "valid")
                y = activate(y + w["bias"] if cfg["use_bias"] else y, cfg["activation"])
            elif kind == "BatchNormalization":
                c = ins[0].shape[-1]
                gamma = w["gamma"] if cfg.get("scale", True) else np.ones(c)
                beta = w["beta"] if cfg.get("center", True) else np.zeros(c)
                y = gamma * (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) + beta
            elif kind == "Activation":
                y = activate(ins[0], cfg["activation"])
            elif kind == "MaxPooling2D":
                y = max_pool(ins[0], tuple(cfg["pool_size"]), tuple(cfg["strides"]), mode)
            elif kind == "AveragePooling2D":
                y = avg_pool(ins[0], tuple(cfg["pool_size"]), tuple(cfg["strides"]), mode)
            elif kind == "Add":
                y = sum(ins)
            elif kind == "Dropout":
                y = ins[0]
            elif kind == "GlobalAveragePooling2D":
                y = ins[0].mean(axis=(1, 2))
            else:
                raise NotImplementedError(kind)
            values[name] = y
        return values[self.output]
