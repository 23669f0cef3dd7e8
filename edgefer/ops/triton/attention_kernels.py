"""Triton kernels of fused temporal attention (forward and backward). Load through
:func:`edgefer.ops.triton.kernel_module` (``kernel_module("attention_kernels")``), never cache the kernels
elsewhere: this module is re-executed when ``TRITON_INTERPRET`` changes.

Work split: sequence ``s`` in ``[0, B*N*H)`` is (clip b, spatial token n, head h) with h fastest, so the
BLOCK_S sequences of one program read neighbouring heads / tokens of the same frame rows (coalesced). Each
program holds, for its BLOCK_S sequences, q, k, v as [BLOCK_S, BLOCK_T, BLOCK_D] tiles and does batched
``tl.dot``s of BLOCK_T x BLOCK_T x BLOCK_D (BLOCK_T = max(16, next_pow2(T)), BLOCK_D = max(16,
next_pow2(d_h)): GPU-legal MMA shapes, padding masked). No tiling along T: one tile holds the whole sequence.

Element (b, t, n, part, h, e) of the (B, T, N, 3D) qkv sits at ``b*sb + t*st + n*sn + part*D + h*d_h + e``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from . import interpret_mode

#: The mode the kernels below were defined in (see edgefer.ops.triton.kernel_module).
INTERPRET = interpret_mode()

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453

#: Largest T and head dim the kernels take (one register tile per sequence).
MAX_T = 128
MAX_HEAD_DIM = 128
#: Register budget: BLOCK_S * BLOCK_T * max(BLOCK_T, BLOCK_D) elements per tile.
_TILE_BUDGET = 16384


def _configs():
    return [
        triton.Config({"BLOCK_S": bs}, num_warps=w, num_stages=1)
        for bs, w in ((1, 1), (2, 2), (4, 4), (8, 4), (8, 8), (16, 4), (16, 8), (32, 8))
    ]


def _prune(configs, named_args, **kwargs):
    args = {**named_args, **kwargs}
    tile = args["BLOCK_T"] * max(args["BLOCK_T"], args["BLOCK_D"])
    kept = [c for c in configs if c.kwargs["BLOCK_S"] * tile <= _TILE_BUDGET]
    return kept or configs[:1]


# Reductions go through tl.reduce with triton's own combine functions rather than tl.max / tl.sum: those two
# are @triton.jit functions of triton.language, defined once when triton is imported, so they break under the
# interpreter when triton was imported before TRITON_INTERPRET=1 was set; tl.reduce is a builtin, and the
# interpreter runs these two combine functions as numpy reductions.
@triton.jit
def _max(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._elementwise_max)


@triton.jit
def _sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._sum_combine)


@triton.jit
def _seq_offsets(pid, S, N, H, stride_b, stride_n, T, D: tl.constexpr, HEAD_DIM: tl.constexpr,
                 BLOCK_S: tl.constexpr):
    """Per-sequence base offsets into qkv and into the contiguous (B, T, N, D) output."""
    s = pid * BLOCK_S + tl.arange(0, BLOCK_S)
    h = s % H
    n = (s // H) % N
    b = (s // H) // N
    in_base = b.to(tl.int64) * stride_b + n.to(tl.int64) * stride_n + h * HEAD_DIM
    out_base = b.to(tl.int64) * T * N * D + n.to(tl.int64) * D + h * HEAD_DIM
    return s, in_base, out_base


@triton.jit
def _attn_fwd_kernel(QKV, OUT, LSE, S, T, N, H, stride_b, stride_t, stride_n, sm_scale,
                     D: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                     STORE_LSE: tl.constexpr, IN_PREC: tl.constexpr, BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    s, in_base, out_base = _seq_offsets(pid, S, N, H, stride_b, stride_n, T, D, HEAD_DIM, BLOCK_S)
    t = tl.arange(0, BLOCK_T)
    e = tl.arange(0, BLOCK_D)
    s_ok = s < S
    t_ok = t < T
    mask = s_ok[:, None, None] & t_ok[None, :, None] & (e < HEAD_DIM)[None, None, :]
    offs = in_base[:, None, None] + t.to(tl.int64)[None, :, None] * stride_t + e[None, None, :]
    q = tl.load(QKV + offs, mask=mask, other=0.0)
    k = tl.load(QKV + D + offs, mask=mask, other=0.0)
    v = tl.load(QKV + 2 * D + offs, mask=mask, other=0.0)

    # scores in log2 units: scale * q.k * log2(e)
    scores = tl.dot(q, tl.trans(k, (0, 2, 1)), input_precision=IN_PREC) * (sm_scale * LOG2E)
    scores = tl.where(t_ok[None, None, :], scores, float("-inf"))
    row_max = _max(scores, 2)
    p = tl.exp2(scores - row_max[:, :, None])
    row_sum = _sum(p, 2)
    o = tl.dot(p.to(v.dtype), v, input_precision=IN_PREC) / row_sum[:, :, None]

    out_offs = out_base[:, None, None] + t.to(tl.int64)[None, :, None] * (N * D) + e[None, None, :]
    tl.store(OUT + out_offs, o.to(OUT.dtype.element_ty), mask=mask)
    if STORE_LSE:
        lse = (row_max + tl.log2(row_sum)) * LN2  # natural-log log-sum-exp of the scaled scores
        tl.store(LSE + s.to(tl.int64)[:, None] * T + t[None, :], lse, mask=s_ok[:, None] & t_ok[None, :])


@triton.jit
def _attn_bwd_kernel(QKV, OUT, DOUT, LSE, DQKV, S, T, N, H, stride_b, stride_t, stride_n, sm_scale,
                     D: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                     IN_PREC: tl.constexpr, BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    s, in_base, out_base = _seq_offsets(pid, S, N, H, stride_b, stride_n, T, D, HEAD_DIM, BLOCK_S)
    t = tl.arange(0, BLOCK_T)
    e = tl.arange(0, BLOCK_D)
    s_ok = s < S
    t_ok = t < T
    mask = s_ok[:, None, None] & t_ok[None, :, None] & (e < HEAD_DIM)[None, None, :]
    t64 = t.to(tl.int64)[None, :, None]
    offs = in_base[:, None, None] + t64 * stride_t + e[None, None, :]
    q = tl.load(QKV + offs, mask=mask, other=0.0)
    k = tl.load(QKV + D + offs, mask=mask, other=0.0)
    v = tl.load(QKV + 2 * D + offs, mask=mask, other=0.0)
    out_offs = out_base[:, None, None] + t64 * (N * D) + e[None, None, :]
    o = tl.load(OUT + out_offs, mask=mask, other=0.0)
    do = tl.load(DOUT + out_offs, mask=mask, other=0.0)
    row_ok = s_ok[:, None] & t_ok[None, :]
    lse = tl.load(LSE + s.to(tl.int64)[:, None] * T + t[None, :], mask=row_ok, other=0.0)

    # P from the saved log-sum-exp: no max / sum pass
    scores = tl.dot(q, tl.trans(k, (0, 2, 1)), input_precision=IN_PREC)
    p = tl.exp2((scores * sm_scale - lse[:, :, None]) * LOG2E)
    p = tl.where(row_ok[:, :, None] & t_ok[None, None, :], p, 0.0)
    delta = _sum(do.to(tl.float32) * o.to(tl.float32), 2)  # rowsum(dO * O) = rowsum(P * dP)

    dv = tl.dot(tl.trans(p.to(do.dtype), (0, 2, 1)), do, input_precision=IN_PREC)
    dp = tl.dot(do, tl.trans(v, (0, 2, 1)), input_precision=IN_PREC)
    ds = (p * (dp - delta[:, :, None]) * sm_scale).to(q.dtype)
    dq = tl.dot(ds, k, input_precision=IN_PREC)
    dk = tl.dot(tl.trans(ds, (0, 2, 1)), q, input_precision=IN_PREC)

    # DQKV: contiguous (B, T, N, 3D); sequence base = b*T*N*3D + n*3D + h*HEAD_DIM = 3*out_base - 2*h*HEAD_DIM
    h_off = (s % H) * HEAD_DIM
    g_base = 3 * (out_base - h_off) + h_off
    g_offs = g_base[:, None, None] + t64 * (N * 3 * D) + e[None, None, :]
    ty = DQKV.dtype.element_ty
    tl.store(DQKV + g_offs, dq.to(ty), mask=mask)
    tl.store(DQKV + D + g_offs, dk.to(ty), mask=mask)
    tl.store(DQKV + 2 * D + g_offs, dv.to(ty), mask=mask)


if INTERPRET:
    # The interpreter runs each program in numpy: no autotuning, one block big enough for the tests.
    attn_fwd = _attn_fwd_kernel
    attn_bwd = _attn_bwd_kernel
    FIXED_CONFIG = {"BLOCK_S": 16}
else:
    _tune = dict(configs=_configs(), key=["T", "H", "D", "HEAD_DIM"], prune_configs_by={"early_config_prune": _prune})
    attn_fwd = triton.autotune(**_tune)(_attn_fwd_kernel)
    attn_bwd = triton.autotune(**_tune)(_attn_bwd_kernel)
    FIXED_CONFIG = {}
