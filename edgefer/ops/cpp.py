"""The compiled kernels (``edgefer._C``) as torch ops: ``torch.ops.edgefer.temporal_attention`` and
``torch.ops.edgefer.multiscale_embedding``.

Registered with :func:`torch.library.custom_op`, so they run eagerly, trace under ``torch.export`` /
``torch.compile`` (a fake implementation gives the output's shape) and are what the ``--custom-ops`` ONNX
export turns into ``edgefer``-domain nodes (:mod:`export.custom_ops`). The forward runs the C++ kernels on the
CPU (float32) and, when ``edgefer._C`` was built with CUDA, the CUDA kernels on the GPU (float32/float16).

Eager inference skips torch.library's dispatch (about 0.1-0.2 ms a call, as much as the attention kernel itself
at B = 1): when no input needs a gradient and nothing traces (``torch.jit`` tracing, ``torch.onnx`` export,
``torch.compile``/``torch.export`` fake tensors), the public functions call the kernels directly; otherwise they
go through the registered op, which is what autograd, the exporters and the compilers see.

Autograd: the backward is the reference's (:mod:`edgefer.ops.reference`): it recomputes the reference forward
on the saved inputs and differentiates it. So training through ``kernels="cpp"`` is exact but not faster than
the reference; the compiled kernels are for inference. Second derivatives are not supported.

Importing this module raises ImportError when ``edgefer._C`` is not built; :mod:`edgefer.ops` then falls back.
Semantics, shapes and errors: :mod:`edgefer.ops.reference` (source: ``shared/design/models.md``, "Where the
two kernels sit").
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from . import reference

try:
    from .. import _C
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(f"edgefer._C is not built ({exc}); install edgefer with `pip install .` (or build it with "
                      "CMake) to use kernels='cpp'") from exc

__all__ = ["is_available", "temporal_attention", "multiscale_embedding"]


def is_available(device: torch.device | str) -> bool:
    """Whether the compiled kernels run on ``device``: always on the CPU (this module imported, so ``_C`` is
    built); on CUDA when ``_C`` was built with CUDA and torch sees a GPU."""
    device = torch.device(device)
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return bool(_C.cuda_built()) and torch.cuda.is_available()
    return False


def _device_guard(t: torch.Tensor):
    return torch.cuda.device(t.device) if t.device.type == "cuda" else nullcontext()


def _stream(t: torch.Tensor) -> int | None:
    return torch.cuda.current_stream(t.device).cuda_stream if t.device.type == "cuda" else None


def _direct(*tensors: torch.Tensor | None) -> bool:
    """Whether a call may skip the registered op: plain eager tensors, no gradient wanted, nothing tracing."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t is not None and (type(t) is not torch.Tensor or (grad and t.requires_grad)):
            return False  # a subclass (FakeTensor under torch.export, ...) or an autograd leaf/graph node
    return True


# ---- temporal attention -----------------------------------------------------------------------------------------

def _attention_forward(qkv: torch.Tensor, num_heads: int, scale: float | None) -> torch.Tensor:
    B, T, N, D, _ = reference._check_qkv(qkv, num_heads)
    qkv = qkv.detach()
    if qkv.stride(-1) != 1:
        qkv = qkv.contiguous()
    out = qkv.new_empty((B, T, N, D))
    with _device_guard(qkv):
        _C.temporal_attention(qkv, num_heads, scale, out=out, stream=_stream(qkv))
    return out


