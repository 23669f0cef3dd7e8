"""ONNX Runtime with edgefer's custom-op library (libedgefer_ortops) against ONNX Runtime with standard ops.

The standard-op graphs are torch.onnx exports of :mod:`edgefer.ops.reference` (the ops' defining semantics);
the custom-op graphs hold single ``edgefer``-domain nodes built with ``onnx.helper``. Bad inputs must come back
as ONNX Runtime errors (checked in a subprocess, so a crash fails the test instead of killing pytest).
The MSSTNet-level check exports the whole model both ways with :func:`export.onnx_export.export_onnx`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from build_support import cpp_ops, ortops_library

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgefer import ortops  # noqa: E402
from edgefer.errors import BackendUnavailableError  # noqa: E402
from edgefer.ops import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IR_VERSION = 8  # what onnxruntime >= 1.14 reads


def _library() -> str:
    return ortops_library()


def _custom_session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.register_custom_ops_library(_library())
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _standard_session(module: torch.nn.Module, args: tuple, names: list[str], dynamic: dict) -> ort.InferenceSession:
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=names, output_names=["out"],
                          dynamic_axes=dynamic, opset_version=17)
    model = onnx.load_from_string(buffer.getvalue())
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node), "standard graph has custom nodes"
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _node_model(op: str, inputs: list[str], **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, [i for i in inputs], ["out"], domain="edgefer", **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs if i],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    return helper.make_model(graph, ir_version=IR_VERSION,
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgefer", 1)])


class _Attention(torch.nn.Module):
    def __init__(self, heads: int, scale: float | None) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale

    def forward(self, qkv):
        return reference.temporal_attention(qkv, self.heads, self.scale)


class _Embedding(torch.nn.Module):
    def __init__(self, grid: int, residual: bool) -> None:
        super().__init__()
        self.grid, self.residual = grid, residual

    def forward(self, feat, weight, bias, pos_t, pos_s, *residual):
        return reference.multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual[0] if residual else None,
                                              self.grid)


# (B, T, N, H, Dh, scale): MSSTNet's shape, STT's 49 tokens, T from 1 to 32, head dims 32/64/80, B*N = 1.
ATTENTION_CASES = [
    (2, 16, 16, 8, 64, None),
    (1, 16, 49, 8, 64, None),
    (3, 1, 2, 2, 32, None),
    (1, 32, 1, 1, 80, 0.3),
    (2, 7, 5, 4, 80, None),
    (1, 5, 3, 3, 32, 1.7),
]


@pytest.mark.parametrize("B,T,N,H,Dh,scale", ATTENTION_CASES)
def test_temporal_attention_matches_standard_ops(B, T, N, H, Dh, scale):
    rng = np.random.default_rng(B * 1000 + T * 10 + Dh)
    qkv = (rng.standard_normal((B, T, N, 3 * H * Dh)) * 2).astype(np.float32)
    custom = _custom_session(_node_model("TemporalAttention", ["qkv"], num_heads=H, scale=scale or 0.0))
    standard = _standard_session(_Attention(H, scale), (torch.from_numpy(qkv),), ["qkv"],
                                 {"qkv": {0: "B", 1: "T", 2: "N"}})
    got = custom.run(None, {"qkv": qkv})[0]
    want = standard.run(None, {"qkv": qkv})[0]
    assert got.shape == (B, T, N, H * Dh)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # a different batch through the same sessions (the standard graph has dynamic axes)
    qkv2 = rng.standard_normal((B + 1, T, N, 3 * H * Dh)).astype(np.float32)
    np.testing.assert_allclose(custom.run(None, {"qkv": qkv2})[0], standard.run(None, {"qkv": qkv2})[0],
                               atol=1e-4, rtol=0)


# (B, T, C, H, W, D, grid, residual): MSSTNet's C3/C4/C5 maps at 112 px, odd sizes that need padding.
EMBEDDING_CASES = [
    (1, 16, 128, 14, 14, 512, 4, True),
    (2, 4, 256, 7, 7, 64, 4, False),
    (1, 3, 512, 4, 4, 32, 4, True),
    (2, 2, 5, 11, 9, 24, 3, True),
    (1, 1, 3, 1, 1, 8, 1, False),
]


@pytest.mark.parametrize("B,T,C,H,W,D,grid,with_residual", EMBEDDING_CASES)
def test_multiscale_embedding_matches_standard_ops(B, T, C, H, W, D, grid, with_residual):
    rng = np.random.default_rng(C * 7 + H)
    P = -(-max(H, W) // grid)
    arrays = {
        "feat": rng.standard_normal((B * T, C, H, W)),
        "weight": rng.standard_normal((D, C, P, P)) / np.sqrt(C * P * P),
        "bias": rng.standard_normal(D),
        "pos_t": rng.standard_normal((T, D)),
        "pos_s": rng.standard_normal((grid * grid, D)),
    }
    if with_residual:
        arrays["residual"] = rng.standard_normal((B, T, grid * grid, D))
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    names = list(arrays)
    custom = _custom_session(_node_model("MultiScaleEmbedding", names, grid=grid))
    standard = _standard_session(_Embedding(grid, with_residual), tuple(torch.from_numpy(a) for a in arrays.values()),
                                 names, {})
    got = custom.run(None, arrays)[0]
    want = standard.run(None, arrays)[0]
    assert got.shape == (B, T, grid * grid, D)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("B,T,C,H,W,D,grid,with_residual", [EMBEDDING_CASES[0], EMBEDDING_CASES[3]])
def test_multiscale_embedding_constant_weight_packed_at_load(B, T, C, H, W, D, grid, with_residual):
    """The weight as an initializer (as in every exported model) takes the pre-packed path: same result as the
    weight fed as a graph input (packed per call) and as the reference, on repeated runs and another batch."""
    rng = np.random.default_rng(D + C)
    P = -(-max(H, W) // grid)
    weight = (rng.standard_normal((D, C, P, P)) / np.sqrt(C * P * P)).astype(np.float32)
    params = {n: rng.standard_normal(s).astype(np.float32)
              for n, s in (("bias", (D,)), ("pos_t", (T, D)), ("pos_s", (grid * grid, D)))}
    names = ["feat", "weight", "bias", "pos_t", "pos_s"] + (["residual"] if with_residual else [])
    node = helper.make_node("MultiScaleEmbedding", names, ["out"], domain="edgefer", grid=grid)
    graph_inputs = ["feat"] + (["residual"] if with_residual else [])
    graph = helper.make_graph(
        [node], "constant_weight", [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in graph_inputs],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(weight, "weight")]
        + [numpy_helper.from_array(a, n) for n, a in params.items()])
    constant = _custom_session(helper.make_model(
        graph, ir_version=IR_VERSION, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgefer", 1)]))
    fed = _custom_session(_node_model("MultiScaleEmbedding", names, grid=grid))
    for batch in (B, B + 1, B):
        feeds = {"feat": rng.standard_normal((batch * T, C, H, W)).astype(np.float32)}
        if with_residual:
            feeds["residual"] = rng.standard_normal((batch, T, grid * grid, D)).astype(np.float32)
        got = constant.run(None, feeds)[0]
        np.testing.assert_array_equal(got, fed.run(None, {**feeds, "weight": weight, **params})[0])
        want = reference.multiscale_embedding(
            torch.from_numpy(feeds["feat"]), torch.from_numpy(weight),
            *(torch.from_numpy(params[n]) for n in ("bias", "pos_t", "pos_s")),
            torch.from_numpy(feeds["residual"]) if with_residual else None, grid).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


BAD_INPUTS = r"""
import json, sys
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

