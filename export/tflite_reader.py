"""A ``.tflite`` flatbuffer -> a small, plain graph (tensors with numpy constants, operators with their options).

The flatbuffer is parsed by the ``tflite`` package (generated from TensorFlow Lite's ``schema.fbs``; pure Python
on ``flatbuffers``, ``pip install edgefer[zoo]``). This module turns its lazy accessors into dataclasses that the
ONNX converter (:mod:`edgefer.export.tflite_to_onnx`) walks: it knows nothing of ONNX, and nothing here imports
torch.

Only what a float model needs is read: the first subgraph, tensor shapes and types, constant buffers (float32,
float16, int32; a float16 constant is kept as float16 and its ``DEQUANTIZE`` stays an operator, which the
converter folds), builtin operator codes and the options of the operators the converter supports. Quantised
(int8/uint8) tensors are refused.

Raises :class:`edgefer.errors.ModelFileError`, one line, for a file that is missing, not a TFLite flatbuffer
(the ``TFL3`` identifier), truncated or corrupt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.errors import BackendUnavailableError, ModelFileError

#: TFLite's file identifier, bytes 4..8 of every model.
FILE_IDENTIFIER = b"TFL3"

#: TFLite TensorType code -> numpy dtype (the float models edgefer converts use only these).
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
#: Most tensors / operators / buffers a model may claim before it is refused as corrupt (BlazeFace has ~600).
MAX_ENTRIES = 1_000_000
#: Fused activation codes (``ActivationFunctionType``).
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}
#: Padding codes (``Padding``).
PADDINGS = {0: "SAME", 1: "VALID"}


@dataclass
class TfTensor:
    """One tensor: ``shape`` (NHWC for 4-D activations), numpy ``dtype``, and ``data`` for a constant."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: Any
    data: np.ndarray | None = None


