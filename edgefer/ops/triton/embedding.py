"""Multi-scale embedding on Triton: argument checks, launches and the autograd Function.

Semantics: :func:`edgefer.ops.reference.multiscale_embedding` (the op's definition; MSSTNet's MELayer for
one scale plus the T-Former's residual add, design note "Where the two kernels sit").

Which parts are Triton:
- forward: all of it, one kernel (implicit-im2col GEMM + bias + pos_t + pos_s + residual epilogue);
- grad feat: Triton (GEMM grad x W with a col2im scatter epilogue);
- grad weight: Triton (GEMM grad^T x A, A gathered from feat as in the forward);
- grad bias, pos_t, pos_s: torch reductions of the output grad (float32 accumulation); grad residual is the
  output grad itself.
"""

from __future__ import annotations

import torch

from .. import reference
from . import check_device, kernel_module

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check(feat, weight, bias, pos_t, pos_s, residual, grid) -> None:
    named = dict(feat=feat, weight=weight, bias=bias, pos_t=pos_t, pos_s=pos_s)
    if residual is not None:
        named["residual"] = residual
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype not in _DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32 for the triton kernels, got {value.dtype}")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise TypeError(f"grid must be a positive int, got {grid!r}")
    reference._check_embedding(feat, weight, bias, pos_t, pos_s, residual, grid)
    for name, value in named.items():
        if value.device != feat.device:
            raise ValueError(f"{name} is on {value.device} but feat is on {feat.device}")
    check_device(feat, "feat")


def _geometry(feat, weight, pos_t, grid):
    BT, C, H, W = feat.shape
    D, P = weight.shape[0], weight.shape[-1]
    T = pos_t.shape[0]
    return dict(BT=BT, C=C, H=H, W=W, D=D, P=P, T=T, M=BT * grid * grid, K=C * P * P)


def _in_prec(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def embedding_forward(feat, weight, bias, pos_t, pos_s, residual, grid):
    """Launch the forward kernel. Returns (B, T, G*G, D) contiguous, dtype as documented in the package."""
    kern = kernel_module("embedding_kernels")
    g = _geometry(feat, weight, pos_t, grid)
    out_dtype = feat.dtype
    for extra in (pos_t, pos_s, residual):
        if extra is not None:
            out_dtype = torch.promote_types(out_dtype, extra.dtype)
    wt = weight.to(feat.dtype).reshape(g["D"], g["K"]).contiguous()
    out = torch.empty((g["BT"] // g["T"], g["T"], grid * grid, g["D"]), dtype=out_dtype, device=feat.device)
    if out.numel() == 0:
        return out
    res = residual.contiguous() if residual is not None else out  # dummy pointer when HAS_RES is False
    launch = lambda m: (_cdiv(g["M"], m["BLOCK_M"]), _cdiv(g["D"], m["BLOCK_N"]))  # noqa: E731
    kern.embed_fwd[launch](
        feat, wt, bias.contiguous(), pos_t.contiguous(), pos_s.contiguous(), res, out,
        g["M"], g["K"], g["D"], g["H"], g["W"], g["T"], *feat.stride(),
        P=g["P"], G=grid, HAS_RES=residual is not None, IN_PREC=_in_prec(feat.dtype), **kern.FIXED_CONFIG)
    return out


def embedding_grad_feat(grad, feat, weight, grid) -> torch.Tensor:
    """grad feat (feat's shape, dtype and, when dense, memory format) from the (M, D) output grad."""
    kern = kernel_module("embedding_kernels")
    BT, C, H, W = feat.shape
    D, P = weight.shape[0], weight.shape[-1]
    M, K = BT * grid * grid, C * P * P
    wt = weight.to(feat.dtype).reshape(D, K).contiguous()
    dfeat = torch.empty_like(feat)  # every pixel is written: the patches tile the map
    if dfeat.numel() == 0:
        return dfeat
    launch = lambda m: (_cdiv(M, m["BLOCK_M"]), _cdiv(K, m["BLOCK_N"]))  # noqa: E731
    kern.embed_dfeat[launch](grad, wt, dfeat, M, K, D, H, W, *dfeat.stride(),
                             P=P, G=grid, IN_PREC=_in_prec(feat.dtype), **kern.FIXED_CONFIG)
    return dfeat


def embedding_grad_weight(grad, feat, weight, grid) -> torch.Tensor:
    """grad weight (weight's shape and dtype) from the (M, D) output grad, in feat's dtype."""
    kern = kernel_module("embedding_kernels")
    BT, C, H, W = feat.shape
    D, P = weight.shape[0], weight.shape[-1]
    M, K = BT * grid * grid, C * P * P
    dwt = torch.empty((D, K), dtype=weight.dtype, device=weight.device)
    if M == 0:
        return dwt.zero_().reshape(weight.shape)
    launch = lambda m: (_cdiv(D, m["BLOCK_M"]), _cdiv(K, m["BLOCK_N"]))  # noqa: E731
    kern.embed_dweight[launch](grad, feat, dwt, M, K, D, H, W, *feat.stride(),
                               P=P, G=grid, IN_PREC=_in_prec(feat.dtype), **kern.FIXED_CONFIG)
    return dwt.reshape(weight.shape)


class MultiscaleEmbedding(torch.autograd.Function):
    """Autograd wrapper: ``MultiscaleEmbedding.apply(feat, weight, bias, pos_t, pos_s, residual, grid)``."""

    @staticmethod
    def forward(ctx, feat, weight, bias, pos_t, pos_s, residual, grid):
        out = embedding_forward(feat, weight, bias, pos_t, pos_s, residual, grid)
        ctx.save_for_backward(feat, weight)
        ctx.grid = grid
        ctx.dtypes = (bias.dtype, pos_t.dtype, pos_s.dtype, residual.dtype if residual is not None else None)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        feat, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        bias_dt, pos_t_dt, pos_s_dt, res_dt = ctx.dtypes
        D = weight.shape[0]
        grad_out = grad_out.contiguous()
        g_feat = g_weight = g_bias = g_pos_t = g_pos_s = g_res = None
        if need[0] or need[1]:
            g2d = grad_out.to(feat.dtype).reshape(-1, D)
            if need[0]:
                g_feat = embedding_grad_feat(g2d, feat, weight, ctx.grid)
            if need[1]:
                g_weight = embedding_grad_weight(g2d, feat, weight, ctx.grid)
        if need[2]:
            g_bias = grad_out.sum(dim=(0, 1, 2), dtype=torch.float32).to(bias_dt)
        if need[3]:
            g_pos_t = grad_out.sum(dim=(0, 2), dtype=torch.float32).to(pos_t_dt)
        if need[4]:
            g_pos_s = grad_out.sum(dim=(0, 1), dtype=torch.float32).to(pos_s_dt)
        if need[5]:
            g_res = grad_out.to(res_dt)
        return g_feat, g_weight, g_bias, g_pos_t, g_pos_s, g_res, None


def multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual=None, grid: int = 4) -> torch.Tensor:
    """See :func:`edgefer.ops.triton.multiscale_embedding` (the public entry point and its docs)."""
    _check(feat, weight, bias, pos_t, pos_s, residual, grid)
    return MultiscaleEmbedding.apply(feat, weight, bias, pos_t, pos_s, residual, grid)