lib = sys.argv[1]

def model(op, inputs, consts, **attrs):
    node = helper.make_node(op, inputs + list(consts), ["out"], domain="edgefer", **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs if i],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(a, n) for n, a in consts.items()])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgefer", 1)])

def run(op, feeds, consts={}, **attrs):
    # consts: trailing inputs held as constant initializers (the embedding packs a constant weight at load)
    options = ort.SessionOptions()
    options.register_custom_ops_library(lib)
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model(op, list(feeds), consts, **attrs).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        out = session.run(None, feeds)[0]
        return {"ok": True, "shape": list(out.shape), "nan": bool(np.isnan(out).any()),
                "nan_rows": np.isnan(out).any(axis=-1).reshape(-1).tolist() if out.size else []}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}

f = lambda *s: np.ones(s, np.float32)
emb = dict(feat=f(4, 3, 8, 8), weight=f(6, 3, 2, 2), bias=f(6), pos_t=f(2, 6), pos_s=f(16, 6))
nan_qkv = np.random.default_rng(0).standard_normal((1, 4, 2, 12)).astype(np.float32)
nan_qkv[0, 1, 0, 0] = np.nan  # a NaN query element of (n=0, head 0) at frame 1
results = {
  "rank3": run("TemporalAttention", {"qkv": f(2, 3, 12)}, num_heads=2),
  "heads": run("TemporalAttention", {"qkv": f(1, 4, 2, 10)}, num_heads=2),
  "no_heads_attr": run("TemporalAttention", {"qkv": f(1, 4, 2, 12)}),
  "zero_heads": run("TemporalAttention", {"qkv": f(1, 4, 2, 12)}, num_heads=0),
  "zero_batch": run("TemporalAttention", {"qkv": f(0, 4, 2, 12)}, num_heads=2),
  "nan": run("TemporalAttention", {"qkv": nan_qkv}, num_heads=2),
  "weight_channels": run("MultiScaleEmbedding", {**emb, "weight": f(6, 4, 2, 2)}, grid=4),
  "weight_not_square": run("MultiScaleEmbedding", {**emb, "weight": f(6, 3, 2, 3)}, grid=4),
  "patch_too_small": run("MultiScaleEmbedding", {**emb, "weight": f(6, 3, 1, 1)}, grid=4),
  "pos_t_not_dividing": run("MultiScaleEmbedding", {**emb, "pos_t": f(3, 6)}, grid=4),
  "pos_s": run("MultiScaleEmbedding", {**emb, "pos_s": f(9, 6)}, grid=4),
  "bias": run("MultiScaleEmbedding", {**emb, "bias": f(5)}, grid=4),
  "residual": run("MultiScaleEmbedding", {**emb, "residual": f(2, 2, 16, 5)}, grid=4),
  "feat_rank": run("MultiScaleEmbedding", {**emb, "feat": f(4, 3, 8)}, grid=4),
  "grid_zero": run("MultiScaleEmbedding", emb, grid=0),
  "embedding_ok": run("MultiScaleEmbedding", emb, grid=4),
  # the weight as a constant: packed when the session loads, checked against feat like any other weight
  "const_weight_channels": run("MultiScaleEmbedding", {"feat": emb["feat"]},
                               dict(weight=f(6, 4, 2, 2), **{k: emb[k] for k in ("bias", "pos_t", "pos_s")}), grid=4),
  "const_weight_rank": run("MultiScaleEmbedding", {"feat": emb["feat"]},
                           dict(weight=f(6, 3, 4), **{k: emb[k] for k in ("bias", "pos_t", "pos_s")}), grid=4),
  "const_weight_empty": run("MultiScaleEmbedding", {"feat": emb["feat"]},
                            dict(weight=f(0, 3, 2, 2), bias=f(0), pos_t=f(2, 0), pos_s=f(16, 0)), grid=4),
}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bad_input_results() -> dict:
    proc = subprocess.run([sys.executable, "-c", BAD_INPUTS, _library()], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"the bad-input process died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case,needle", [
    ("rank3", "qkv must be 4-D (B, T, N, 3*D), got shape (2, 3, 12)"),
    ("heads", "not a multiple of 3 * num_heads"),
    ("no_heads_attr", "num_heads"),
    ("zero_heads", "attribute num_heads must be >= 1, got 0"),
    ("weight_channels", "weight must be (D, 3, P, P)"),
    ("weight_not_square", "weight must be (D, 3, P, P)"),
    ("patch_too_small", "does not cut a 8x8 map into a 4x4 grid"),
    ("pos_t_not_dividing", "pos_t must be (T, 6) with T dividing 4"),
    ("pos_s", "pos_s must be (16, 6)"),
    ("bias", "bias must be (6,)"),
    ("residual", "residual must be (2, 2, 16, 6)"),
    ("feat_rank", "feat must be 4-D (B*T, C, H, W), got shape (4, 3, 8)"),
    ("grid_zero", "attribute grid must be >= 1, got 0"),
    ("const_weight_channels", "weight must be (D, 3, P, P)"),
    ("const_weight_rank", "weight must be (D, 3, P, P)"),
])
def test_bad_inputs_give_ort_errors(bad_input_results, case, needle):
    result = bad_input_results[case]
    assert not result["ok"], f"{case} was accepted: {result}"
    assert needle in result["error"], result["error"]