@torch.library.custom_op("edgefer::temporal_attention", mutates_args=())
def _temporal_attention_op(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    return _attention_forward(qkv, num_heads, scale)


@_temporal_attention_op.register_fake
def _(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    B, T, N, D, _ = reference._check_qkv(qkv, num_heads)
    return qkv.new_empty((B, T, N, D))


def _attention_setup_context(ctx, inputs, output) -> None:
    qkv, num_heads, scale = inputs
    ctx.save_for_backward(qkv)
    ctx.num_heads, ctx.scale = num_heads, scale


def _attention_backward(ctx, grad_out: torch.Tensor):
    (qkv,) = ctx.saved_tensors
    with torch.enable_grad():
        x = qkv.detach().requires_grad_(True)
        out = reference.temporal_attention(x, ctx.num_heads, ctx.scale)
        (grad_qkv,) = torch.autograd.grad(out, x, grad_out)
    return grad_qkv, None, None


_temporal_attention_op.register_autograd(_attention_backward, setup_context=_attention_setup_context)


def temporal_attention(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    """Fused temporal attention on the compiled kernels (``torch.ops.edgefer.temporal_attention``).

    Args:
        qkv: (B, T, N, 3*D) float32 (CPU) or float32/float16 (CUDA) tensor, any strides (read in place when the
            last axis has stride 1, else copied once).
        num_heads: H, with 3*H dividing the last axis.
        scale: softmax temperature; ``1 / sqrt(D / H)`` when None.

    Returns:
        (B, T, N, D) contiguous tensor of qkv's dtype, as :func:`edgefer.ops.reference.temporal_attention`.

    Raises:
        ValueError: qkv is not 4-D, its last axis is not a multiple of ``3 * num_heads``, it has a zero-size
            axis, sizes the kernels cannot address in int64, or it lives on a device these kernels were not
            built for.
        TypeError: qkv's dtype is not supported on its device.
        MemoryError: the kernel's scratch cannot be allocated (the next call is unaffected).
    """
    if _direct(qkv):
        return _attention_forward(qkv, num_heads, scale)
    return _temporal_attention_op(qkv, num_heads, scale)


# ---- multi-scale embedding -------------------------------------------------------------------------------------

def _embedding_forward(feat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pos_t: torch.Tensor,
                       pos_s: torch.Tensor, residual: torch.Tensor | None, grid: int) -> torch.Tensor:
    BT, _, _, _ = reference._check_embedding(feat, weight, bias, pos_t, pos_s, residual, grid)
    T, D = pos_t.shape
    out = feat.new_empty((BT // T, T, grid * grid, D))
    weight, bias, pos_t, pos_s = (x.detach().contiguous() for x in (weight, bias, pos_t, pos_s))
    residual = residual.detach() if residual is not None else None
    with _device_guard(feat):
        _C.multiscale_embedding(feat.detach(), weight, bias, pos_t, pos_s, residual, grid, out=out,
                                stream=_stream(feat))
    return out


@torch.library.custom_op("edgefer::multiscale_embedding", mutates_args=())
def _multiscale_embedding_op(feat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pos_t: torch.Tensor,
                             pos_s: torch.Tensor, residual: torch.Tensor | None = None, grid: int = 4) -> torch.Tensor:
    return _embedding_forward(feat, weight, bias, pos_t, pos_s, residual, grid)


@_multiscale_embedding_op.register_fake
def _(feat, weight, bias, pos_t, pos_s, residual=None, grid: int = 4) -> torch.Tensor:
    BT, _, _, _ = reference._check_embedding(feat, weight, bias, pos_t, pos_s, residual, grid)
    T, D = pos_t.shape
    return feat.new_empty((BT // T, T, grid * grid, D))


def _embedding_setup_context(ctx, inputs, output) -> None:
    feat, weight, bias, pos_t, pos_s, residual, grid = inputs
    ctx.save_for_backward(feat, weight, bias, pos_t, pos_s, residual)
    ctx.grid = grid


def _embedding_backward(ctx, grad_out: torch.Tensor):
    saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:6]
    with torch.enable_grad():
        leaves = [None if t is None else t.detach().requires_grad_(bool(n)) for t, n in zip(saved, needs)]
        out = reference.multiscale_embedding(*leaves, grid=ctx.grid)
        wanted = [t for t, n in zip(leaves, needs) if t is not None and n]
        grads = iter(torch.autograd.grad(out, wanted, grad_out) if wanted else ())
    return (*[next(grads) if t is not None and n else None for t, n in zip(leaves, needs)], None)


_multiscale_embedding_op.register_autograd(_embedding_backward, setup_context=_embedding_setup_context)


def multiscale_embedding(feat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pos_t: torch.Tensor,
                         pos_s: torch.Tensor, residual: torch.Tensor | None = None, grid: int = 4) -> torch.Tensor:
    """Multi-scale embedding on the compiled kernels (``torch.ops.edgefer.multiscale_embedding``).

    pad + patchify + project (``Conv2d(C, D, P, stride=P)``) + bias + pos_t + pos_s + residual, as
    :func:`edgefer.ops.reference.multiscale_embedding`.

    Args:
        feat: (B*T, C, H, W) float32 (CPU) or float32/float16 (CUDA), any strides.
        weight: (D, C, P, P). bias: (D,). pos_t: (T, D). pos_s: (grid**2, D). residual: (B, T, grid**2, D) or None.
            All of feat's dtype and device.
        grid: patches per side.

    Returns:
        (B, T, grid**2, D) contiguous tensor of feat's dtype.

    Raises:
        ValueError: shape mismatches (as the reference), zero-size axes, sizes the kernels cannot address in
            int64, or an unsupported device.
        TypeError: dtypes differ or are not supported on the device.
        MemoryError: the kernel's scratch cannot be allocated (the next call is unaffected).
    """
    if _direct(feat, weight, bias, pos_t, pos_s, residual):
        return _embedding_forward(feat, weight, bias, pos_t, pos_s, residual, grid)
    return _multiscale_embedding_op(feat, weight, bias, pos_t, pos_s, residual, grid)
