"""Make ``torch.onnx.export`` emit edgefer's two kernels as ``edgefer``-domain custom nodes.

A model built with ``kernels="cpp"`` calls the torch ops ``torch.ops.edgefer.temporal_attention`` and
``torch.ops.edgefer.multiscale_embedding`` (registered with ``torch.library`` by :mod:`edgefer.ops.cpp`).
This module maps them onto the ONNX nodes that ``libedgefer_ortops`` implements (see :mod:`edgefer.ortops`):

- ``edgefer::temporal_attention(qkv, num_heads, scale=None)`` -> ``edgefer.TemporalAttention(qkv)``,
  attributes ``num_heads`` (int) and ``scale`` (float, 0.0 standing for None = 1/sqrt(d_h));
- ``edgefer::multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual=None, grid=4)`` ->
  ``edgefer.MultiScaleEmbedding(feat, weight, bias, pos_t, pos_s[, residual])``, attribute ``grid`` (int).

Both exporters of torch 2.13 work: the TorchScript one (``dynamo=False``) through
``torch.onnx.register_custom_op_symbolic`` plus ``custom_opsets``, the torch.export-based one (``dynamo=True``)
through a ``custom_translation_table`` of onnxscript calls. :func:`export_kwargs` gives the extra
``torch.onnx.export`` keyword arguments for either. The exported model's metadata must list
``custom_ops = ("edgefer",)`` (:data:`CUSTOM_OPS`) so that the runtime registers the library.
"""

from __future__ import annotations

from functools import lru_cache

import torch

#: (domain, opset version) of the custom nodes.
CUSTOM_OPSET = ("edgefer", 1)
#: The value of ``ModelMetadata.custom_ops`` for a model exported with these nodes.
CUSTOM_OPS = ("edgefer",)
#: Exporters :func:`export_kwargs` supports (the names used by :mod:`export.onnx_export`).
EXPORTERS = ("torchscript", "dynamo")

_DOMAIN, _VERSION = CUSTOM_OPSET


def export_kwargs(exporter: str = "torchscript") -> dict:
    """Keyword arguments to merge into ``torch.onnx.export`` so edgefer's torch ops become custom nodes.

    Args:
        exporter: ``"torchscript"`` (``torch.onnx.export(..., dynamo=False)``; registers the symbolic functions
            process-wide on first use and returns ``custom_opsets``) or ``"dynamo"`` (returns
            ``custom_translation_table``).

    Returns:
        A new dict of keyword arguments.

    Raises:
        ValueError: unknown exporter.
        RuntimeError: the ``edgefer`` torch ops are not registered (``edgefer.ops.cpp`` missing or its compiled
            extension ``edgefer._C`` not built), so a ``kernels="cpp"`` model could not run either.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; choose one of {EXPORTERS}")
    _require_torch_ops()
    if exporter == "torchscript":
        _register_symbolics()
        return {"custom_opsets": {_DOMAIN: _VERSION}}
    return {"custom_translation_table": _translation_table()}


def _require_torch_ops() -> None:
    try:
        import edgefer.ops.cpp  # noqa: F401  registers torch.ops.edgefer.*
    except ImportError as exc:
        raise RuntimeError(f"edgefer's compiled torch ops are unavailable ({exc}); build edgefer._C to export "
                           "custom ops") from None
    for name in ("temporal_attention", "multiscale_embedding"):
        if not hasattr(torch.ops.edgefer, name):
            raise RuntimeError(f"torch.ops.edgefer.{name} is not registered; build edgefer._C to export custom ops")


# ---- TorchScript exporter ---------------------------------------------------------------------------------------

def _const_or(g_value, kind: str, default):
    from torch.onnx import symbolic_helper

    if g_value is None or symbolic_helper._is_none(g_value):
        return default
    return symbolic_helper._get_const(g_value, kind, "attribute")


def _symbolic_temporal_attention(g, qkv, num_heads, scale=None):
    heads = int(_const_or(num_heads, "i", None))
    value = float(_const_or(scale, "f", 0.0))
    out = g.op(f"{_DOMAIN}::TemporalAttention", qkv, num_heads_i=heads, scale_f=value)
    sizes = _sizes(qkv)
    if sizes is not None and len(sizes) == 4:
        sizes[3] = sizes[3] // 3 if sizes[3] is not None else None
    _set_type(out, qkv, sizes)
    return out


def _symbolic_multiscale_embedding(g, feat, weight, bias, pos_t, pos_s, residual=None, grid=None):
    from torch.onnx import symbolic_helper

    inputs = [feat, weight, bias, pos_t, pos_s]
    if residual is not None and not symbolic_helper._is_none(residual):
        inputs.append(residual)
    grid = int(_const_or(grid, "i", 4))
    out = g.op(f"{_DOMAIN}::MultiScaleEmbedding", *inputs, grid_i=grid)
    feat_sizes, pos_t_sizes = _sizes(feat), _sizes(pos_t)
    sizes = None
    if feat_sizes and pos_t_sizes and len(feat_sizes) == 4 and len(pos_t_sizes) == 2:
        T, D = pos_t_sizes  # parameters: static
        BT = feat_sizes[0]
        sizes = [BT // T if BT is not None and T else None, T, grid * grid, D]
    _set_type(out, feat, sizes)
    return out


def _sizes(value) -> list | None:
    """The input's sizes as the exporter knows them, None for a dynamic (symbolic) axis."""
    kind = value.type()
    if kind.kind() != "TensorType":
        return None
    sizes = kind.varyingSizes()
    return list(sizes) if sizes is not None else None