def test_valid_edge_cases_run(bad_input_results):
    assert bad_input_results["zero_batch"] == {"ok": True, "shape": [0, 4, 2, 4], "nan": False, "nan_rows": []}
    assert bad_input_results["embedding_ok"]["ok"] and bad_input_results["embedding_ok"]["shape"] == [2, 2, 16, 6]
    assert not bad_input_results["embedding_ok"]["nan"]
    assert bad_input_results["const_weight_empty"] == {"ok": True, "shape": [2, 2, 16, 0], "nan": False,
                                                       "nan_rows": []}


def test_nan_propagates_not_zeroed(bad_input_results):
    nan = bad_input_results["nan"]
    assert nan["ok"], nan
    rows = np.array(nan["nan_rows"]).reshape(1, 4, 2)
    # only frame 1's query of token 0 saw the NaN: its output row is NaN, every other (t, n) row is finite
    expected = np.zeros((1, 4, 2), bool)
    expected[0, 1, 0] = True
    np.testing.assert_array_equal(rows, expected)


def test_library_path_errors(monkeypatch, tmp_path):
    monkeypatch.setenv(ortops.ENV_LIBRARY, str(tmp_path / "missing.so"))
    with pytest.raises(BackendUnavailableError, match="does not name an existing file"):
        ortops.library_path()
    with pytest.raises(TypeError, match="SessionOptions"):
        ortops.register(object())


