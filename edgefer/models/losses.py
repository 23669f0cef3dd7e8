"""Training losses of STT and FESNet, and the cosine classifier the compact softmax loss trains.

- :class:`CompactSoftmaxLoss` (STT; edgefer's reading, the paper's formula could not be read -- design note
  ``shared/design/models.md``): cross entropy over cosine logits ``s * cos(theta_j)`` with an additive margin
  ``m`` on the target class (CosFace: Wang et al., CVPR 2018), plus ``lambda * mean ||f_hat - c_hat_y||^2``
  between the L2-normalised feature and its class's learnable, L2-normalised centre (a centre loss on the
  hypersphere: small intra-class, large inter-class distance). Defaults s = 16, m = 0.2, lambda = 0.01.
- :class:`SpottingLoss` (FESNet): per stage, class-weighted cross entropy over frames plus ``lambda_s`` times the
  truncated smoothing loss of MS-TCN (Farha and Gall, CVPR 2019), ``mean_(t, c) min((log p_t - log p_(t-1))^2,
  tau^2)`` with gradients stopped through ``p_(t-1)``; summed over stages. Defaults lambda_s = 0.15, tau = 4.

Importing this module imports torch.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class CosineLinear(nn.Module):
    """Cosine classifier: ``logits = scale * normalize(x) @ normalize(weight).T``.

    Input (..., in_features) float -> (..., out_features); every logit lies in [-scale, scale]. Exports to
    standard ONNX ops (ReduceL2, Div, MatMul).
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 16.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"cosine scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


class CompactSoftmaxLoss(nn.Module):
    """Compact softmax cross entropy (ours): margin cosine CE + lambda * compactness to learnable class centres.

    ``loss = CE(s * (cos(theta) - m * onehot(y)), y) + lambda * mean_i ||f_hat_i - c_hat_(y_i)||^2``, where
    ``cos(theta_ij) = f_hat_i . w_hat_j`` (features and classifier weights L2-normalised) and ``c_hat`` are the
    L2-normalised centres (a parameter of this module, trained with the model).

    Args:
        num_classes: C.
        feat_dim: D, the feature width.
        scale: s (16).
        margin: m, subtracted from the target class's cosine (0.2).
        center_weight: lambda (0.01); 0 leaves the margin CE alone.
    """

    def __init__(self, num_classes: int, feat_dim: int, scale: float = 16.0, margin: float = 0.2,
                 center_weight: float = 0.01) -> None:
        super().__init__()
        if scale <= 0 or margin < 0 or center_weight < 0:
            raise ValueError(f"need scale > 0, margin >= 0, center_weight >= 0; got {scale}, {margin}, {center_weight}")
        self.scale, self.margin, self.center_weight = float(scale), float(margin), float(center_weight)
        self.centres = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss.

        Args:
            features: (B, D) float, the pooled features before the classifier.
            weight: (C, D) the cosine classifier's weight (:attr:`CosineLinear.weight`).
            targets: (B,) int64 class indices in [0, C).

        Raises:
            ValueError: shapes disagree.
        """
        if features.dim() != 2 or weight.dim() != 2 or features.shape[1] != weight.shape[1]:
            raise ValueError(f"features (B, D) and weight (C, D) disagree: {tuple(features.shape)}, "
                             f"{tuple(weight.shape)}")
        if targets.shape != features.shape[:1]:
            raise ValueError(f"targets must be ({features.shape[0]},), got {tuple(targets.shape)}")
        if tuple(self.centres.shape) != tuple(weight.shape):
            raise ValueError(f"centres {tuple(self.centres.shape)} and weight {tuple(weight.shape)} disagree")
        f_hat = F.normalize(features, dim=1)
        cosine = f_hat @ F.normalize(weight, dim=1).t()
        onehot = F.one_hot(targets, weight.shape[0]).to(cosine.dtype)
        ce = F.cross_entropy(self.scale * (cosine - self.margin * onehot), targets)
        compact = (f_hat - F.normalize(self.centres, dim=1)[targets]).pow(2).sum(dim=1).mean()
        return ce + self.center_weight * compact


def smooth_loss(logits: torch.Tensor, tau: float = 4.0) -> torch.Tensor:
    """MS-TCN's truncated smoothing loss of frame-wise logits (B, K, C): scalar.

    ``mean over b, t = 1..K-1, c of min((log p_t - log p_(t-1))^2, tau^2)``, log-probabilities by log-softmax
    over C, gradients stopped through ``p_(t-1)``. 0 when K < 2.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, K, C), got shape {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        return logits.sum() * 0.0
    log_p = F.log_softmax(logits, dim=-1)
    diff = log_p[:, 1:] - log_p[:, :-1].detach()
    return torch.clamp(diff.pow(2), max=tau * tau).mean()


class SpottingLoss(nn.Module):
    """FESNet's loss: sum over stages of class-weighted frame CE + ``smooth_weight`` * :func:`smooth_loss`.

    Args:
        class_weights: (C,) CE weight per class (neutral, macro, micro); micro is rare, so weigh it up.
        smooth_weight: lambda_s (0.15).
        tau: truncation of the smoothing loss (4).
        ignore_index: target value of frames left out of the CE (padding), default -100.

    The CE of a stage is PyTorch's weighted mean: ``sum_i w_(y_i) * nll_i / sum_i w_(y_i)`` over the frames not
    ignored.
    """

    def __init__(self, class_weights: Sequence[float], smooth_weight: float = 0.15, tau: float = 4.0,
                 ignore_index: int = -100) -> None:
        super().__init__()
        if any(w < 0 for w in class_weights) or smooth_weight < 0 or tau <= 0:
            raise ValueError(f"need class weights >= 0, smooth_weight >= 0, tau > 0; got {tuple(class_weights)}, "
                             f"{smooth_weight}, {tau}")
        self.register_buffer("class_weights", torch.tensor([float(w) for w in class_weights]), persistent=False)
        self.smooth_weight, self.tau, self.ignore_index = float(smooth_weight), float(tau), int(ignore_index)

    def forward(self, stage_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss from stage logits (B, S, K, C) and frame targets (B, K) int64.

        Raises:
            ValueError: shapes disagree.
        """
        if stage_logits.dim() != 4 or stage_logits.shape[-1] != self.class_weights.numel():
            raise ValueError(f"stage_logits must be (B, S, K, {self.class_weights.numel()}), got "
                             f"{tuple(stage_logits.shape)}")
        B, S, K, C = stage_logits.shape
        if tuple(targets.shape) != (B, K):
            raise ValueError(f"targets must be ({B}, {K}), got {tuple(targets.shape)}")
        weights = self.class_weights.to(stage_logits.dtype)
        total = stage_logits.new_zeros(())
        for s in range(S):
            logits = stage_logits[:, s]
            ce = F.cross_entropy(logits.reshape(B * K, C), targets.reshape(B * K), weight=weights,
                                 ignore_index=self.ignore_index)
            total = total + ce + self.smooth_weight * smooth_loss(logits, self.tau)
        return total
