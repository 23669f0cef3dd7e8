"""Scoring a PyTorch model on a dataset, on every rank of a run: WAR/UAR for DFER, MEGC F1 for spotting.

DFER: each rank predicts its shard of the clips (:class:`~edgefer.train.distributed.ShardSampler`, every clip
once), the (7, 7) confusion matrices are summed across ranks (all_reduce), and WAR/UAR come from the sum
(:mod:`edgefer.train.metrics`). Spotting: see :mod:`edgefer.train.spotting`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..labels import DFER_LABELS
from .distributed import DistContext, ShardSampler, all_reduce_sum
from .metrics import ClassificationScores, scores


@contextlib.contextmanager
def worker_errors():
    """Give an edgefer error raised in a DataLoader worker process its own one-line message back.

    PyTorch re-raises a worker's exception in the main process as the same type with the message ``Caught X in
    DataLoader worker process N.`` followed by the worker's traceback; the line that names the bad file is the
    traceback's last. This re-raises the exception with that line alone, so the CLI's one line names the file.
    """
    from ..errors import EdgeferError

    try:
        yield
    except EdgeferError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
            last = lines[-1]
            prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
            raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from None
        raise


def autocast(device: torch.device, enabled: bool, dtype: str = "float16"):
    """``torch.autocast`` on a CUDA device when ``enabled``; a no-op context otherwise."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=getattr(torch, dtype))


@torch.no_grad()
def dfer_confusion(model: torch.nn.Module, dataset: Dataset, ctx: DistContext, *, batch_size: int = 16,
                   num_workers: int = 0, amp: bool = False, amp_dtype: str = "float16",
                   num_classes: int = len(DFER_LABELS)) -> np.ndarray:
    """The (num_classes, num_classes) int64 confusion matrix (rows = targets) of ``model`` on ``dataset``, summed
    over all ranks.

    ``dataset[i]`` is ``(clip (T, 3, S, S) float32, label int64)``; the model returns logits (B, num_classes) and
    is run in eval mode (restored afterwards).
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), ctx),
                        num_workers=num_workers, pin_memory=ctx.device.type == "cuda")
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    with worker_errors():
        _accumulate(model, loader, cm, ctx, amp, amp_dtype, num_classes)
    all_reduce_sum(cm, ctx)
    model.train(was_training)
    return cm.numpy()


def _accumulate(model, loader, cm, ctx, amp, amp_dtype, num_classes) -> None:
    for clips, labels in loader:
        with autocast(ctx.device, amp, amp_dtype):
            logits = model(clips.to(ctx.device, non_blocking=True))
        pred = logits.float().argmax(dim=1).cpu()
        cm += torch.bincount(labels * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def evaluate_dfer(model: torch.nn.Module, dataset: Dataset, ctx: DistContext, **options) -> ClassificationScores:
    """WAR / UAR over the fixed 7-class set of ``model`` on ``dataset`` (see :func:`dfer_confusion`)."""
    return scores(dfer_confusion(model, dataset, ctx, **options))
