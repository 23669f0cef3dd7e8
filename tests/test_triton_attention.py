"""Fused temporal attention on Triton (edgefer.ops.triton) against the reference op, forward and backward.

Where torch sees a GPU the kernels are compiled and run for real on it (bfloat16 included). Elsewhere they run
on CPU tensors in Triton's interpreter: the module-scoped ``device`` fixture sets ``TRITON_INTERPRET=1`` for
this module's tests only (and restores it after); edgefer.ops.triton defines its kernels on first use and
redefines them when that variable changed, so this works in one pytest process next to any other test.
The interpreter gets bfloat16 maths wrong, so there only float32 and float16 are tested, always with
GPU-legal block shapes (dot operands >= 16).
"""

from __future__ import annotations

import math

import pytest
import torch

from edgefer import ops
from edgefer.ops import reference

pytest.importorskip("triton")
from edgefer.ops import triton as tk  # noqa: E402
from triton_device import device  # noqa: E402,F401  (shared fixture)

# float32: 1e-4; float16/bfloat16: 1e-2 relative to the largest reference magnitude.
TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}


def make_qkv(B, T, N, H, d_h, dtype, device, layout="contiguous", seed=0):
    """A (B, T, N, 3*H*d_h) qkv; layout 'strided' gives odd B/T/N strides, 'last' a last-axis stride of 2."""
    g = torch.Generator().manual_seed(seed)
    D3 = 3 * H * d_h
    if layout == "contiguous":
        return torch.randn(B, T, N, D3, generator=g).to(device=device, dtype=dtype)
    if layout == "strided":  # (B, N, T, D3 + 8) storage, viewed as (B, T, N, D3)
        base = torch.randn(B, N, T, D3 + 8, generator=g).to(device=device, dtype=dtype)
        return base.permute(0, 2, 1, 3)[..., 4:4 + D3]
    if layout == "last":
        return torch.randn(B, T, N, D3, 2, generator=g).to(device=device, dtype=dtype)[..., 1]
    raise AssertionError(layout)


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).abs().max() / expected.double().abs().max().clamp_min(1e-12)).item()


def check_against_reference(qkv, num_heads, scale=None):
    """Run both ops forward and backward (reference in float64 on the CPU); assert outputs and grads agree."""
    tol = TOL[qkv.dtype]
    x = qkv.detach().clone().requires_grad_()
    out = tk.temporal_attention(x, num_heads, scale)
    ref_x = qkv.detach().cpu().double().requires_grad_()
    ref = reference.temporal_attention(ref_x, num_heads, scale)
    assert out.shape == ref.shape and out.dtype == qkv.dtype and out.is_contiguous()
    assert rel_err(out.cpu(), ref) <= tol, "forward"
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out.backward(grad.to(out.device, out.dtype))
    ref.backward(grad.to(out.dtype).double())
    assert x.grad.shape == qkv.shape and x.grad.dtype == qkv.dtype
    for part, name in enumerate("qkv"):
        D = qkv.shape[-1] // 3
        got, want = x.grad[..., part * D:(part + 1) * D].cpu(), ref_x.grad[..., part * D:(part + 1) * D]
        assert rel_err(got, want) <= tol, f"grad {name}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("T,d_h,layout", [(16, 64, "contiguous"), (16, 32, "strided"), (5, 64, "strided"),
                                          (11, 32, "contiguous")])
def test_matches_reference(device, dtype, T, d_h, layout):
    # B*N*H = 2*5*2 = 20 sequences: two programs of 16, the second partly masked
    check_against_reference(make_qkv(2, T, 5, 2, d_h, dtype, device, layout), num_heads=2)


def test_last_axis_stride_and_custom_scale(device):
    qkv = make_qkv(1, 7, 3, 4, 16, torch.float32, device, layout="last")
    assert qkv.stride(-1) == 2
    check_against_reference(qkv, num_heads=4, scale=0.3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the interpreter gets bfloat16 maths wrong; GPU only")
def test_bfloat16_on_gpu(device):
    check_against_reference(make_qkv(4, 16, 16, 8, 64, torch.bfloat16, device), num_heads=8)


def test_no_grad_inference_matches_training_forward(device):
    qkv = make_qkv(2, 16, 3, 2, 32, torch.float16, device)
    with torch.no_grad():
        a = tk.temporal_attention(qkv, 2)
    b = tk.temporal_attention(qkv.clone().requires_grad_(), 2)
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-3)  # the same kernel, minus the LSE store


def test_gradcheck_reference_float64():
    qkv = torch.randn(1, 3, 1, 3 * 2 * 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: reference.temporal_attention(x, 2), (qkv,))


def test_triton_grad_matches_gradchecked_reference(device):
    # the float64 reference passes gradcheck (above); the triton float32 gradient must match it
    qkv = make_qkv(1, 16, 2, 2, 16, torch.float32, device, seed=3)
    check_against_reference(qkv, num_heads=2, scale=1 / math.sqrt(16))


def test_dispatch_runs_triton_when_named(device):
    qkv = make_qkv(1, 16, 2, 2, 16, torch.float32, device)
    out = ops.temporal_attention(qkv, 2, kernels="triton")
    assert torch.equal(out, tk.temporal_attention(qkv, 2))


def test_auto_never_picks_triton_on_cpu(device):
    assert tk.is_available("cpu") == (device.type == "cpu")  # the interpreter is on exactly for CPU runs
    assert ops.resolve_kernels("auto", "cpu") != "triton"


def test_cpu_without_interpreter_is_unavailable(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert tk.is_available("cpu") is False
    with pytest.raises(ValueError, match="CUDA"):
        tk.temporal_attention(torch.randn(1, 16, 2, 48), 1)


@pytest.mark.parametrize("bad,num_heads,error,match", [
    (torch.randn(2, 16, 48), 1, ValueError, "qkv must be"),
    (torch.randn(1, 16, 2, 50), 2, ValueError, "multiple of 3"),
    (torch.randn(1, 16, 2, 48), 0, ValueError, "multiple of 3"),
    (torch.randn(1, 16, 2, 48).double(), 1, TypeError, "float16, bfloat16 or float32"),
    (torch.ones(1, 16, 2, 48, dtype=torch.int32), 1, TypeError, "float16, bfloat16 or float32"),
    (torch.randn(1, 16, 2, 48), 1.0, TypeError, "num_heads must be an int"),
    ([[1.0]], 1, TypeError, "torch.Tensor"),
    (torch.randn(1, 129, 1, 48), 1, ValueError, "maximum"),
    (torch.randn(1, 16, 1, 3 * 256), 1, ValueError, "head dim"),
])
def test_bad_inputs_raise(device, bad, num_heads, error, match):
    if isinstance(bad, torch.Tensor):
        bad = bad.to(device)
    with pytest.raises(error, match=match):
        tk.temporal_attention(bad, num_heads)