@dataclass
class TfOperator:
    """One operator: its builtin name (``"CONV_2D"``), input / output tensor indices (-1: absent), options."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TfGraph:
    """The first subgraph of a ``.tflite`` model, in execution order."""

    tensors: list[TfTensor]
    operators: list[TfOperator]
    inputs: list[int]
    outputs: list[int]
    source: str = ""

    def tensor(self, index: int) -> TfTensor:
        return self.tensors[index]


def read_tflite(path: str | Path) -> TfGraph:
    """Parse the ``.tflite`` file ``path``.

    Returns:
        its first subgraph as a :class:`TfGraph`.

    Raises:
        ModelFileError: missing or unreadable file, not a TFLite flatbuffer, truncated or corrupt, quantised tensors,
            or not exactly one subgraph.
        BackendUnavailableError: the ``tflite`` package is missing (``pip install edgefer[zoo]``).
    """
    try:
        buf = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{path} is not a TensorFlow Lite model (no 'TFL3' flatbuffer identifier)")
    try:
        import tflite
    except ImportError:
        raise BackendUnavailableError("reading a .tflite model needs the tflite package: "
                                      "pip install edgefer[zoo]") from None
    try:
        graph = _parse(tflite, buf)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except Exception as exc:  # the generated accessors raise struct.error / IndexError / ... on a corrupt buffer
        raise ModelFileError(f"{path} is a truncated or corrupt TensorFlow Lite model "
                             f"({type(exc).__name__}: {exc})") from None
    graph.source = str(path)
    return graph


def _parse(tflite, buf: bytes) -> TfGraph:
    from tflite.BuiltinOperator import BuiltinOperator

    op_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(buf, 0)
    for what, count in (("subgraphs", model.SubgraphsLength()), ("buffers", model.BuffersLength()),
                        ("operator codes", model.OperatorCodesLength())):
        if not 0 <= count <= MAX_ENTRIES:
            raise ModelFileError(f"claims {count} {what} (corrupt?)")
    if model.SubgraphsLength() != 1:
        raise ModelFileError(f"has {model.SubgraphsLength()} subgraphs; edgefer converts single-graph models only")
    sub = model.Subgraphs(0)
    if not (0 <= sub.TensorsLength() <= MAX_ENTRIES and 0 <= sub.OperatorsLength() <= MAX_ENTRIES):
        raise ModelFileError(f"claims {sub.TensorsLength()} tensors and {sub.OperatorsLength()} operators (corrupt?)")
    tensors = [_tensor(model, sub.Tensors(i), i, buf) for i in range(sub.TensorsLength())]
    operators = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if kind == "CUSTOM":
            custom = code.CustomCode()
            kind = f"CUSTOM({custom.decode() if custom else '?'})"
        operators.append(TfOperator(kind, [int(v) for v in op.InputsAsNumpy()], [int(v) for v in op.OutputsAsNumpy()],
                                    _options(tflite, kind, op)))
    return TfGraph(tensors, operators, [int(v) for v in sub.InputsAsNumpy()], [int(v) for v in sub.OutputsAsNumpy()])


def _tensor(model, t, index: int, buf: bytes) -> TfTensor:
    name = (t.Name() or b"").decode("utf-8", "replace")
    if t.Type() not in _DTYPES:
        raise ModelFileError(f"tensor {name!r} has TFLite type {t.Type()} (quantised or unsupported); edgefer "
                             f"converts float32 / float16 models only")
    if t.Quantization() is not None and t.Quantization().ScaleLength():
        raise ModelFileError(f"tensor {name!r} is quantised; edgefer converts float models only")
    dtype = _DTYPES[t.Type()]
    shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    data = None
    b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
    if b is not None:
        raw = b.DataAsNumpy() if b.DataLength() else None
        if raw is None and b.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = np.frombuffer(buf, np.uint8, count=b.Size(), offset=b.Offset())
        if raw is not None and not isinstance(raw, int):
            count = int(np.prod(shape)) if shape else 1
            if raw.size != count * np.dtype(dtype).itemsize:
                raise ModelFileError(f"constant {name!r} holds {raw.size} bytes, its shape {shape} needs "
                                     f"{count * np.dtype(dtype).itemsize}")
            data = np.frombuffer(raw.tobytes(), dtype).reshape(shape)
    return TfTensor(index, name, shape, dtype, data)


def _options(tflite, kind: str, op) -> dict[str, Any]:
    """The options of the operators the converter supports, as plain values."""
    table = op.BuiltinOptions()
    if table is None:
        return {}

    def read(cls):
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    if kind == "CONV_2D":
        o = read(tflite.Conv2DOptions)
        return dict(padding=PADDINGS[o.Padding()], stride=(o.StrideH(), o.StrideW()),
                    dilation=(o.DilationHFactor(), o.DilationWFactor()),
                    activation=ACTIVATIONS[o.FusedActivationFunction()])
    if kind == "DEPTHWISE_CONV_2D":
        o = read(tflite.DepthwiseConv2DOptions)
        return dict(padding=PADDINGS[o.Padding()], stride=(o.StrideH(), o.StrideW()),
                    dilation=(o.DilationHFactor(), o.DilationWFactor()), depth_multiplier=o.DepthMultiplier(),
                    activation=ACTIVATIONS[o.FusedActivationFunction()])
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = read(tflite.Pool2DOptions)
        return dict(padding=PADDINGS[o.Padding()], stride=(o.StrideH(), o.StrideW()),
                    kernel=(o.FilterHeight(), o.FilterWidth()), activation=ACTIVATIONS[o.FusedActivationFunction()])
    if kind in ("ADD", "MUL", "SUB"):
        cls = {"ADD": tflite.AddOptions, "MUL": tflite.MulOptions, "SUB": tflite.SubOptions}[kind]
        return dict(activation=ACTIVATIONS[read(cls).FusedActivationFunction()])
    if kind == "CONCATENATION":
        o = read(tflite.ConcatenationOptions)
        return dict(axis=o.Axis(), activation=ACTIVATIONS[o.FusedActivationFunction()])
    if kind == "RESIZE_BILINEAR":
        o = read(tflite.ResizeBilinearOptions)
        return dict(align_corners=bool(o.AlignCorners()), half_pixel_centers=bool(o.HalfPixelCenters()))
    if kind == "RESHAPE":
        o = read(tflite.ReshapeOptions)
        return dict(new_shape=tuple(int(v) for v in o.NewShapeAsNumpy()) if o.NewShapeLength() else None)
    return {}
