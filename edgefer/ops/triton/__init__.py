"""Triton kernels for edgefer's two ops on CUDA tensors: fused temporal attention and multi-scale embedding.

Same signatures, semantics and argument errors as :mod:`edgefer.ops.reference` (the ops' definition), plus
a backward pass for each (``torch.autograd.Function``), so that models train on them.

- :func:`temporal_attention`: one program handles a block of ``BLOCK_S`` (clip, spatial token, head)
  sequences of length T at once (batched 16 x 16 x d_h ``tl.dot``), reading q, k, v strided straight out of
  the QKV projection's (B, T, N, 3D) output and writing (B, T, N, D) contiguous; the forward keeps the
  log-sum-exp per (b, n, h, t) for the backward.
- :func:`multiscale_embedding`: an implicit-im2col GEMM (no padded copy, no patch copy) with a fused
  epilogue (bias + temporal and spatial position embeddings + residual add).

Devices: CUDA tensors when ``triton`` imports. CPU tensors only under Triton's interpreter, i.e. with the
environment variable ``TRITON_INTERPRET=1`` set (used by the tests; slow, ~10 ms per program).
``TRITON_INTERPRET`` is read when the kernels are *defined* (``triton.jit``); this package defines them on
first use and redefines them if the variable changed since (see :func:`kernel_module`), so a test may set it
at any time before calling an op. The dispatch's ``kernels="auto"`` never picks this backend on the CPU.

Importing this package imports torch (not triton: that happens on first use).
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from types import ModuleType

import torch

__all__ = ["is_available", "temporal_attention", "multiscale_embedding", "interpret_mode"]

_TRUE = ("1", "true", "on", "yes")


def interpret_mode() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's CPU interpreter (the same parsing as triton's knobs)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUE


@lru_cache(maxsize=None)
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install that fails while initialising
        return False
    return True


def is_available(device: torch.device | str) -> bool:
    """Whether these kernels can run on ``device``.

    True for a CUDA device when ``triton`` imports and torch sees a GPU; True for the CPU only under the
    interpreter (``TRITON_INTERPRET=1``); False otherwise. Never raises for a valid device.
    """
    device = torch.device(device)
    if not _triton_importable():
        return False
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type == "cpu":
        return interpret_mode()
    return False


def kernel_module(name: str) -> ModuleType:
    """Import kernel module ``edgefer.ops.triton.<name>``, re-executing it when ``TRITON_INTERPRET`` changed.

    ``triton.jit`` decides between compiled and interpreted kernels when it decorates a function, so a
    module whose kernels were defined in the other mode is reloaded (each kernel module records the mode
    it was defined in as ``INTERPRET``).
    """
    module = importlib.import_module(f"{__name__}.{name}")
    if module.INTERPRET != interpret_mode():
        module = importlib.reload(module)
    return module


def check_device(tensor: torch.Tensor, what: str) -> None:
    """Raise ValueError unless ``tensor`` lives where these kernels run (CUDA, or the CPU when interpreting)."""
    if not is_available(tensor.device):
        raise ValueError(
            f"{what} is on {tensor.device}; the triton kernels need a CUDA tensor "
            "(CPU tensors only under TRITON_INTERPRET=1) and an installed triton"
        )


def temporal_attention(qkv: torch.Tensor, num_heads: int, scale: float | None = None) -> torch.Tensor:
    """Fused temporal attention, differentiable; semantics of :func:`edgefer.ops.reference.temporal_attention`.

    Args:
        qkv: (B, T, N, 3*D) float16/bfloat16/float32 CUDA tensor, any strides (a last axis with a stride
            other than 1 is copied first). T <= 128, head dim ``D / num_heads`` <= 128.
        num_heads: H, dividing D.
        scale: softmax temperature; ``1 / sqrt(d_h)`` when None.

    Returns:
        (B, T, N, D) contiguous tensor of qkv's dtype. Accumulation is float32 (IEEE fp32 products for
        float32 inputs, no TF32). Its gradient w.r.t. ``qkv`` is one contiguous (B, T, N, 3D) tensor.

    Raises:
        TypeError: qkv is not a tensor, has an unsupported dtype, or num_heads is not an int.
        ValueError: bad rank, last axis not a multiple of ``3 * num_heads``, T or head dim too large, or a
            device these kernels cannot run on.
    """
    from .attention import temporal_attention as impl

    return impl(qkv, num_heads, scale)


def multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual=None, grid: int = 4) -> torch.Tensor:
    """Multi-scale embedding, differentiable; semantics of :func:`edgefer.ops.reference.multiscale_embedding`.

    Args:
        feat: (B*T, C, H, W) float16/bfloat16/float32 CUDA tensor, any strides (channels-last included).
        weight: (D, C, P, P); the GEMM runs in feat's dtype (weight is cast to it, as autocast would).
        bias: (D,). pos_t: (T, D). pos_s: (grid**2, D). residual: (B, T, grid**2, D) or None.
        grid: G, patches per side.

    Returns:
        (B, T, N, D) contiguous tensor; its dtype is torch's promotion of feat's dtype with those of pos_t,
        pos_s and residual (feat's dtype when they all agree, as the reference gives). float32 accumulation.
        Gradients flow to feat, weight, bias, pos_t, pos_s and residual, each in its own dtype.

    Raises:
        TypeError: a non-tensor argument or an unsupported dtype.
        ValueError: the reference's shape errors, or a device these kernels cannot run on.
    """
    from .embedding import multiscale_embedding as impl

    return impl(feat, weight, bias, pos_t, pos_s, residual, grid)
