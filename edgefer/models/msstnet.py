"""MSSTNet: multi-scale spatio-temporal network for dynamic facial expression recognition.

Source: Wang, Kang, Ding, Nakagawa, Ren, "MSSTNet: A Multi-Scale Spatio-Temporal CNN-Transformer Network for
Dynamic Facial Expression Recognition", ICASSP 2024 (arXiv 2404.08433), read through edgefer's design note
(``shared/design/models.md``). The paper's parts: a ResNet-18 per frame, multi-scale embeddings of N = 16 patch
tokens per scale (MELayer), a temporal transformer (T-Former) attending along time for each spatial token, one
block per scale. Our reading, all of it in :class:`Config`: which scales, the right/bottom padding rule, the
learned spatial embedding, D = 512 / 8 heads / MLP 1024 / dropout 0.1 (from Former-DFER's T-Former), the pre-norm
block, and the head (LN -> mean over T -> mean over N -> dropout -> Linear).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import ops
from .common import check_clip, check_kernels, dfer_metadata_fields
from .resnet import ResNet18

#: Backbone stage name -> (channels, index into ResNet18.forward's output list).
STAGES = {"C2": (64, 0), "C3": (128, 1), "C4": (256, 2), "C5": (512, 3)}


@dataclass(frozen=True)
class Config:
    """MSSTNet's architecture. Fields marked (ours) are edgefer's reading where the paper could not be read.

    Attributes:
        clip_length: T, frames per clip (paper: 16).
        frame_size: H = W of each face crop in pixels (paper: 112).
        num_classes: output classes (7, in :data:`edgefer.labels.DFER_LABELS` order).
        scales: backbone maps embedded, fine to coarse, one T-Former block each (ours: C3, C4, C5; C2 optional).
        grid: G, patches per side of every scale's map, N = G*G tokens (paper: N = 16, so G = 4).
        dim: D, token width (ours: 512).
        num_heads: attention heads (ours: 8, head dim 64).
        mlp_hidden: hidden width of each block's MLP (ours: 1024, GELU).
        dropout: dropout after attention/MLP and before the classifier (ours: 0.1).
        spatial_embedding: add a learned (N, D) spatial embedding to every token (ours).
        layer_norm_eps: epsilon of every LayerNorm.
    """

    clip_length: int = 16
    frame_size: int = 112
    num_classes: int = 7
    scales: tuple[str, ...] = ("C3", "C4", "C5")
    grid: int = 4
    dim: int = 512
    num_heads: int = 8
    mlp_hidden: int = 1024
    dropout: float = 0.1
    spatial_embedding: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(self.scales))
        order = list(STAGES)
        if not self.scales or any(s not in STAGES for s in self.scales):
            raise ValueError(f"scales must be a non-empty subset of {order}, got {self.scales}")
        if sorted(self.scales, key=order.index) != list(self.scales) or len(set(self.scales)) != len(self.scales):
            raise ValueError(f"scales must be distinct and in backbone order (fine to coarse), got {self.scales}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        for scale in self.scales:
            patch_size(map_size(self.frame_size, scale), self.grid)  # raises when the grid cannot cut the map


def map_size(frame_size: int, scale: str) -> int:
    """Side of backbone map ``scale`` for a ``frame_size`` input (each stride-2 step is a ceil halving)."""
    side = frame_size
    for _ in range(2 + STAGES[scale][1]):  # stem conv + max-pool, then one per stage after C2
        side = math.ceil(side / 2)
    return side


def patch_size(side: int, grid: int) -> int:
    """P = ceil(side / grid); raise ValueError when a grid x grid cut of a ``side`` map leaves an empty row."""
    p = math.ceil(side / grid)
    if (grid - 1) * p >= side:
        raise ValueError(f"a {side}x{side} map cannot be cut into a {grid}x{grid} grid of {p}x{p} patches")
    return p


class MultiScaleEmbedding(nn.Module):
    """MELayer for one scale: (B*T, C, H, W) map -> (B, T, N, D) tokens, fused with the residual add."""

    def __init__(self, channels: int, side: int, config: Config) -> None:
        super().__init__()
        p = patch_size(side, config.grid)
        self.grid = config.grid
        self.proj = nn.Conv2d(channels, config.dim, kernel_size=p, stride=p)
        self.pos_t = nn.Parameter(torch.zeros(config.clip_length, config.dim))
        n = config.grid * config.grid
        self.pos_s = nn.Parameter(torch.zeros(n, config.dim), requires_grad=config.spatial_embedding)
        nn.init.trunc_normal_(self.pos_t, std=0.02)
        if config.spatial_embedding:
            nn.init.trunc_normal_(self.pos_s, std=0.02)

    def forward(self, feat: torch.Tensor, residual: torch.Tensor | None, kernels: str) -> torch.Tensor:
        return ops.multiscale_embedding(feat, self.proj.weight, self.proj.bias, self.pos_t, self.pos_s, residual,
                                        self.grid, kernels=kernels)


class TemporalBlock(nn.Module):
    """One pre-norm T-Former block on (B, T, N, D) tokens: x + MHSA_T(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        d = config.dim
        self.num_heads = config.num_heads
        self.norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(d, config.mlp_hidden), nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(config.mlp_hidden, d))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, kernels: str) -> torch.Tensor:
        attn = ops.temporal_attention(self.qkv(self.norm1(x)), self.num_heads, kernels=kernels)
        x = x + self.drop(self.proj(attn))
        return x + self.drop(self.mlp(self.norm2(x)))


class Model(nn.Module):
    """MSSTNet: clip (B, T, 3, H, W) float32 RGB in [0, 1] -> logits (B, num_classes).

    Args:
        config: the architecture (:class:`Config`).
        kernels: op implementation, one of :data:`edgefer.ops.KERNELS` (``"auto"`` picks the fastest present).

    Raises (from forward):
        ValueError: the clip is not (B, clip_length, 3, frame_size, frame_size).
    """

    name = "msstnet"

    def __init__(self, config: Config | None = None, kernels: str = "auto") -> None:
        super().__init__()
        self.config = config = config or Config()
        self.kernels = check_kernels(kernels)
        self.backbone = ResNet18()
        self.embeddings = nn.ModuleList(
            MultiScaleEmbedding(STAGES[s][0], map_size(config.frame_size, s), config) for s in config.scales)
        self.blocks = nn.ModuleList(TemporalBlock(config) for _ in config.scales)
        self.norm = nn.LayerNorm(config.dim, eps=config.layer_norm_eps)
        self.head_drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.dim, config.num_classes)
        self._last_stage = 2 + max(STAGES[s][1] for s in config.scales)

    def metadata_fields(self) -> dict:
        """The :class:`edgefer.metadata.ModelMetadata` fields describing this model's input and output."""
        return dfer_metadata_fields(self.name, self.config)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        c = self.config
        check_clip(clip, c)
        B = clip.shape[0]
        maps = self.backbone(clip.flatten(0, 1), last_stage=self._last_stage)
        x = None
        for scale, embed, block in zip(c.scales, self.embeddings, self.blocks):
            x = embed(maps[STAGES[scale][1]], x, self.kernels)
            x = block(x, self.kernels)
        x = self.norm(x).mean(dim=(1, 2))  # T-Mean, then mean over the N tokens: (B, D)
        return self.head(self.head_drop(x)).reshape(B, c.num_classes)
