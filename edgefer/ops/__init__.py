"""edgefer's two kernels behind one dispatch: fused temporal attention and multi-scale embedding.

One definition of each op (:mod:`edgefer.ops.reference`), several implementations:

- ``"reference"``: plain PyTorch; exports to standard ONNX ops.
- ``"cpp"``: the compiled ``edgefer._C`` kernels (C++ on the CPU, CUDA on the GPU), :mod:`edgefer.ops.cpp`.
- ``"triton"``: Triton kernels for CUDA tensors, :mod:`edgefer.ops.triton`.
- ``"auto"``: the fastest one present for the tensors' device (triton > cpp > reference on CUDA, cpp >
  reference on the CPU). A missing backend falls back silently.

Each backend module exposes ``is_available(device: torch.device) -> bool``, ``temporal_attention`` and
``multiscale_embedding`` with the reference's signatures. This package imports torch; the torch-free
runtime never imports it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType

import torch

from . import reference

KERNELS = ("auto", "reference", "cpp", "triton")
_PREFERENCE = {"cuda": ("triton", "cpp", "reference"), "cpu": ("cpp", "reference")}


@lru_cache(maxsize=None)
def _backend(name: str) -> ModuleType | None:
    if name == "reference":
        return reference
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None


def backend_available(name: str, device: torch.device | str) -> bool:
    """Whether implementation ``name`` can run on ``device`` here (its package and build are present)."""
    if name not in KERNELS or name == "auto":
        raise ValueError(f"unknown kernels {name!r}; choose one of {KERNELS[1:]}")
    module = _backend(name)
    if module is None:
        return False
    return name == "reference" or bool(module.is_available(torch.device(device)))


def resolve_kernels(kernels: str, device: torch.device | str) -> str:
    """Turn ``kernels`` (one of :data:`KERNELS`) into the implementation that will run on ``device``.

    Raises:
        ValueError: ``kernels`` is unknown, or names a backend that is not available on ``device``.
    """
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of {KERNELS}")
    device = torch.device(device)
    if kernels == "auto":
        for name in _PREFERENCE.get(device.type, ("reference",)):
            if backend_available(name, device):
                return name
        return "reference"
    if not backend_available(kernels, device):
        raise ValueError(f"kernels={kernels!r} is not available on {device} in this installation")
    return kernels


def temporal_attention(qkv: torch.Tensor, num_heads: int, scale: float | None = None, *,
                       kernels: str = "auto") -> torch.Tensor:
    """Fused temporal attention; semantics, shapes and errors as :func:`edgefer.ops.reference.temporal_attention`."""
    name = resolve_kernels(kernels, qkv.device)
    return _backend(name).temporal_attention(qkv, num_heads, scale)  # type: ignore[union-attr]


def multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual=None, grid: int = 4, *,
                         kernels: str = "auto") -> torch.Tensor:
    """Multi-scale embedding; semantics, shapes and errors as :func:`edgefer.ops.reference.multiscale_embedding`."""
    name = resolve_kernels(kernels, feat.device)
    return _backend(name).multiscale_embedding(feat, weight, bias, pos_t, pos_s, residual, grid)  # type: ignore[union-attr]
