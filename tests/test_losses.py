"""STT's compact softmax loss and FESNet's spotting loss against hand computation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgefer.models.losses import CompactSoftmaxLoss, CosineLinear, SpottingLoss, smooth_loss


def test_compact_softmax_loss_by_hand():
    loss_fn = CompactSoftmaxLoss(num_classes=2, feat_dim=2, scale=16.0, margin=0.2, center_weight=0.01)
    with torch.no_grad():
        loss_fn.centres.copy_(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))  # normalised to (1, 0) and (0, 1)
    features = torch.tensor([[3.0, 4.0]])  # f_hat = (0.6, 0.8)
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cos = (0.6, 0.8)
    target = torch.tensor([0])
    # logits = 16 * (0.6 - 0.2, 0.8) = (6.4, 12.8); CE = log(1 + e^(12.8 - 6.4)); ||f_hat - (1, 0)||^2 = 0.8
    expected = math.log(1 + math.exp(6.4)) + 0.01 * 0.8
    assert loss_fn(features, weight, target).item() == pytest.approx(expected, rel=1e-6)
    # Target 1: logits (9.6, 16 * 0.6); CE = log(1 + e^(9.6 - 9.6)) = log 2; ||(0.6, -0.2)||^2 = 0.4
    assert loss_fn(features, weight, torch.tensor([1])).item() == pytest.approx(math.log(2) + 0.004, rel=1e-6)


def test_compact_softmax_without_margin_and_centres_is_cosine_cross_entropy():
    torch.manual_seed(0)
    f, w, y = torch.randn(5, 8), torch.randn(3, 8), torch.tensor([0, 1, 2, 1, 0])
    plain = CompactSoftmaxLoss(3, 8, scale=16.0, margin=0.0, center_weight=0.0)
    head = CosineLinear(8, 3, scale=16.0)
    with torch.no_grad():
        head.weight.copy_(w)
    assert plain(f, w, y).item() == pytest.approx(F.cross_entropy(head(f), y).item(), rel=1e-6)
    assert head(f).abs().max() <= 16.0 + 1e-5


def test_compact_softmax_gradients_reach_centres_features_and_weight():
    loss_fn = CompactSoftmaxLoss(3, 4)
    f = torch.randn(6, 4, requires_grad=True)
    w = torch.randn(3, 4, requires_grad=True)
    loss_fn(f, w, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for grad in (f.grad, w.grad, loss_fn.centres.grad):
        assert grad is not None and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="targets"):
        loss_fn(f, w, torch.tensor([0, 1]))


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_smooth_loss_by_hand_and_truncation():
    logits = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 40.0]]])  # (B=1, K=3, C=3)
    lp = _log_softmax(logits[0].numpy())
    d2 = (lp[1:] - lp[:-1]) ** 2
    expected = np.minimum(d2, 16.0).mean()
    assert (d2 > 16).any()  # the jump to 40 is truncated at tau^2
    assert smooth_loss(logits, tau=4.0).item() == pytest.approx(expected, rel=1e-6)
    assert smooth_loss(logits[:, :1]).item() == 0.0


def test_smooth_loss_stops_gradients_through_the_previous_frame():
    logits = torch.tensor([[[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]], requires_grad=True)
    smooth_loss(logits).backward()
    assert logits.grad[0, 0].abs().sum() == 0  # frame 0 only appears as p_(t-1), detached
    assert logits.grad[0, 1].abs().sum() > 0


def test_spotting_loss_by_hand():
    torch.manual_seed(0)
    stages = torch.randn(2, 2, 4, 3)  # (B, S, K, C)
    targets = torch.tensor([[0, 0, 2, 1], [0, 1, 1, -100]])  # the last frame is padding
    weights = np.array([1.0, 2.0, 8.0])
    expected = 0.0
    for s in range(2):
        lp = _log_softmax(stages[:, s].numpy())
        num = den = 0.0
        for b in range(2):
            for k in range(4):
                y = int(targets[b, k])
                if y < 0:
                    continue
                num += -weights[y] * lp[b, k, y]
                den += weights[y]
        smooth = np.minimum((lp[:, 1:] - lp[:, :-1]) ** 2, 16.0).mean()
        expected += num / den + 0.15 * smooth
    loss = SpottingLoss((1.0, 2.0, 8.0), smooth_weight=0.15, tau=4.0)(stages, targets)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_spotting_loss_rejects_bad_shapes():
    loss = SpottingLoss((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="stage_logits"):
        loss(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        loss(torch.randn(2, 1, 4, 3), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="class weights"):
        SpottingLoss((1.0, -1.0, 1.0))
