"""Multi-scale embedding on Triton (edgefer.ops.triton) against the reference op, forward and backward.

Runs compiled on a GPU where torch sees one, else on CPU tensors in Triton's interpreter: the module-scoped
``device`` fixture sets ``TRITON_INTERPRET=1`` for this module only (see tests/test_triton_attention.py).
float32 and float16 only in the interpreter; GPU-legal block shapes throughout.
"""

from __future__ import annotations

import pytest
import torch

from edgefer.ops import reference

pytest.importorskip("triton")
from edgefer.ops import triton as tk  # noqa: E402
from triton_device import device  # noqa: E402,F401  (shared fixture)

TOL = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}
NAMES = ("feat", "weight", "bias", "pos_t", "pos_s", "residual")


def make_inputs(B, T, C, H, W, P, D, grid=4, residual=True, seed=0):
    """float32 CPU inputs of one scale: feat (B*T, C, H, W), weight (D, C, P, P), bias, pos_t, pos_s, residual."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=1.0: torch.randn(*shape, generator=g) * s  # noqa: E731
    res = r(B, T, grid * grid, D) if residual else None
    return [r(B * T, C, H, W), r(D, C, P, P, s=(C * P * P) ** -0.5), r(D), r(T, D), r(grid * grid, D), res]


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).abs().max() / expected.double().abs().max().clamp_min(1e-12)).item()


def check_against_reference(inputs, dtype, device, grid=4, channels_last=False):
    """Triton (dtype, device) vs the float64 CPU reference on the same dtype-rounded inputs, forward + grads."""
    tol = TOL[dtype]
    rounded = [x.to(dtype) if x is not None else None for x in inputs]
    ours = [x.to(device).clone().requires_grad_() if x is not None else None for x in rounded]
    if channels_last:
        ours[0] = ours[0].detach().to(memory_format=torch.channels_last).requires_grad_()
    ref_in = [x.double().requires_grad_() if x is not None else None for x in rounded]
    out = tk.multiscale_embedding(*ours, grid=grid)
    ref = reference.multiscale_embedding(*ref_in, grid=grid)
    assert out.shape == ref.shape and out.dtype == dtype and out.is_contiguous()
    assert rel_err(out.cpu(), ref) <= tol, "forward"
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out.backward(grad.to(device, dtype))
    ref.backward(grad.to(dtype).double())
    for name, x, r in zip(NAMES, ours, ref_in):
        if x is None:
            continue
        assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == dtype, name
        assert rel_err(x.grad.cpu(), r.grad) <= tol, f"grad {name}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape,residual", [
    ((2, 3, 4, 7, 7, 2, 16), True),     # 7x7 map, P = 2: one row and column of zero padding
    ((1, 2, 2, 14, 13, 4, 32), False),  # 14x13 map, P = 4: uneven padding, no residual
    ((2, 2, 8, 4, 4, 1, 48), True),     # C5-like 4x4 map, P = 1: no padding; D = 48 is not a block multiple
])
def test_matches_reference(device, dtype, shape, residual):
    check_against_reference(make_inputs(*shape, residual=residual), dtype, device)


def test_channels_last_feat_and_other_grid(device):
    check_against_reference(make_inputs(2, 2, 4, 6, 6, 3, 16, grid=2), torch.float32, device, grid=2,
                            channels_last=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the interpreter gets bfloat16 maths wrong; GPU only")
def test_bfloat16_on_gpu(device):
    check_against_reference(make_inputs(4, 16, 128, 14, 14, 4, 512), torch.bfloat16, device)


def test_output_dtype_promotes_like_the_reference(device):
    # float16 map and projection, float32 position embeddings: the reference's adds promote to float32
    feat, weight, bias, pos_t, pos_s, _ = make_inputs(1, 2, 4, 7, 7, 2, 16, residual=False)
    half = [x.half().to(device) for x in (feat, weight, bias)]
    out = tk.multiscale_embedding(*half, pos_t.to(device), pos_s.to(device))
    ref = reference.multiscale_embedding(*(x.double().cpu() for x in half), pos_t.double(), pos_s.double())
    assert out.dtype == torch.float32
    assert rel_err(out.cpu(), ref) <= 1e-2


def test_frozen_parameters_get_no_grad(device):
    inputs = make_inputs(1, 2, 4, 7, 7, 2, 16, residual=False)
    feat, weight, bias, pos_t, pos_s, _ = (x.to(device) if x is not None else None for x in inputs)
    weight.requires_grad_()
    tk.multiscale_embedding(feat, weight, bias, pos_t, pos_s).sum().backward()
    ref_w = inputs[1].detach().double().requires_grad_()
    reference.multiscale_embedding(inputs[0].double(), ref_w, *(x.double() for x in inputs[2:5])).sum().backward()
    assert feat.grad is None and pos_s.grad is None
    assert rel_err(weight.grad.cpu(), ref_w.grad) <= 1e-4


def test_gradcheck_reference_float64():
    args = [x.double().requires_grad_() for x in make_inputs(1, 2, 2, 3, 3, 1, 3, grid=3)]
    assert torch.autograd.gradcheck(lambda *a: reference.multiscale_embedding(*a, grid=3), tuple(args))


def test_triton_grads_match_gradchecked_reference(device):
    # the float64 reference passes gradcheck (above); the triton float32 gradients must match it
    check_against_reference(make_inputs(1, 2, 2, 3, 3, 1, 16, grid=3), torch.float32, device, grid=3)


def _bad(**changes):
    inputs = dict(zip(NAMES, make_inputs(1, 2, 4, 7, 7, 2, 16)))
    inputs.update(changes)
    return inputs


@pytest.mark.parametrize("changes,error,match", [
    (dict(feat=torch.randn(2, 4, 7)), ValueError, "feat must be"),
    (dict(weight=torch.randn(16, 3, 2, 2)), ValueError, "weight must be"),
    (dict(weight=torch.randn(16, 4, 3, 3)), ValueError, "does not cut"),
    (dict(bias=torch.randn(15)), ValueError, "bias must be"),
    (dict(pos_t=torch.randn(3, 16)), ValueError, "pos_t must be"),
    (dict(pos_s=torch.randn(9, 16)), ValueError, "pos_s must be"),
    (dict(residual=torch.randn(1, 2, 16, 8)), ValueError, "residual must be"),
    (dict(feat=torch.randn(2, 4, 7, 7).double()), TypeError, "float16, bfloat16 or float32"),
    (dict(bias=torch.ones(16, dtype=torch.int64)), TypeError, "bias must be float16"),
    (dict(pos_s=[0.0] * 16), TypeError, "pos_s must be a torch.Tensor"),
])
def test_bad_inputs_raise(device, changes, error, match):
    args = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in _bad(**changes).items()}
    with pytest.raises(error, match=match):
        tk.multiscale_embedding(**args, grid=4)


def test_bad_grid_raises(device):
    args = {k: v.to(device) for k, v in _bad().items()}
    with pytest.raises(TypeError, match="grid must be"):
        tk.multiscale_embedding(**args, grid=4.0)


def test_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="CUDA"):
        tk.multiscale_embedding(**_bad(), grid=4)
