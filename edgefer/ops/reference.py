"""Plain-PyTorch reference semantics of edgefer's two kernels.

These functions *define* the ops; every other implementation (C++/CUDA in ``csrc/``, Triton in
:mod:`edgefer.ops.triton`, the ONNX Runtime custom ops) must match them numerically. They export to
standard ONNX ops, so the default export of every model uses them.

Token layout everywhere: ``(B, T, N, D)`` -- clip, frame (time), spatial token, channel.

The argument checks here state the ops' rules; the compiled kernels apply the same rules from their one C++ home
(``csrc/include/edgefer/checks.h``, used by ``edgefer._C`` and the ONNX Runtime custom ops), and in addition refuse
sizes their int64 arithmetic cannot address (byte extents, scratch), which no tensor torch can allocate reaches.

Source: the MSSTNet design note (``shared/design/models.md``, "Where the two kernels sit").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def temporal_attention(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    """Multi-head self-attention along the time axis, independently per (clip, spatial token, head).

    Args:
        qkv: (B, T, N, 3*D) float tensor, the output of the block's ``Linear(D, 3*D)`` QKV projection.
            Channel ``c`` of the last axis is part ``c // D`` (0 = q, 1 = k, 2 = v), head ``(c % D) // d_h``,
            element ``c % d_h``, with ``d_h = D // num_heads``. Any strides.
        num_heads: H >= 1, with ``3 * H`` dividing the last axis and fitting in int64.
        scale: softmax temperature; ``1 / sqrt(d_h)`` when None.

    Returns:
        (B, T, N, D) tensor, same dtype: ``out[b, t, n, h*d_h:(h+1)*d_h] =
        sum_s softmax_s(scale * q[b,t,n,h] . k[b,s,n,h]) v[b,s,n,h]``, contiguous.

    Raises:
        ValueError: qkv is not 4-D, ``3 * num_heads`` overflows int64, or qkv's last axis is not a multiple of
            ``3 * num_heads`` (num_heads < 1 included).
    """
    B, T, N, D, d_h = _check_qkv(qkv, num_heads)
    if scale is None:
        scale = 1.0 / math.sqrt(d_h)
    q, k, v = qkv.unflatten(-1, (3, num_heads, d_h)).unbind(-3)  # each (B, T, N, H, d_h)
    q, k, v = (x.permute(0, 2, 3, 1, 4) for x in (q, k, v))  # (B, N, H, T, d_h)
    attn = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)
    out = attn @ v  # (B, N, H, T, d_h)
    return out.permute(0, 3, 1, 2, 4).reshape(B, T, N, D)


def multiscale_embedding(
    feat: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    pos_t: torch.Tensor,
    pos_s: torch.Tensor,
    residual: torch.Tensor | None = None,
    grid: int = 4,
) -> torch.Tensor:
    """MSSTNet's MELayer for one scale, plus the T-Former's residual add.

    The map is zero-padded right/bottom to ``grid * P`` (``P = weight.shape[-1]``), cut into a grid x grid
    set of non-overlapping P x P patches (N = grid**2 tokens, row-major: n = gy * grid + gx), each patch
    projected linearly to D (exactly ``Conv2d(C, D, kernel=P, stride=P)``), then bias, the temporal position
    embedding of its frame, the spatial embedding of its patch and ``residual`` are added.

    Args:
        feat: (B*T, C, H, W) backbone map of one scale, frames folded into the batch (frame-major per clip).
        weight: (D, C, P, P) projection, with ``grid * P >= H, W`` and ``(grid - 1) * P < H, W``.
        bias: (D,).
        pos_t: (T, D) temporal position embedding, shared by the N tokens.
        pos_s: (N, D) spatial embedding, shared by the T frames.
        residual: (B, T, N, D) running tokens ``x_(l-1)``, or None for zeros.
        grid: G >= 1, patches per side, with ``grid * grid`` fitting in int64.

    Returns:
        (B, T, N, D) tensor of feat's dtype, contiguous.

    Raises:
        ValueError: on shape mismatches between the arguments, or a grid out of range.
    """
    BT, C, H, W = _check_embedding(feat, weight, bias, pos_t, pos_s, residual, grid)
    T, D = pos_t.shape
    P = weight.shape[-1]
    if torch.jit.is_tracing():
        # an ONNX export: the map's H, W follow from the static frame size (only the batch axis is dynamic), so the
        # pads are constants of the graph rather than a Shape -> Sub chain, on which ONNX Runtime's symbolic shape
        # inference asserted (export.int8's pre-processing) and which kept 6 more Transposes in the int8 graph
        H, W = _static_size(H), _static_size(W)
    x = F.pad(feat, (0, grid * P - W, 0, grid * P - H))
    x = F.conv2d(x, weight, bias, stride=P)  # (B*T, D, G, G)
    x = x.flatten(2).transpose(1, 2).reshape(BT // T, T, grid * grid, D)
    x = x + pos_t[:, None, :] + pos_s[None, :, :]
    if residual is not None:
        x = x + residual
    return x.contiguous()


def _static_size(size) -> int:
    """A traced tensor size as a Python int (a constant of the trace), without the tracer's warning about it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return int(size)


_INT64_MAX = 2**63 - 1


def _check_qkv(qkv: torch.Tensor, num_heads: int) -> tuple[int, int, int, int, int]:
    if qkv.dim() != 4:
        raise ValueError(f"qkv must be 4-D (B, T, N, 3*D), got shape {tuple(qkv.shape)}")
    B, T, N, D3 = qkv.shape
    if 3 * num_heads > _INT64_MAX:
        raise ValueError(f"num_heads {num_heads} is too large: 3 * num_heads overflows int64")
    if num_heads < 1 or D3 % (3 * num_heads) != 0:
        raise ValueError(f"qkv's last axis ({D3}) is not a multiple of 3 * num_heads ({3 * num_heads})")
    D = D3 // 3
    return B, T, N, D, D // num_heads


def _check_embedding(feat, weight, bias, pos_t, pos_s, residual, grid) -> tuple[int, int, int, int]:
    if feat.dim() != 4:
        raise ValueError(f"feat must be 4-D (B*T, C, H, W), got shape {tuple(feat.shape)}")
    BT, C, H, W = feat.shape
    if weight.dim() != 4 or weight.shape[1] != C or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"weight must be (D, {C}, P, P), got shape {tuple(weight.shape)}")
    D, P = weight.shape[0], weight.shape[-1]
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    if grid * grid > _INT64_MAX:
        raise ValueError(f"grid {grid} is too large: grid * grid overflows int64")
    if not (grid * P >= max(H, W) and (grid - 1) * P < min(H, W)):
        raise ValueError(f"patch size {P} does not cut a {H}x{W} map into a {grid}x{grid} grid")
    if pos_t.dim() != 2 or pos_t.shape[1] != D or pos_t.shape[0] < 1 or BT % pos_t.shape[0] != 0:
        raise ValueError(f"pos_t must be (T, {D}) with T dividing {BT}, got shape {tuple(pos_t.shape)}")
    if tuple(bias.shape) != (D,):
        raise ValueError(f"bias must be ({D},), got shape {tuple(bias.shape)}")
    if tuple(pos_s.shape) != (grid * grid, D):
        raise ValueError(f"pos_s must be ({grid * grid}, {D}), got shape {tuple(pos_s.shape)}")
    T = pos_t.shape[0]
    if residual is not None and tuple(residual.shape) != (BT // T, T, grid * grid, D):
        raise ValueError(f"residual must be ({BT // T}, {T}, {grid * grid}, {D}), got shape {tuple(residual.shape)}")
    return BT, C, H, W
