"""ONNX Runtime CPU sessions the kernel benchmark times: a torch module exported with standard ops, and one
``edgefer``-domain custom node (run by ``libedgefer_ortops``) built directly with ``onnx.helper``.

Both sessions get ``threads`` intra-op threads and one inter-op thread; the custom ops run on that same intra-op
pool. Needs torch (for the export), onnx and onnxruntime.
"""

from __future__ import annotations

import io
import warnings
from typing import Mapping

import numpy as np

#: ONNX IR version of the custom-node models (what onnxruntime >= 1.14 reads) and their standard opset.
IR_VERSION = 8
OPSET = 17


def _options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def standard_session(module, inputs: tuple, names: list[str], threads: int):
    """A session of ``module`` exported (TorchScript exporter, opset 17, standard ops only) on ``inputs``.

    Args:
        module: a torch.nn.Module; ``inputs``: its example tensors; ``names``: the graph's input names.
        threads: intra-op threads.

    Raises:
        whatever ``torch.onnx.export`` or ``onnxruntime.InferenceSession`` raises for a module they cannot
        export or load (the benchmark reports it in the row's note).
    """
    import onnxruntime as ort
    import torch

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, inputs, buf, input_names=names, output_names=["out"], opset_version=OPSET,
                          dynamo=False)
    return ort.InferenceSession(buf.getvalue(), _options(threads), providers=["CPUExecutionProvider"])


def custom_op_session(op: str, inputs: list[str], constants: Mapping[str, np.ndarray], threads: int, **attributes):
    """A session of one ``edgefer``-domain node ``op``.

    Args:
        op: "TemporalAttention" or "MultiScaleEmbedding" (see :mod:`edgefer.ortops`).
        inputs: the node's inputs in order, by name; those not in ``constants`` become graph inputs (float32).
        constants: name -> float32 array held as an initializer, as an exported model holds weights (the
            embedding then packs its weight once, at session creation).
        threads: intra-op threads (the custom op's kernels run on them).
        attributes: the node's attributes.

    Raises:
        edgefer.errors.BackendUnavailableError: the custom-op library is not built.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from .. import ortops

    node = helper.make_node(op, inputs, ["out"], domain=ortops.DOMAIN, **attributes)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs if n not in constants],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), n)
                     for n, a in constants.items()])
    model = helper.make_model(graph, ir_version=IR_VERSION, opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid(ortops.DOMAIN, ortops.OPSET_VERSION)])
    options = _options(threads)
    ortops.register(options)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
