"""The CPU kernels under concurrent reconfiguration: one thread keeps resizing the thread pool and switching the
instruction set while others call both ops (through edgefer._C, and through ONNX Runtime, whose constant
embedding weight was packed at session creation under one instruction set and is used under others). Every
result must stay within 1e-5 of the reference.

Runs in a child process with a timeout, so that a crash or a deadlock fails the test, not the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from build_support import compiled_module, ortops_library

compiled_module()  # skips (or fails, under EDGEFER_REQUIRE_BUILD=1) when edgefer._C is not built
from edgefer.ops import reference  # noqa: E402

HEADS, GRID = 2, 4
ATOL = 1e-5

CHILD = r"""
import itertools, json, sys, threading
import numpy as np
from edgefer import _C

data = dict(np.load(sys.argv[1]))
library = sys.argv[2]
heads, grid = int(data["heads"]), int(data["grid"])
min_calls, min_changes = 10, 24  # each worker calls until both counts are reached: the calls overlap the changes
emb = [data[k] for k in ("feat", "weight", "bias", "pos_t", "pos_s", "residual")]
session = None
if library:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    names = ["feat", "weight", "bias", "pos_t", "pos_s", "residual"]
    node = helper.make_node("MultiScaleEmbedding", names, ["out"], domain="edgefer", grid=grid)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("feat", "residual")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(data[n], n) for n in ("weight", "bias", "pos_t", "pos_s")])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                  helper.make_opsetid("edgefer", 1)])
    options = ort.SessionOptions()
    options.register_custom_ops_library(library)
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

isas = _C.cpu_features()["supported"]
stop = threading.Event()
changes = []

def reconfigure():
    for threads, isa in zip(itertools.cycle([1, 3, 2, 4]), itertools.cycle(isas)):
        if stop.is_set():
            return
        _C.set_num_threads(threads)
        _C.set_cpu_isa(isa)
        changes.append((threads, isa))

def err(got, want):
    return float(np.abs(got - want).max())

worst = {}
def call(worker):
    w = {"attention": 0.0, "embedding": 0.0, "ort_embedding": 0.0, "calls": 0}
    while w["calls"] < min_calls or len(changes) < min_changes:
        w["calls"] += 1
        w["attention"] = max(w["attention"], err(_C.temporal_attention(data["qkv"], heads), data["attention"]))
        w["embedding"] = max(w["embedding"], err(_C.multiscale_embedding(*emb, grid=grid), data["embedding"]))
        if session is not None:
            got = session.run(None, {"feat": data["feat"], "residual": data["residual"]})[0]
            w["ort_embedding"] = max(w["ort_embedding"], err(got, data["embedding"]))
    worst[worker] = w

chaos = threading.Thread(target=reconfigure)
workers = [threading.Thread(target=call, args=(i,)) for i in range(4)]
chaos.start()
for t in workers:
    t.start()
for t in workers:
    t.join()
stop.set()
chaos.join()
print(json.dumps({"worst": worst, "changes": len(changes), "isas": sorted({i for _, i in changes})}))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> str:
    """Inputs and the reference's outputs, as an .npz the child loads (the child never imports torch)."""
    g = torch.Generator().manual_seed(0)
    B, T, C, S, P, D = 2, 4, 16, 14, 4, 48
    arrays = dict(qkv=torch.randn(2, 16, 8, 3 * HEADS * 32, generator=g),
                  feat=torch.randn(B * T, C, S, S, generator=g),
                  weight=torch.randn(D, C, P, P, generator=g) / (C * P * P) ** 0.5,
                  bias=torch.randn(D, generator=g) * 0.1, pos_t=torch.randn(T, D, generator=g) * 0.1,
                  pos_s=torch.randn(GRID * GRID, D, generator=g) * 0.1,
                  residual=torch.randn(B, T, GRID * GRID, D, generator=g))
    arrays["attention"] = reference.temporal_attention(arrays["qkv"], HEADS)
    arrays["embedding"] = reference.multiscale_embedding(
        *(arrays[k] for k in ("feat", "weight", "bias", "pos_t", "pos_s", "residual")), grid=GRID)
    path = tmp_path_factory.mktemp("races") / "inputs.npz"
    np.savez(path, heads=HEADS, grid=GRID, **{k: v.numpy() for k, v in arrays.items()})
    return str(path)


def _run(inputs: str, library: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, inputs, library], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(result: dict, ops: list[str]) -> None:
    assert len(result["worst"]) == 4, result
    for worker, worst in result["worst"].items():
        for op in ops:
            assert worst[op] <= ATOL, f"worker {worker}: {op} off by {worst[op]:.3g} while the pool was reconfigured"
    # the reconfiguring thread ran during the calls, over every instruction set
    assert result["changes"] >= 24 and len(result["isas"]) == len(compiled_module().cpu_features()["supported"])


def test_resizing_and_switching_isa_during_calls_keeps_results(inputs):
    _check(_run(inputs, ""), ["attention", "embedding"])


def test_ort_packed_weight_survives_isa_switches(inputs):
    _check(_run(inputs, ortops_library()), ["attention", "embedding", "ort_embedding"])
