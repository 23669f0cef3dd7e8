"""The compiled CPU kernels (edgefer._C via edgefer.ops.cpp) against the reference ops, over random shapes and
strides (hypothesis), on every instruction set this CPU and build support (AVX-512, AVX2, the portable path).

fp32 tolerance: max abs error <= 1e-5 at realistic magnitudes (unit-variance activations, weights scaled by
1/sqrt(fan_in)), as the issue asks. Skipped when edgefer._C is not built.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from build_support import compiled_module

_C = compiled_module()
from edgefer.ops import cpp, reference  # noqa: E402

ISAS = _C.cpu_features()["supported"]
ATOL = 1e-5
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _restore_isa():
    isa = _C.cpu_features()["isa"]
    yield
    _C.set_cpu_isa(isa)


def _layout(shape, order, pad_last, gen):
    """A tensor of `shape` whose storage is laid out in axis order `order` (outermost first) with `pad_last`
    unused elements after every last-axis run: a non-contiguous view, last axis of stride 1."""
    stored = [shape[i] for i in order]
    last = order.index(len(shape) - 1)
    stored[last] += pad_last
    base = torch.randn(stored, generator=gen)
    if pad_last:
        base = base.narrow(last, pad_last // 2, shape[-1])
    inverse = [order.index(i) for i in range(len(shape))]
    return base.permute(inverse)


@st.composite
def attention_cases(draw):
    T = draw(st.integers(1, 32))
    d_h = draw(st.sampled_from([32, 64, 80, 1, 7, 20]))
    H = draw(st.integers(1, 3))
    if draw(st.booleans()):
        B = N = 1
    else:
        B, N = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    order = draw(st.permutations([0, 1, 2]))  # storage order of (B, T, N); the channel axis stays innermost
    pad = draw(st.sampled_from([0, 0, 3, 16]))
    return B, T, N, H, d_h, list(order) + [3], pad, draw(st.integers(0, 2**31 - 1))


@SETTINGS
@given(attention_cases())
def test_temporal_attention_matches_reference(case):
    B, T, N, H, d_h, order, pad, seed = case
    gen = torch.Generator().manual_seed(seed)
    qkv = _layout((B, T, N, 3 * H * d_h), order, pad, gen)
    want = reference.temporal_attention(qkv, H)
    for isa in ISAS:
        _C.set_cpu_isa(isa)
        got = cpp.temporal_attention(qkv, H)
        assert got.shape == (B, T, N, H * d_h) and got.is_contiguous()
        err = (got - want).abs().max().item()
        assert err <= ATOL, f"{isa}: max abs error {err:.3g} for B={B} T={T} N={N} H={H} d_h={d_h} order={order}"


def test_temporal_attention_msstnet_shape_and_scale():
    gen = torch.Generator().manual_seed(0)
    qkv = torch.randn(2, 16, 16, 3 * 512, generator=gen)
    for scale in (None, 0.05, 1.0):
        want = reference.temporal_attention(qkv, 8, scale)
        for isa in ISAS:
            _C.set_cpu_isa(isa)
            assert (cpp.temporal_attention(qkv, 8, scale) - want).abs().max().item() <= ATOL, (isa, scale)


def test_temporal_attention_broadcast_batch_stride_zero():
    qkv = torch.randn(1, 8, 3, 3 * 64).expand(4, 8, 3, 3 * 64)  # stride 0 on B: read-only aliasing is fine
    got = cpp.temporal_attention(qkv, 2)
    assert (got - reference.temporal_attention(qkv, 2)).abs().max().item() <= ATOL
    assert torch.equal(got[0], got[3])


def test_temporal_attention_last_axis_strided_is_copied():
    qkv = torch.randn(2, 5, 3, 2 * 3 * 32)[..., ::2]  # last-axis stride 2: the op copies once
    assert (cpp.temporal_attention(qkv, 1) - reference.temporal_attention(qkv, 1)).abs().max().item() <= ATOL


@st.composite
def embedding_cases(draw):
    G = draw(st.integers(1, 4))
    P = draw(st.integers(1, 4))
    H = draw(st.integers((G - 1) * P + 1, G * P))
    W = draw(st.integers((G - 1) * P + 1, G * P))
    C = draw(st.integers(1, 24))
    D = draw(st.sampled_from([1, 5, 16, 33, 48]))
    T = draw(st.integers(1, 4))
    B = draw(st.integers(1, 2))
    feat_order = draw(st.sampled_from([[0, 1, 2, 3], [0, 2, 3, 1], [1, 0, 2, 3]]))  # NCHW, NHWC, CNHW storage
    residual = draw(st.sampled_from([None, "contiguous", "strided"]))
    return B, T, C, H, W, P, G, D, feat_order, residual, draw(st.integers(0, 2**31 - 1))


def _embedding_inputs(B, T, C, H, W, P, G, D, feat_order, residual, seed):
    gen = torch.Generator().manual_seed(seed)
    feat = torch.randn([(B * T, C, H, W)[i] for i in feat_order], generator=gen).permute(
        [feat_order.index(i) for i in range(4)])
    weight = torch.randn(D, C, P, P, generator=gen) / (C * P * P) ** 0.5
    bias = torch.randn(D, generator=gen) * 0.1
    pos_t = torch.randn(T, D, generator=gen) * 0.1
    pos_s = torch.randn(G * G, D, generator=gen) * 0.1
    res = None
    if residual == "contiguous":
        res = torch.randn(B, T, G * G, D, generator=gen)
    elif residual == "strided":
        res = torch.randn(G * G, B, T, D + 2, generator=gen)[..., 1:D + 1].permute(1, 2, 0, 3)
    return feat, weight, bias, pos_t, pos_s, res


@SETTINGS
@given(embedding_cases())
def test_multiscale_embedding_matches_reference(case):
    B, T, C, H, W, P, G, D, feat_order, residual, seed = case
    args = _embedding_inputs(*case)
    want = reference.multiscale_embedding(*args, grid=G)
    for isa in ISAS:
        _C.set_cpu_isa(isa)
        got = cpp.multiscale_embedding(*args, grid=G)
        assert got.shape == (B, T, G * G, D) and got.is_contiguous()
        err = (got - want).abs().max().item()
        assert err <= ATOL, f"{isa}: max abs error {err:.3g} for {case}"


@pytest.mark.parametrize("C,S,P", [(128, 14, 4), (256, 7, 2), (512, 4, 1)])  # MSSTNet's C3, C4, C5 scales
def test_multiscale_embedding_msstnet_scales(C, S, P):
    args = _embedding_inputs(1, 2, C, S, S, P, 4, 96, [0, 1, 2, 3], "contiguous", C)  # K = C*P*P >= 512
    want = reference.multiscale_embedding(*args)
    for isa in ISAS:
        _C.set_cpu_isa(isa)
        assert (cpp.multiscale_embedding(*args) - want).abs().max().item() <= ATOL, isa


def test_threads_do_not_change_results():
    qkv = torch.randn(3, 16, 7, 3 * 128)
    args = _embedding_inputs(2, 4, 16, 7, 7, 2, 4, 40, [0, 1, 2, 3], "contiguous", 1)
    threads = _C.get_num_threads()
    try:
        assert _C.set_num_threads(1) == 1
        a1, e1 = cpp.temporal_attention(qkv, 2), cpp.multiscale_embedding(*args)
        assert _C.set_num_threads(3) == 3
        a3, e3 = cpp.temporal_attention(qkv, 2), cpp.multiscale_embedding(*args)
    finally:
        _C.set_num_threads(threads)
    assert torch.equal(a1, a3) and torch.equal(e1, e3)


# ---- CUDA (edgefer._C built with CUDA and a GPU present) --------------------------------------------------------

needs_cuda = pytest.mark.skipif(not (_C.cuda_built() and torch.cuda.is_available()),
                                reason="needs edgefer._C built with CUDA and a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 1e-2)])
def test_cuda_ops_match_reference(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    qkv = _layout((2, 16, 5, 3 * 8 * 64), [2, 0, 1, 3], 16, gen).to("cuda", dtype)
    got = cpp.temporal_attention(qkv, 8)
    want = reference.temporal_attention(qkv.float(), 8)
    assert got.dtype == dtype and got.device.type == "cuda"
    assert (got.float() - want).abs().max().item() <= tol
    args = [None if a is None else a.to("cuda", dtype)
            for a in _embedding_inputs(2, 3, 16, 7, 7, 2, 4, 40, [0, 2, 3, 1], "strided", 3)]
    got = cpp.multiscale_embedding(*args)
    want = reference.multiscale_embedding(*[None if a is None else a.float() for a in args])
    assert (got.float() - want).abs().max().item() <= tol * 10


def test_eager_inference_calls_kernels_directly_and_autograd_goes_through_the_op(monkeypatch):
    """No gradient wanted: the public functions skip torch.library's dispatch (same result); a gradient wanted:
    they use the registered op, whose backward matches the reference's."""
    calls = []
    for name in ("_temporal_attention_op", "_multiscale_embedding_op"):
        op = getattr(cpp, name)
        monkeypatch.setattr(cpp, name, lambda *a, _op=op, _name=name: calls.append(_name) or _op(*a))
    gen = torch.Generator().manual_seed(3)
    qkv = torch.randn(2, 5, 3, 3 * 2 * 8, generator=gen)
    emb = (torch.randn(2 * 5, 4, 6, 6, generator=gen), torch.randn(8, 4, 2, 2, generator=gen) / 4,
           torch.randn(8, generator=gen), torch.randn(5, 8, generator=gen), torch.randn(9, 8, generator=gen))

    with torch.no_grad():
        direct = cpp.temporal_attention(qkv, 2), cpp.multiscale_embedding(*emb, grid=3)
    assert calls == []
    via_op = torch.ops.edgefer.temporal_attention(qkv, 2, None), torch.ops.edgefer.multiscale_embedding(*emb, None, 3)
    torch.testing.assert_close(direct[0], via_op[0], rtol=0, atol=0)
    torch.testing.assert_close(direct[1], via_op[1], rtol=0, atol=0)

    x = qkv.clone().requires_grad_(True)
    cpp.temporal_attention(x, 2).square().sum().backward()
    assert calls == ["_temporal_attention_op"]
    ref = qkv.clone().requires_grad_(True)
    reference.temporal_attention(ref, 2).square().sum().backward()
    torch.testing.assert_close(x.grad, ref.grad, rtol=1e-4, atol=1e-5)

    weight = emb[1].clone().requires_grad_(True)
    cpp.multiscale_embedding(emb[0], weight, *emb[2:], grid=3).sum().backward()
    assert calls == ["_temporal_attention_op", "_multiscale_embedding_op"] and weight.grad is not None
