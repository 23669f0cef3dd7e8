"""Triton kernels of the multi-scale embedding (MELayer): forward GEMM with implicit im2col and fused
epilogue, and the two backward GEMMs (grad feat with a col2im scatter, grad weight). Load through
:func:`edgefer.ops.triton.kernel_module` (``kernel_module("embedding_kernels")``): this module is re-executed
when ``TRITON_INTERPRET`` changes.

The op as a GEMM: A (M, K) x W^T (K, D) with M = B*T*G*G token rows, K = C*P*P patch elements.
Row m = (bt, gy, gx) = (m // G^2, (m % G^2) // G, m % G); column k = (c, py, px) = (k // P^2, (k % P^2) // P,
k % P) -- the flattening of a Conv2d weight (D, C, P, P). A[m, k] = feat[bt, c, gy*P + py, gx*P + px] when
that pixel is inside the H x W map, else 0 (the zero padding, never materialised). Patches do not overlap,
so every feat pixel is exactly one (m, k): the grad-feat scatter needs no atomics.
"""

from __future__ import annotations

import triton
import triton.language as tl

from . import interpret_mode

#: The mode the kernels below were defined in (see edgefer.ops.triton.kernel_module).
INTERPRET = interpret_mode()


@triton.jit
def _patch_offsets(m, k, M, K, H, W, sf_b, sf_c, sf_h, sf_w, P: tl.constexpr, G: tl.constexpr):
    """Offsets into feat of A[m, k] (m: [BM], k: [BK]) and the mask of in-map, in-range elements."""
    bt = m // (G * G)
    cell = m % (G * G)
    y0 = (cell // G) * P
    x0 = (cell % G) * P
    c = k // (P * P)
    r = k % (P * P)
    y = y0[:, None] + (r // P)[None, :]
    x = x0[:, None] + (r % P)[None, :]
    offs = bt.to(tl.int64)[:, None] * sf_b + c.to(tl.int64)[None, :] * sf_c + y * sf_h + x * sf_w
    mask = (m < M)[:, None] & (k < K)[None, :] & (y < H) & (x < W)
    return offs, mask


@triton.jit
def _embed_fwd_kernel(FEAT, WT, BIAS, POS_T, POS_S, RES, OUT, M, K, D, H, W, T,
                      sf_b, sf_c, sf_h, sf_w,
                      P: tl.constexpr, G: tl.constexpr, HAS_RES: tl.constexpr, IN_PREC: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # WT: weight as (D, K) contiguous. OUT, RES: (M, D) contiguous.
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    d = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    d_ok = d < D
    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, tl.float32)  # tl.full: a builtin (see attention_kernels)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        a_offs, a_mask = _patch_offsets(m, k, M, K, H, W, sf_b, sf_c, sf_h, sf_w, P, G)
        a = tl.load(FEAT + a_offs, mask=a_mask, other=0.0)
        w = tl.load(WT + d.to(tl.int64)[None, :] * K + k[:, None], mask=(k < K)[:, None] & d_ok[None, :], other=0.0)
        acc = tl.dot(a, w, acc, input_precision=IN_PREC)

    # epilogue: + bias[d] + pos_t[t, d] + pos_s[n, d] (+ residual[m, d])
    m_ok = m < M
    t = (m // (G * G)) % T
    n = m % (G * G)
    mask = m_ok[:, None] & d_ok[None, :]
    acc += tl.load(BIAS + d, mask=d_ok, other=0.0).to(tl.float32)[None, :]
    acc += tl.load(POS_T + t[:, None] * D + d[None, :], mask=mask, other=0.0).to(tl.float32)
    acc += tl.load(POS_S + n[:, None] * D + d[None, :], mask=mask, other=0.0).to(tl.float32)
    out_offs = m.to(tl.int64)[:, None] * D + d[None, :]
    if HAS_RES:
        acc += tl.load(RES + out_offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(OUT + out_offs, acc.to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _embed_dfeat_kernel(GRAD, WT, DFEAT, M, K, D, H, W, sf_b, sf_c, sf_h, sf_w,
                        P: tl.constexpr, G: tl.constexpr, IN_PREC: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # dA (M, K) = GRAD (M, D) x WT (D, K), scattered into DFEAT (strides sf_*) at the patch positions.
    # Here BLOCK_N tiles K (the output columns) and BLOCK_K tiles D (the reduction).
    m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    k = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = m < M
    k_ok = k < K
    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, tl.float32)  # tl.full: a builtin (see attention_kernels)
    for d0 in range(0, D, BLOCK_K):
        d = d0 + tl.arange(0, BLOCK_K)
        d_ok = d < D
        g = tl.load(GRAD + m.to(tl.int64)[:, None] * D + d[None, :], mask=m_ok[:, None] & d_ok[None, :], other=0.0)
        w = tl.load(WT + d.to(tl.int64)[:, None] * K + k[None, :], mask=d_ok[:, None] & k_ok[None, :], other=0.0)
        acc = tl.dot(g, w, acc, input_precision=IN_PREC)
    offs, mask = _patch_offsets(m, k, M, K, H, W, sf_b, sf_c, sf_h, sf_w, P, G)
    tl.store(DFEAT + offs, acc.to(DFEAT.dtype.element_ty), mask=mask)


@triton.jit
def _embed_dweight_kernel(GRAD, FEAT, DWT, M, K, D, H, W, sf_b, sf_c, sf_h, sf_w,
                          P: tl.constexpr, G: tl.constexpr, IN_PREC: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # dW (D, K) = GRAD^T (D, M) x A (M, K), A gathered from FEAT. BLOCK_M tiles D, BLOCK_N tiles K,
    # BLOCK_K tiles M (the reduction).
    d = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    k = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    d_ok = d < D
    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, tl.float32)  # tl.full: a builtin (see attention_kernels)
    for m0 in range(0, M, BLOCK_K):
        m = m0 + tl.arange(0, BLOCK_K)
        gt = tl.load(GRAD + m.to(tl.int64)[None, :] * D + d[:, None], mask=(m < M)[None, :] & d_ok[:, None], other=0.0)
        a_offs, a_mask = _patch_offsets(m, k, M, K, H, W, sf_b, sf_c, sf_h, sf_w, P, G)
        a = tl.load(FEAT + a_offs, mask=a_mask, other=0.0)
        acc = tl.dot(gt, a, acc, input_precision=IN_PREC)
    out_offs = d.to(tl.int64)[:, None] * K + k[None, :]
    tl.store(DWT + out_offs, acc.to(DWT.dtype.element_ty), mask=d_ok[:, None] & (k < K)[None, :])


def _configs():
    return [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=st)
        for bm, bn, bk, w, st in (
            (128, 128, 32, 8, 3),
            (128, 64, 32, 4, 4),
            (64, 128, 32, 4, 4),
            (64, 64, 64, 4, 3),
            (128, 128, 64, 8, 3),
            (64, 64, 32, 4, 2),
        )
    ]


if INTERPRET:
    # The interpreter runs each program in numpy: no autotuning; small GPU-legal blocks for tiny tests.
    embed_fwd = _embed_fwd_kernel
    embed_dfeat = _embed_dfeat_kernel
    embed_dweight = _embed_dweight_kernel
    FIXED_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16}
else:
    _key = ["M", "K", "D", "P", "G"]
    embed_fwd = triton.autotune(configs=_configs(), key=_key)(_embed_fwd_kernel)
    embed_dfeat = triton.autotune(configs=_configs(), key=_key)(_embed_dfeat_kernel)
    embed_dweight = triton.autotune(configs=_configs(), key=_key)(_embed_dweight_kernel)
    FIXED_CONFIG = {}
