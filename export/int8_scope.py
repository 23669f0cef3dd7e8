"""Which nodes of an fp32 ONNX graph an int8 export quantizes: the scope, and the nodes kept in fp32.

Scopes (:data:`SCOPES`):

- ``"conv"``: the convolutional path (:func:`conv_path`): every ``Conv``, and each ``Relu``, ``MaxPool`` and
  ``Add`` fed by that path (ResNet-18's activations, pooling and residual adds).
- ``"conv+linear"`` (the default): the convolutional path plus the ``Linear`` layers (:func:`linear_layers`:
  ``MatMul`` / ``Gemm`` by a constant weight: the T-Former's qkv, projection and MLP). The residual stream (the
  transformer's ``Add``), LayerNorm, Softmax, GELU and the attention products q k^T and attention x v stay fp32.
- ``"all"``: every op ONNX Runtime's ``quantize_static`` quantizes.

``keep_fp32`` entries (:func:`resolve_keep_fp32`; default LayerNorm, Softmax and the classifier) are subtracted
from any scope.

Why ``conv+linear``, measured on two trained MSSTNets (the time proof of ``tests/test_train_proof.py``, 2 classes
told apart only by the order of their frames, and a 7-class model trained on generated clips; 20 and 46 held-out
clips of their test lists, MinMax, U8S8) and on the full-size MSSTNet (B = 1, AMD EPYC with AVX-512 VNNI, 2
threads, ONNX Runtime 1.32, 51.4 ms per clip in fp32):

======================  =============================  ==============================  ============
scope                   top-1 / cosine, time proof     top-1 / cosine, 7 classes       ms per clip
======================  =============================  ==============================  ============
``conv``                100% / 0.9998                  100% / 0.9999                   23.0
``conv+linear``         100% / 0.9998                  100% / 0.9999                   18.0
``all``                 **50%** / 0.988                100% / 0.9997                   18.4
======================  =============================  ==============================  ============

Quantizing the transformer's element-wise ops per tensor is what breaks a model that reads *time*: its cue is a
small change of the large residual activations, below one int8 step of their range. The ``Linear`` layers are
safe (their inputs are LayerNorm outputs; their weights per channel) and hold the T-Former's FLOPs, so
``conv+linear`` is as fast as ``all`` with the accuracy of ``conv``.
"""

from __future__ import annotations

from typing import Sequence

from edgefer.errors import ArgumentError

#: What ``scope`` accepts.
SCOPES = ("conv", "conv+linear", "all")
DEFAULT_SCOPE = "conv+linear"
#: What ``keep_fp32`` understands besides node names and op types: two roles found in the graph.
FIRST_CONV, CLASSIFIER = "first_conv", "classifier"
#: Kept in fp32 by default: LayerNorm, Softmax and the classifier (the usual sensitive nodes; of these only the
#: classifier is inside the default scope). The first conv, the fourth usual suspect, is quantized: its input is
#: pixel / 255, which uint8 holds exactly, and keeping it fp32 cost a third of the int8 MSSTNet's time (26 vs 18 ms
#: per clip at B = 1 on an AMD EPYC with AVX-512 VNNI) for no top-1 change on the trained zoo model (100% either
#: way; logit cosine min 0.9993 vs 0.9945). ``keep_fp32=(..., "first_conv")`` keeps it.
DEFAULT_KEEP_FP32 = ("LayerNormalization", "Softmax", CLASSIFIER)
#: Ops that join the conv path when their data input (an Add: both inputs) comes from it.
_CONV_PATH_FOLLOWERS = ("Relu", "MaxPool", "Add")


def resolve_keep_fp32(model, keep: Sequence[str]) -> list[str]:
    """Node names of ``model`` (an ``onnx.ModelProto``) to keep in fp32, from op types (``"Softmax"``), node
    names, ``"first_conv"`` (the first Conv in graph order) and ``"classifier"`` (the last Gemm/MatMul).

    Raises:
        ArgumentError: an entry that matches no op type, node name or role of this graph (the defaults may match
            nothing: a graph without LayerNorm keeps none).
    """
    nodes = list(model.graph.node)
    names: list[str] = []
    for item in keep:
        if item == FIRST_CONV:
            hit = [n.name for n in nodes if n.op_type == "Conv"][:1]
        elif item == CLASSIFIER:
            hit = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")][-1:]
        else:
            hit = [n.name for n in nodes if n.op_type == item or n.name == item]
        if not hit and item not in (FIRST_CONV, CLASSIFIER) and item not in DEFAULT_KEEP_FP32:
            raise ArgumentError(f"--keep-fp32 {item!r} matches no op type or node name of this graph")
        names.extend(h for h in hit if h not in names)
    return names


def conv_path(model) -> list[str]:
    """Names of the nodes of the convolutional path of ``model`` (an ``onnx.ModelProto`` in topological order, as
    ONNX requires): every Conv; each Relu and MaxPool whose data input (the first) is an output of a node already on
    the path; each Add both of whose inputs are."""
    producer: dict[str, str] = {}
    on_path: set[str] = set()
    names = []
    for node in model.graph.node:
        data = list(node.input) if node.op_type == "Add" else list(node.input[:1])
        joins = node.op_type == "Conv" or (
            node.op_type in _CONV_PATH_FOLLOWERS and data and all(producer.get(i) in on_path for i in data))
        if joins:
            on_path.add(node.name)
            names.append(node.name)
        for out in node.output:
            producer[out] = node.name
    return names


def linear_layers(model) -> list[str]:
    """Names of the ``MatMul`` / ``Gemm`` nodes of ``model`` that multiply by a constant (an initializer: a
    ``Linear`` layer's weight), not the activation-by-activation products of attention (q k^T, attention x v)."""
    constants = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type in ("MatMul", "Gemm") and any(i in constants for i in n.input)]


def select_nodes(model, scope: str, keep_fp32: Sequence[str]) -> tuple[list[str] | None, list[str]]:
    """(nodes to quantize, or None for every node ``quantize_static`` handles; the nodes ``keep_fp32`` names) of
    ``model``: a scope's nodes minus those kept.

    Args:
        model: the pre-processed fp32 ``onnx.ModelProto``; its nodes must have names (``torch.onnx.export`` names
            every node).
        scope: one of :data:`SCOPES`.
        keep_fp32: op types, node names, ``"first_conv"``, ``"classifier"`` (:func:`resolve_keep_fp32`).

    Raises:
        ArgumentError: an unknown scope, a ``keep_fp32`` entry matching nothing, or a scope that selects nothing.
    """
    if scope not in SCOPES:
        raise ArgumentError(f"unknown int8 scope {scope!r}; choose one of {', '.join(SCOPES)}")
    excluded = resolve_keep_fp32(model, keep_fp32)
    if scope == "all":
        return None, excluded
    path = conv_path(model) + (linear_layers(model) if scope == "conv+linear" else [])
    chosen = [name for name in path if name not in excluded]
    if not chosen:
        raise ArgumentError(f"int8 scope {scope!r} selects no node of this graph (no Conv"
                            f"{' and no Linear layer' if scope == 'conv+linear' else ''} outside --keep-fp32); "
                            "use scope 'all'")
    return chosen, excluded
