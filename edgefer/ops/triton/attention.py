"""Fused temporal attention on Triton: argument checks, launches and the autograd Function.

Semantics: :func:`edgefer.ops.reference.temporal_attention` (the op's definition). Backward, per sequence,
from the forward's saved log-sum-exp L (FlashAttention-2's backward, without its tiling, which T = 16 does
not need): P = exp(scale * Q K^T - L), dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
dQ = scale * dS K, dK = scale * dS^T Q (Dao, "FlashAttention-2", 2023, Algorithm 2).
"""

from __future__ import annotations

import math

import torch

from .. import reference
from . import check_device, kernel_module

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2_at_least_16(x: int) -> int:
    return max(16, 1 << (x - 1).bit_length())


def _check(qkv, num_heads) -> tuple[int, int, int, int, int]:
    if not isinstance(qkv, torch.Tensor):
        raise TypeError(f"qkv must be a torch.Tensor, got {type(qkv).__name__}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, int):
        raise TypeError(f"num_heads must be an int, got {type(num_heads).__name__}")
    B, T, N, D, d_h = reference._check_qkv(qkv, num_heads)
    if qkv.dtype not in _DTYPES:
        raise TypeError(f"qkv must be float16, bfloat16 or float32 for the triton kernels, got {qkv.dtype}")
    k = kernel_module("attention_kernels")
    if T > k.MAX_T:
        raise ValueError(f"T = {T} frames exceeds the triton kernel's maximum of {k.MAX_T}; use kernels='reference'")
    if d_h > k.MAX_HEAD_DIM:
        raise ValueError(f"head dim {d_h} exceeds the triton kernel's maximum of {k.MAX_HEAD_DIM}")
    check_device(qkv, "qkv")
    return B, T, N, D, d_h


def _launch_args(qkv, num_heads, T, N, D, d_h):
    B = qkv.shape[0]
    S = B * N * num_heads
    meta = dict(D=D, HEAD_DIM=d_h, BLOCK_T=_next_pow2_at_least_16(T), BLOCK_D=_next_pow2_at_least_16(d_h),
                IN_PREC="ieee" if qkv.dtype == torch.float32 else "tf32")
    strides = (qkv.stride(0), qkv.stride(1), qkv.stride(2))
    return S, strides, meta


def attention_forward(qkv: torch.Tensor, num_heads: int, scale: float, store_lse: bool):
    """Launch the forward kernel. Returns (out (B, T, N, D) contiguous, lse (B, N, H, T) float32 or None)."""
    k = kernel_module("attention_kernels")
    B, T, N, D3 = qkv.shape
    D = D3 // 3
    S, (sb, st, sn), meta = _launch_args(qkv, num_heads, T, N, D, D // num_heads)
    out = torch.empty((B, T, N, D), dtype=qkv.dtype, device=qkv.device)
    lse = torch.empty((B, N, num_heads, T), dtype=torch.float32, device=qkv.device) if store_lse else out
    if S > 0 and T > 0:
        grid = lambda m: (_cdiv(S, m["BLOCK_S"]),)  # noqa: E731
        k.attn_fwd[grid](qkv, out, lse, S, T, N, num_heads, sb, st, sn, float(scale),
                         STORE_LSE=store_lse, **meta, **k.FIXED_CONFIG)
    return out, (lse if store_lse else None)


def attention_backward(qkv, out, lse, grad_out, num_heads: int, scale: float) -> torch.Tensor:
    """Launch the backward kernel. Returns grad qkv: (B, T, N, 3D) contiguous, qkv's dtype."""
    k = kernel_module("attention_kernels")
    B, T, N, D3 = qkv.shape
    D = D3 // 3
    S, (sb, st, sn), meta = _launch_args(qkv, num_heads, T, N, D, D // num_heads)
    grad_out = grad_out.to(qkv.dtype).contiguous()
    dqkv = torch.empty((B, T, N, D3), dtype=qkv.dtype, device=qkv.device)
    if S > 0 and T > 0:
        grid = lambda m: (_cdiv(S, m["BLOCK_S"]),)  # noqa: E731
        k.attn_bwd[grid](qkv, out, grad_out, lse, dqkv, S, T, N, num_heads, sb, st, sn, float(scale),
                         **meta, **k.FIXED_CONFIG)
    return dqkv


class TemporalAttention(torch.autograd.Function):
    """Autograd wrapper: ``TemporalAttention.apply(qkv, num_heads, scale)``; inputs checked by the caller."""

    @staticmethod
    def forward(ctx, qkv, num_heads, scale):
        needs_grad = ctx.needs_input_grad[0]
        out, lse = attention_forward(qkv, num_heads, scale, store_lse=needs_grad)
        if needs_grad:
            ctx.save_for_backward(qkv, out, lse)
        ctx.num_heads, ctx.scale = num_heads, scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        qkv, out, lse = ctx.saved_tensors
        return attention_backward(qkv, out, lse, grad_out, ctx.num_heads, ctx.scale), None, None


def temporal_attention(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    """See :func:`edgefer.ops.triton.temporal_attention` (the public entry point and its docs)."""
    B, T, N, D, d_h = _check(qkv, num_heads)
    if scale is None:
        scale = 1.0 / math.sqrt(d_h)
    if qkv.stride(-1) != 1:
        qkv = qkv.contiguous()
    return TemporalAttention.apply(qkv, num_heads, float(scale))
