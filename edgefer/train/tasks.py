"""What training computes for each model: its loss on a batch, and what evaluation reads from its output.

- MSSTNet: cross entropy of the logits (B, 7) against the clip labels (B,).
- STT: ``model.loss(model.forward_features(clip), labels)``: the compact softmax CE (or plain CE), as the model's
  config says (:mod:`edgefer.models.losses`).
- FESNet: ``model.loss(model.forward_stages(clip), frame_labels)``: the sum over stages of class-weighted frame
  CE plus the smooth loss (:class:`edgefer.models.losses.SpottingLoss`).

:class:`LossModule` puts the forward *and* the loss inside one ``forward``, so that
:class:`~torch.nn.parallel.DistributedDataParallel` wraps the whole computation (calling a wrapped model's
``module.forward_features`` would bypass DDP's gradient synchronisation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: model name -> task: ``dfer`` (clip classification) or ``spotting`` (frame-wise neutral/macro/micro).
TASKS = {"msstnet": "dfer", "stt": "dfer", "fesnet": "spotting"}


class LossModule(nn.Module):
    """``forward(inputs, targets) -> scalar loss`` of an edgefer model (see the module doc).

    Args:
        model: an edgefer model (``model.name`` in :data:`TASKS`).

    Inputs: DFER clips (B, T, 3, S, S) float32 with labels (B,) int64; spotting windows (B, K, 3, S, S) with frame
    labels (B, K) int64 (-100 = ignored).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model.name == "stt":
            return model.loss(model.forward_features(inputs), targets)
        if model.name == "fesnet":
            return model.loss(model.forward_stages(inputs), targets)
        return F.cross_entropy(model(inputs), targets)


def set_batchnorm_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer of ``model`` in eval mode (running statistics used and kept; affine parameters
    still trained): ``freeze_bn``. Returns how many layers it set."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            count += 1
    return count
