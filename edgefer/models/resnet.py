"""ResNet-18, written here so that no torchvision is needed, with torchvision-compatible state-dict keys.

Source: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016): BasicBlock layers [2, 2, 2, 2],
widths 64/128/256/512, stem conv 7x7/2 + max-pool 3x3/2. The parameter and buffer names match
``torchvision.models.resnet18().state_dict()`` (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``fc``), so ImageNet or
MS-Celeb weights a user holds load with ``load_state_dict``.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 feature extractor returning the stage maps C2..C5.

    Input (N, 3, H, W) float; on 112 x 112 the outputs are C2 (N, 64, 28, 28), C3 (N, 128, 14, 14),
    C4 (N, 256, 7, 7), C5 (N, 512, 4, 4). ``fc`` exists only so torchvision checkpoints load strictly; it is
    not used by :meth:`forward`.
    """

    widths = (64, 128, 256, 512)

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels = 64
        for i, width in enumerate(self.widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(in_channels, width, stride), BasicBlock(width, width))
            setattr(self, f"layer{i + 1}", layer)
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, last_stage: int = 5) -> list[torch.Tensor]:
        """Return ``[C2, ..., C<last_stage>]`` for ``x`` of shape (N, 3, H, W); ``last_stage`` in 2..5."""
        if not 2 <= last_stage <= 5:
            raise ValueError(f"last_stage must be in 2..5, got {last_stage}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        maps = []
        for i in range(1, last_stage):
            x = getattr(self, f"layer{i}")(x)
            maps.append(x)
        return maps
