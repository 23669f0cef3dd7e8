"""edgefer._C's Python surface: numpy and torch inputs, argument checking (bad input raises a clear error and
never crashes), NaN propagation, the torch.library ops (autograd, torch.export, dispatch), threads, fork.
Skipped when edgefer._C is not built."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest
import torch

from build_support import compiled_module

_C = compiled_module()
from edgefer import ops  # noqa: E402
from edgefer.ops import cpp, reference  # noqa: E402


def _embedding_args(B=2, T=3, C=4, S=7, P=2, D=24, residual=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(feat=torch.randn(B * T, C, S, S, generator=g), weight=torch.randn(D, C, P, P, generator=g) * 0.2,
                bias=torch.randn(D, generator=g), pos_t=torch.randn(T, D, generator=g),
                pos_s=torch.randn(16, D, generator=g),
                residual=torch.randn(B, T, 16, D, generator=g) if residual else None)


# ---- inputs of both kinds ----------------------------------------------------------------------------------------

def test_numpy_in_numpy_out():
    qkv = np.random.default_rng(0).standard_normal((2, 5, 3, 96), dtype=np.float32)
    out = _C.temporal_attention(qkv, 2)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 5, 3, 32)
    want = reference.temporal_attention(torch.from_numpy(qkv), 2).numpy()
    assert np.abs(out - want).max() <= 1e-5
    a = {k: (v.numpy() if v is not None else None) for k, v in _embedding_args().items()}
    emb = _C.multiscale_embedding(**a)
    assert isinstance(emb, np.ndarray)
    want = reference.multiscale_embedding(**{k: (torch.from_numpy(v) if v is not None else None) for k, v in a.items()})
    assert np.abs(emb - want.numpy()).max() <= 1e-5


def test_out_argument_is_written_in_place():
    qkv = torch.randn(1, 4, 2, 3 * 16)
    out = torch.full((1, 4, 2, 16), 7.0)
    ret = _C.temporal_attention(qkv, 1, out=out)
    assert ret is out
    assert (out - reference.temporal_attention(qkv, 1)).abs().max().item() <= 1e-5


def test_readonly_numpy_input_is_accepted():
    qkv = np.random.default_rng(1).standard_normal((1, 3, 1, 6), dtype=np.float32)
    qkv.setflags(write=False)
    assert _C.temporal_attention(qkv, 1).shape == (1, 3, 1, 2)


# ---- bad inputs raise, naming the argument ----------------------------------------------------------------------

@pytest.mark.parametrize("qkv,heads,exc,match", [
    (torch.randn(16, 4, 96), 2, ValueError, "qkv must be 4-D"),
    (torch.randn(1, 2, 16, 4, 96), 2, ValueError, "qkv must be 4-D"),
    (torch.randn(1, 4, 2, 96, dtype=torch.float64), 2, TypeError, "qkv must be float32"),
    (torch.randn(1, 4, 2, 96).half(), 2, TypeError, "qkv must be float32"),
    (torch.ones(1, 4, 2, 96, dtype=torch.int32), 2, TypeError, "qkv must be float32"),
    (torch.randn(1, 4, 2, 96), 5, ValueError, "multiple of 3 \\* num_heads"),
    (torch.randn(1, 4, 2, 96), 0, ValueError, "num_heads must be >= 1"),
    (torch.randn(1, 4, 2, 96), 2.0, TypeError, "num_heads must be an int"),
    (torch.randn(1, 0, 2, 96), 2, ValueError, "zero-size"),
    (torch.randn(0, 4, 2, 96), 2, ValueError, "zero-size"),
    (torch.randn(1, 4, 2, 192)[..., ::2], 2, ValueError, "stride 1"),
    ([[1.0]], 1, TypeError, "qkv must be a numpy array or a tensor"),
    (np.zeros((1, 4, 2, 96), dtype=np.float64), 2, TypeError, "qkv must be float32"),
])
def test_attention_bad_inputs_raise(qkv, heads, exc, match):
    with pytest.raises(exc, match=match):
        _C.temporal_attention(qkv, heads)


def test_attention_bad_out_raises():
    qkv = torch.randn(1, 4, 2, 96)
    with pytest.raises(ValueError, match="out must have shape"):
        _C.temporal_attention(qkv, 2, out=torch.empty(1, 4, 2, 31))
    with pytest.raises(TypeError, match="out is float64"):
        _C.temporal_attention(qkv, 2, out=torch.empty(1, 4, 2, 32, dtype=torch.float64))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _C.temporal_attention(qkv, 2, out=torch.empty(1, 2, 4, 32).transpose(1, 2))
    with pytest.raises(ValueError, match="out overlaps qkv"):
        _C.temporal_attention(qkv, 2, out=qkv.view(-1)[:256].view(1, 4, 2, 32))
    ro = np.zeros((1, 4, 2, 32), dtype=np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        _C.temporal_attention(qkv.numpy(), 2, out=ro)
    with pytest.raises(TypeError, match="requires grad"):
        _C.temporal_attention(torch.randn(1, 4, 2, 96, requires_grad=True), 2)
    with pytest.raises(TypeError, match="scale must be a float"):
        _C.temporal_attention(qkv, 2, scale="big")


@pytest.mark.parametrize("change,exc,match", [
    (dict(feat=torch.randn(6, 4, 7)), ValueError, "feat must be 4-D"),
    (dict(weight=torch.randn(24, 5, 2, 2)), ValueError, "weight must be \\(D, 4, P, P\\)"),
    (dict(weight=torch.randn(24, 4, 2, 3)), ValueError, "weight must be"),
    (dict(weight=torch.randn(24, 4, 3, 3)), ValueError, "does not cut a 7x7 map"),
    (dict(bias=torch.randn(23)), ValueError, "bias must be \\(24,\\), got shape \\(23,\\)"),
    (dict(pos_t=torch.randn(4, 24)), ValueError, "pos_t must be \\(T, 24\\)"),
    (dict(pos_s=torch.randn(9, 24)), ValueError, "pos_s must be \\(16, 24\\), got shape \\(9, 24\\)"),
    (dict(residual=torch.randn(2, 3, 16, 23)), ValueError, "residual must be \\(2, 3, 16, 24\\)"),
    (dict(weight=torch.randn(24, 4, 2, 2, dtype=torch.float64)), TypeError, "weight must be float32"),
    (dict(weight=torch.randn(4, 24, 2, 2).transpose(0, 1)), ValueError, "weight must be C-contiguous"),
    (dict(feat=torch.randn(0, 4, 7, 7)), ValueError, "zero-size"),
    (dict(weight=torch.randn(0, 4, 2, 2), bias=torch.randn(0), pos_t=torch.randn(3, 0), pos_s=torch.randn(16, 0),
          residual=None), ValueError, "zero-size"),
    (dict(grid=0), ValueError, "grid must be >= 1"),
    (dict(bias=np.zeros(24, dtype=np.float32)), None, None),  # numpy next to torch: both CPU float32, accepted
])
def test_embedding_bad_inputs_raise(change, exc, match):
    args = _embedding_args()
    args.update(change)
    if match is None:  # a numpy bias next to torch tensors is fine: both are CPU float32
        _C.multiscale_embedding(**args)
        return
    with pytest.raises(exc, match=match):
        _C.multiscale_embedding(**args)


# ---- non-finite values propagate --------------------------------------------------------------------------------

def test_attention_nan_propagates_like_reference():
    qkv = torch.randn(2, 6, 3, 3 * 2 * 32)
    qkv[1, 2, 0, 5] = float("nan")                 # a q element: one row of (b=1, n=0, head 0) turns NaN
    qkv[0, 4, 2, 2 * 64 + 32 + 3] = float("nan")   # a v element of head 1 at (b=0, n=2): that sequence turns NaN
    qkv[1, 3, 1, 64 + 32 + 1] = float("inf")       # a k element: scores inf -> NaN like the reference
    got, want = cpp.temporal_attention(qkv, 2), reference.temporal_attention(qkv, 2)
    assert torch.equal(got.isnan(), want.isnan())
    assert got.isnan().any() and not got.isnan().all()
    finite = ~want.isnan()
    assert (got[finite] - want[finite]).abs().max().item() <= 1e-5


def test_embedding_nan_propagates_like_reference():
    args = _embedding_args(D=40)
    args["feat"][4, 1, 3, 5] = float("nan")  # frame 4, pixel (3, 5) -> patch gy=1, gx=2 only
    got, want = cpp.multiscale_embedding(**args), reference.multiscale_embedding(**args)
    assert torch.equal(got.isnan(), want.isnan())
    assert got.isnan().sum().item() == 40  # one token, all channels
    args = _embedding_args(D=40)
    args["weight"][7, 0, 0, 0] = float("nan")  # a weight: channel 7 of every token (0 * NaN is NaN in padding too)
    got, want = cpp.multiscale_embedding(**args), reference.multiscale_embedding(**args)
    assert torch.equal(got.isnan(), want.isnan()) and got[..., 7].isnan().all()


# ---- torch.library ops ------------------------------------------------------------------------------------------

def test_ops_are_registered_and_dispatched():
    assert hasattr(torch.ops.edgefer, "temporal_attention") and hasattr(torch.ops.edgefer, "multiscale_embedding")
    assert cpp.is_available("cpu") and ops.backend_available("cpp", "cpu")
    assert ops.resolve_kernels("auto", "cpu") == "cpp"
    assert cpp.is_available("cuda") == (_C.cuda_built() and torch.cuda.is_available())
    qkv = torch.randn(1, 4, 2, 96)
    assert torch.equal(ops.temporal_attention(qkv, 2, kernels="cpp"), torch.ops.edgefer.temporal_attention(qkv, 2))


def test_backward_matches_reference():
    qkv = torch.randn(2, 5, 3, 96, dtype=torch.float32, requires_grad=True)
    grad = torch.randn(2, 5, 3, 32)
    (g_cpp,) = torch.autograd.grad(cpp.temporal_attention(qkv, 2), qkv, grad)
    (g_ref,) = torch.autograd.grad(reference.temporal_attention(qkv, 2), qkv, grad)
    assert (g_cpp - g_ref).abs().max().item() <= 1e-5
    args = _embedding_args()
    leaves = {k: v.requires_grad_(True) for k, v in args.items() if k in ("feat", "weight", "pos_s", "residual")}
    out_cpp, out_ref = cpp.multiscale_embedding(**args), reference.multiscale_embedding(**args)
    grad = torch.randn_like(out_ref)
    g_cpp = torch.autograd.grad(out_cpp, list(leaves.values()), grad)
    g_ref = torch.autograd.grad(out_ref, list(leaves.values()), grad)
    for name, a, b in zip(leaves, g_cpp, g_ref):
        assert (a - b).abs().max().item() <= 1e-4, name


def test_torch_export_keeps_the_ops():
    class Block(torch.nn.Module):
        def forward(self, feat, qkv):
            return cpp.temporal_attention(qkv, 2), cpp.multiscale_embedding(
                feat, torch.ones(8, 3, 2, 2), torch.zeros(8), torch.zeros(2, 8), torch.zeros(16, 8), None, 4)

    ep = torch.export.export(Block(), (torch.randn(4, 3, 8, 8), torch.randn(1, 4, 2, 96)))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert "edgefer.temporal_attention.default" in targets and "edgefer.multiscale_embedding.default" in targets


# ---- runtime controls, threads, fork ----------------------------------------------------------------------------

def test_runtime_controls():
    feats = _C.cpu_features()
    assert feats["isa"] in feats["supported"] and feats["supported"][-1] == "generic"
    with pytest.raises(ValueError, match="not available"):
        _C.set_cpu_isa("sse9")
    with pytest.raises(TypeError):
        _C.set_num_threads("two")
    with pytest.raises(ValueError):
        _C.set_num_threads(-1)
    assert isinstance(_C.cuda_built(), bool)


def test_concurrent_calls_from_python_threads():
    qkv = torch.randn(4, 16, 8, 3 * 128)
    want = reference.temporal_attention(qkv, 2)
    errors = []

    def work():
        for _ in range(5):
            errors.append((cpp.temporal_attention(qkv, 2) - want).abs().max().item())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 15 and max(errors) <= 1e-5


def _child_attention(q):
    from edgefer import _C as child_C
    out = child_C.temporal_attention(np.ones((2, 8, 4, 96), dtype=np.float32), 2)
    q.put(float(out.sum()))


def test_kernels_work_in_a_forked_child():
    _C.temporal_attention(np.ones((2, 8, 4, 96), dtype=np.float32), 2)  # pool started in the parent
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_attention, args=(q,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert q.get(timeout=5) == pytest.approx(2 * 8 * 4 * 32)