def test_register_returns_the_library():
    options = ort.SessionOptions()
    assert ortops.register(options) == _library()
    assert Path(_library()).name.startswith("libedgefer_ortops")
    assert isinstance(ortops.has_cuda(), bool)


def test_ortops_imports_without_torch():
    code = "import sys, edgefer.ortops; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# ---- export through export/custom_ops.py -----------------------------------------------------------------------

def _cpp_ops():
    cpp_ops()


class _TwoOps(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(32, 8, 3, 3, generator=g) * 0.1)
        self.bias = torch.nn.Parameter(torch.randn(32, generator=g))
        self.pos_t = torch.nn.Parameter(torch.randn(4, 32, generator=g))
        self.pos_s = torch.nn.Parameter(torch.randn(16, 32, generator=g))
        self.qkv = torch.nn.Linear(32, 96)

    def forward(self, feat):
        x = torch.ops.edgefer.multiscale_embedding(feat, self.weight, self.bias, self.pos_t, self.pos_s, None, 4)
        x = torch.ops.edgefer.multiscale_embedding(feat, self.weight, self.bias, self.pos_t, self.pos_s, x, 4)
        return torch.ops.edgefer.temporal_attention(self.qkv(x), 4, None)


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_emits_custom_nodes(exporter, tmp_path):
    _cpp_ops()
    from edgefer.export.custom_ops import CUSTOM_OPSET, export_kwargs

    model = _TwoOps().eval()
    feat = torch.randn(8, 8, 11, 10)
    path = tmp_path / f"{exporter}.onnx"
    with torch.no_grad():
        if exporter == "dynamo":
            torch.onnx.export(model, (feat,), str(path), dynamo=True, external_data=False, opset_version=17,
                              verbose=False, **export_kwargs(exporter))
        else:
            torch.onnx.export(model, (feat,), str(path), dynamo=False, opset_version=17, input_names=["feat"],
                              **export_kwargs(exporter))
        expected = model(feat).numpy()
    proto = onnx.load(str(path))
    custom = [(n.op_type, len([i for i in n.input if i])) for n in proto.graph.node if n.domain == "edgefer"]
    assert custom == [("MultiScaleEmbedding", 5), ("MultiScaleEmbedding", 6), ("TemporalAttention", 1)]
    assert (CUSTOM_OPSET[0], CUSTOM_OPSET[1]) in [(o.domain, o.version) for o in proto.opset_import]
    session = _custom_session(proto)
    got = session.run(None, {session.get_inputs()[0].name: feat.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_kwargs_rejects_unknown_exporter():
    from edgefer.export.custom_ops import export_kwargs

    with pytest.raises(ValueError, match="unknown exporter"):
        export_kwargs("tflite")


# ---- the whole MSSTNet ------------------------------------------------------------------------------------------

def test_msstnet_custom_ops_match_standard_ops(tmp_path):
    """Custom-op MSSTNet logits vs standard-op MSSTNet logits on ONNX Runtime, <= 1e-4 (full-size model)."""
    _cpp_ops()
    _library()
    from edgefer.metadata import ModelMetadata
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata
    from edgefer.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference").eval()
    paths = {}
    for custom in (False, True):
        metadata = artefact_metadata(model, trained=False, weights_sha256="0" * 64, custom_ops=custom)
        paths[custom] = tmp_path / f"msstnet_{'custom' if custom else 'standard'}.onnx"
        export_onnx(model, paths[custom], metadata, custom_ops=custom, random_batches=(1,))
    proto = onnx.load(str(paths[True]))
    ops = {n.op_type for n in proto.graph.node if n.domain == "edgefer"}
    assert ops == {"TemporalAttention", "MultiScaleEmbedding"}
    props = {p.key: p.value for p in proto.metadata_props}
    assert ModelMetadata.from_props(props).custom_ops == ("edgefer",)

    clips = np.random.default_rng(3).random((2, 16, 3, 112, 112), dtype=np.float32)
    standard = ort.InferenceSession(str(paths[False]), providers=["CPUExecutionProvider"])
    custom = _custom_session(proto)
    want = standard.run(None, {"clip": clips})[0]
    got = custom.run(None, {"clip": clips})[0]
    assert got.shape == (2, 7)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
