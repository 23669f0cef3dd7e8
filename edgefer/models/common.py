"""Pieces every clip model shares: the DFER artefact description and the input-shape check."""

from __future__ import annotations

import torch

from ..labels import DFER_LABELS


def dfer_metadata_fields(name: str, config) -> dict:
    """:class:`edgefer.metadata.ModelMetadata` fields of a DFER clip model reading (B, T, 3, S, S) RGB in [0, 1].

    ``config`` needs ``num_classes``, ``clip_length`` and ``frame_size``. Labels are DFEW's 7 classes when the
    model has 7 outputs, else ``class_i``. Sampling is the DFEW test protocol (design note, shared conventions).
    """
    c = config
    labels = DFER_LABELS if c.num_classes == len(DFER_LABELS) else tuple(f"class_{i}" for i in range(c.num_classes))
    return dict(model=name, task="dfer", labels=labels, clip_length=c.clip_length,
                frame_size=(c.frame_size, c.frame_size), colour_order="RGB", mean=(0.0,), std=(1.0,),
                sampling="dfew-test", input_layout="BTCHW", output="logits")


def check_clip(clip: torch.Tensor, config) -> None:
    """Raise ValueError unless ``clip`` is (B, clip_length, 3, frame_size, frame_size)."""
    expected = (config.clip_length, 3, config.frame_size, config.frame_size)
    if clip.dim() != 5 or tuple(clip.shape[1:]) != expected:
        raise ValueError(f"clip must be (B, {', '.join(map(str, expected))}), got {tuple(clip.shape)}")


def check_kernels(kernels: str) -> str:
    """Return ``kernels`` if it names an op implementation (:data:`edgefer.ops.KERNELS`), else raise ValueError."""
    from ..ops import KERNELS

    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of {KERNELS}")
    return kernels
