"""Hostile --custom-ops models for libedgefer_ortops: a model file is input, so crafted attributes and inputs must
come back as ONNX Runtime errors naming the problem, and the session must work after an allocation failure.

Each group runs in a child process (a crash -- negative return code -- fails the test, not the suite). The
crafted graphs are built with onnx.helper; the attribute fuzz (hypothesis) runs its whole loop in one child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from build_support import cpp_ops, ortops_library

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

PRELUDE = r"""
import json, sys
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

LIB = sys.argv[1]

def model(op, inputs, consts={}, **attrs):
    # inputs: the node's input names in order; those in consts are initializers, the others graph inputs
    node = helper.make_node(op, inputs, ["out"], domain="edgefer", **attrs)
    fed = [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs if i not in consts]
    graph = helper.make_graph([node], op, fed,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                 helper.make_opsetid("edgefer", 1)])

def session(op, inputs, consts={}, threads=2, **attrs):
    options = ort.SessionOptions()
    options.register_custom_ops_library(LIB)
    options.log_severity_level = 4
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model(op, inputs, consts, **attrs).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])

def attempt(fn, *args, **kwargs):
    try:
        return {"value": fn(*args, **kwargs)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

ones = lambda *shape: np.ones(shape, np.float32)
EMB = ["feat", "weight", "bias", "pos_t", "pos_s"]
"""


def run_child(code: str, *args: str, timeout: float = 180) -> str:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code, ortops_library(), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}):\n{proc.stderr[-5000:]}"
    return proc.stdout


CRAFTED = r"""
def run(op, inputs, feeds, **attrs):
    r = attempt(lambda: session(op, inputs, **attrs).run(None, feeds)[0])
    return {"error": r["error"]} if "error" in r else {"shape": list(r["value"].shape)}

print(json.dumps({
    # 3 * num_heads wraps to 2 in int64: the old check let it through and the kernel read past qkv
    "num_heads": run("TemporalAttention", ["qkv"], {"qkv": ones(1, 4096, 1, 6)}, num_heads=6148914691236517206),
    # grid * grid wraps to 4 and grid * 4 to 8 (an 8x8 map): the old check let it through
    "grid": run("MultiScaleEmbedding", EMB, dict(feat=ones(1, 1, 8, 8), weight=ones(1, 1, 4, 4), bias=ones(1),
                                                 pos_t=ones(1, 1), pos_s=ones(4, 1)), grid=2**62 + 2),
    "negative_heads": run("TemporalAttention", ["qkv"], {"qkv": ones(1, 4, 1, 6)}, num_heads=-2**63),
    "scale_inf": run("TemporalAttention", ["qkv"], {"qkv": ones(1, 4, 1, 6)}, num_heads=1, scale=float("inf")),
    "heads_not_dividing": run("TemporalAttention", ["qkv"], {"qkv": ones(1, 4, 1, 6)}, num_heads=4),
}))
"""


@pytest.fixture(scope="module")
def crafted() -> dict:
    return json.loads(run_child(CRAFTED).strip().splitlines()[-1])


@pytest.mark.parametrize("case,message", [
    ("num_heads", "edgefer::TemporalAttention: attribute num_heads 6148914691236517206 is too large: "
                  "3 * num_heads overflows int64"),
    ("grid", "edgefer::MultiScaleEmbedding: attribute grid 4611686018427387906 is too large: "
             "grid * grid overflows int64"),
    ("negative_heads", "edgefer::TemporalAttention: attribute num_heads must be >= 1, got -9223372036854775808"),
    ("scale_inf", "edgefer::TemporalAttention: attribute scale must be finite"),
    ("heads_not_dividing", "edgefer::TemporalAttention: qkv's last axis (6) is not a multiple of 3 * num_heads (12)"),
])
def test_crafted_models_give_ort_errors(crafted, case, message):
    error = crafted[case].get("error")
    assert error is not None, f"{case} was accepted: {crafted[case]}"
    assert error.startswith(("Fail", "InvalidArgument", "RuntimeException")), error
    assert message in error and "\n" not in error, error


ALLOCATION = r"""
s = session("TemporalAttention", ["qkv"], num_heads=2, threads=2)
good = np.random.default_rng(0).standard_normal((2, 8, 4, 12)).astype(np.float32)
want = s.run(None, {"qkv": good})[0]
rounds = []
for _ in range(3):
    # T = 300000: each task's scratch is about T * T floats (360 GB); the tasks run on ONNX Runtime's pool
    bad = attempt(lambda: s.run(None, {"qkv": ones(1, 300000, 2, 6)}))
    rounds.append({"error": bad.get("error"), "after": bool(np.array_equal(s.run(None, {"qkv": good})[0], want))})
print(json.dumps(rounds))
"""


def test_allocation_failure_is_an_error_and_the_session_still_works():
    rounds = json.loads(run_child(ALLOCATION).strip().splitlines()[-1])
    assert len(rounds) == 3
    for r in rounds:
        assert r["error"] is not None and "edgefer::TemporalAttention: out of memory (std::bad_alloc)" in r["error"]
        assert r["after"], r


FUZZ = r"""
from hypothesis import HealthCheck, given, settings, strategies as st

INT64_MAX = 2**63 - 1
LIMITS = [2**31 - 1, 2**31, 3037000499, 3037000500, 2**62, 2**62 + 2, 6148914691236517206, INT64_MAX]
int64s = st.one_of(st.integers(-2**63, INT64_MAX), st.sampled_from(LIMITS + [-x for x in LIMITS] + [-2**63]),
                   st.integers(-3, 8))
SETTINGS = settings(max_examples=int(sys.argv[2]), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
rng = np.random.default_rng(0)
QKV = rng.standard_normal((1, 3, 2, 12)).astype(np.float32)
FEEDS = dict(feat=rng.standard_normal((2, 2, 8, 8)), weight=rng.standard_normal((4, 2, 2, 2)),
             bias=rng.standard_normal(4), pos_t=rng.standard_normal((1, 4)), pos_s=rng.standard_normal((16, 4)))
FEEDS = {k: v.astype(np.float32) for k, v in FEEDS.items()}

def outcome(make, feeds):
    # "created" / "ran" / the error, which must name what was wrong in one line
    try:
        s = make()
    except Exception as exc:
        return "create", str(exc)
    try:
        return "ran", s.run(None, feeds)[0]
    except Exception as exc:
        return "run", str(exc)

@SETTINGS
@given(int64s)
def attention(heads):
    stage, result = outcome(lambda: session("TemporalAttention", ["qkv"], num_heads=heads), {"qkv": QKV})
    if 1 <= heads and 12 % (3 * heads) == 0:
        assert stage == "ran" and result.shape == (1, 3, 2, 4), (heads, stage, result)
    elif 1 <= heads <= INT64_MAX // 3:
        assert stage == "run" and "is not a multiple of 3 * num_heads" in result, (heads, result)
    else:
        assert stage == "create" and "attribute num_heads" in result and "\n" not in result, (heads, result)

@SETTINGS
@given(int64s, st.booleans())
def embedding(grid, constant_weight):
    feeds, consts = dict(FEEDS), {}
    if constant_weight:  # packed when the session is created
        consts["weight"] = feeds.pop("weight")
    stage, result = outcome(lambda: session("MultiScaleEmbedding", EMB, consts, grid=grid), feeds)
    if grid == 4:
        assert stage == "ran" and result.shape == (2, 1, 16, 4), (grid, stage, result)
    elif 1 <= grid and grid * grid <= INT64_MAX:
        assert stage == "run" and ("does not cut" in result or "pos_s must be" in result), (grid, result)
    else:
        assert stage == "create" and "attribute grid" in result and "\n" not in result, (grid, result)

attention()
embedding()
print("ok")
"""


def test_attribute_fuzz_gives_errors_or_right_shapes():
    assert run_child(FUZZ, "80").strip().endswith("ok")


def test_crafted_model_file_is_refused_at_load(tmp_path):
    """The `edgefer predict` case end to end: a --custom-ops MSSTNet whose TemporalAttention nodes were edited to
    num_heads = 6148914691236517206 (3 * num_heads wraps to 2 in int64) fails edgefer.load with a ModelFileError
    that names the attribute, instead of reading past its buffers at predict time."""
    torch = pytest.importorskip("torch")
    ortops_library()
    cpp_ops()  # the custom-op export traces the torch.library ops
    import onnx

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference").eval()
    path = tmp_path / "msstnet_custom.onnx"
    export_onnx(model, path, artefact_metadata(model, trained=False, weights_sha256="0" * 64, custom_ops=True),
                custom_ops=True, random_batches=(1,))
    proto = onnx.load(str(path))
    edited = 0
    for node in proto.graph.node:
        for attr in node.attribute:
            if node.op_type == "TemporalAttention" and attr.name == "num_heads":
                attr.i = 6148914691236517206
                edited += 1
    assert edited > 0
    onnx.save(proto, str(path))
    code = ("import sys, edgefer\n"
            "try:\n    edgefer.load(sys.argv[1])\n    print('loaded')\n"
            "except Exception as exc:\n    print(f'{type(exc).__name__}: {exc}')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    message = proc.stdout.strip().splitlines()[-1]
    assert message.startswith("ModelFileError: ONNX Runtime cannot load"), message
    assert ("edgefer::TemporalAttention: attribute num_heads 6148914691236517206 is too large: 3 * num_heads "
            "overflows int64") in message