def _set_type(out, like, sizes: list | None) -> None:
    # Without an explicit type the TorchScript exporter records the traced example's static shape for a custom
    # node's output (batch 1), and ONNX Runtime then bakes that batch into fused reshapes downstream. Dynamic
    # axes of the input stay dynamic (None) here.
    kind = like.type()
    if kind.kind() == "TensorType":
        out.setType(kind.with_sizes(sizes))


@lru_cache(maxsize=None)
def _register_symbolics() -> None:
    # The symbolic functions are keyed by op name and apply from opset 1 of the default domain on.
    torch.onnx.register_custom_op_symbolic("edgefer::temporal_attention", _symbolic_temporal_attention, 1)
    torch.onnx.register_custom_op_symbolic("edgefer::multiscale_embedding", _symbolic_multiscale_embedding, 1)


# ---- torch.export-based (dynamo) exporter ----------------------------------------------------------------------

@lru_cache(maxsize=None)
def _schemas() -> dict:
    from onnx.defs import OpSchema

    def param(name: str, optional: bool = False) -> OpSchema.FormalParameter:
        option = OpSchema.FormalParameterOption.Optional if optional else OpSchema.FormalParameterOption.Single
        return OpSchema.FormalParameter(name, "T", param_option=option)

    types = [("T", ["tensor(float)"], "float32 tensors")]
    attention = OpSchema(
        "TemporalAttention", _DOMAIN, _VERSION, inputs=[param("qkv")], outputs=[param("out")],
        type_constraints=types,
        attributes=[OpSchema.Attribute("num_heads", OpSchema.AttrType.INT, "heads H"),
                    OpSchema.Attribute("scale", OpSchema.AttrType.FLOAT, "softmax scale; 0 = 1/sqrt(d_h)")])
    embedding = OpSchema(
        "MultiScaleEmbedding", _DOMAIN, _VERSION,
        inputs=[param("feat"), param("weight"), param("bias"), param("pos_t"), param("pos_s"),
                param("residual", optional=True)],
        outputs=[param("out")], type_constraints=types,
        attributes=[OpSchema.Attribute("grid", OpSchema.AttrType.INT, "patches per side G")])
    return {"TemporalAttention": attention, "MultiScaleEmbedding": embedding}


def _onnx_op(name: str):
    from onnxscript.values import Op, Opset

    return Op(Opset(_DOMAIN, _VERSION), name, _schemas()[name])


def _translate_temporal_attention(qkv, num_heads: int, scale: float | None = None):
    return _onnx_op("TemporalAttention")(qkv, num_heads=int(num_heads),
                                         scale=0.0 if scale is None else float(scale))


def _translate_multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual=None, grid: int = 4):
    inputs = [feat, weight, bias, pos_t, pos_s] + ([residual] if residual is not None else [])
    return _onnx_op("MultiScaleEmbedding")(*inputs, grid=int(grid))


def _translation_table() -> dict:
    return {
        torch.ops.edgefer.temporal_attention.default: _translate_temporal_attention,
        torch.ops.edgefer.multiscale_embedding.default: _translate_multiscale_embedding,
    }
