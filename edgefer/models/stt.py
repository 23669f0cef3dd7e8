"""STT: spatio-temporal transformer for dynamic facial expression recognition.

Source: Ma, Sun, Li, "Spatio-Temporal Transformer for Dynamic Facial Expression Recognition in the Wild"
(arXiv 2205.04749), read through edgefer's design note (``shared/design/models.md``); only the abstract and
figure captions could be read. The paper's parts: a CNN backbone per frame whose map becomes spatial tokens;
blocks of spatial self-attention within a frame followed by temporal self-attention across frames; a compact
softmax cross entropy loss. Our reading, all in :class:`Config`: ResNet-18 up to C4 (256 x 7 x 7) and a 1x1 conv
to D = 512 (49 tokens a frame on 112 x 112), learned spatial and temporal position embeddings and a CLS token
(from LOGO-Former by the same authors), 4 pre-norm blocks of 8 heads and MLP ratio 4, dropout 0.1, and the loss's
form (margin cosine CE + centre compactness, :class:`edgefer.models.losses.CompactSoftmaxLoss`).

The CLS token (ours): one learned token is prepended to the spatial tokens of every frame (it gets the frame's
temporal embedding), so spatial attention lets it gather its frame and temporal attention lets the CLS tokens of
all frames exchange; the head reads LN(CLS) averaged over the T frames. The temporal attention is the shared
fused op :func:`edgefer.ops.temporal_attention` (the same kernel as MSSTNet's T-Former).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import ops
from .common import check_clip, check_kernels, dfer_metadata_fields
from .losses import CompactSoftmaxLoss, CosineLinear
from .resnet import ResNet18

LOSSES = ("compact", "ce")
POOLINGS = ("cls", "mean")


@dataclass(frozen=True)
class Config:
    """STT's architecture and loss. Fields marked (ours) are edgefer's reading where the paper could not be read.

    Attributes:
        clip_length: T, frames per clip (paper: 16).
        frame_size: H = W of each face crop in pixels (paper: 112); C4 is ``ceil(frame_size / 16)`` a side.
        num_classes: output classes (7, in :data:`edgefer.labels.DFER_LABELS` order).
        dim: D, token width after the 1x1 conv on C4 (ours: 512).
        depth: number of spatial-then-temporal blocks (ours: 4).
        num_heads: heads of both attentions (ours: 8).
        mlp_ratio: MLP hidden width / D (ours: 4), GELU.
        dropout: dropout after attention/MLP and before the head (ours: 0.1).
        pooling: ``"cls"`` (ours, LOGO-Former: a CLS token per frame, head on its mean over T) or ``"mean"``
            (average of all tokens).
        spatial_embedding: learned spatial position embedding, one per token of a frame (ours).
        temporal_embedding: learned temporal position embedding, one per frame (ours).
        loss: ``"compact"`` (ours: compact softmax CE; the head is a cosine classifier ``s * cos(theta)``) or
            ``"ce"`` (plain cross entropy; the head is ``Linear(D, num_classes)``).
        cs_scale: s of the compact softmax and of the cosine head (ours: 16).
        cs_margin: m, additive cosine margin on the target class (ours: 0.2).
        cs_center_weight: lambda of the centre compactness term (ours: 0.01).
        layer_norm_eps: epsilon of every LayerNorm.
    """

    clip_length: int = 16
    frame_size: int = 112
    num_classes: int = 7
    dim: int = 512
    depth: int = 4
    num_heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    pooling: str = "cls"
    spatial_embedding: bool = True
    temporal_embedding: bool = True
    loss: str = "compact"
    cs_scale: float = 16.0
    cs_margin: float = 0.2
    cs_center_weight: float = 0.01
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.depth < 1 or self.clip_length < 1 or self.frame_size < 16 or self.num_classes < 2:
            raise ValueError("need depth >= 1, clip_length >= 1, frame_size >= 16 and num_classes >= 2")

    @property
    def tokens_per_frame(self) -> int:
        """Spatial tokens of a frame: the C4 map's area (49 on 112 x 112), plus 1 with the CLS token."""
        side = self.frame_size
        for _ in range(4):  # stem conv, max-pool, layer2, layer3: each a ceil halving
            side = math.ceil(side / 2)
        return side * side + (1 if self.pooling == "cls" else 0)


def spatial_attention(qkv: torch.Tensor, num_heads: int, head_dim: int) -> torch.Tensor:
    """Multi-head self-attention among the N tokens of each frame.

    Args:
        qkv: (B, T, N, 3*D) output of the block's ``Linear(D, 3*D)``, laid out as for
            :func:`edgefer.ops.temporal_attention` (part, head, element).
        num_heads: H.
        head_dim: d_h = D / H (a Python int, so that tracing keeps the scale a constant).

    Returns:
        (B, T, N, D): ``softmax(q k^T / sqrt(d_h)) v`` over the N tokens, per (clip, frame, head).
    """
    q, k, v = qkv.unflatten(-1, (3, num_heads, head_dim)).unbind(-3)  # each (B, T, N, H, d_h)
    q, k, v = (x.transpose(2, 3) for x in (q, k, v))  # (B, T, H, N, d_h)
    attn = torch.softmax((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(head_dim)), dim=-1)
    return (attn @ v).transpose(2, 3).flatten(-2)


class Block(nn.Module):
    """Pre-norm STT block on (B, T, N, D): x + MHSA_S(LN(x)); x + MHSA_T(LN(x)); x + MLP(LN(x))."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        d, eps = config.dim, config.layer_norm_eps
        self.num_heads = config.num_heads
        self.head_dim = d // config.num_heads
        self.norm_s = nn.LayerNorm(d, eps=eps)
        self.qkv_s = nn.Linear(d, 3 * d)
        self.proj_s = nn.Linear(d, d)
        self.norm_t = nn.LayerNorm(d, eps=eps)
        self.qkv_t = nn.Linear(d, 3 * d)
        self.proj_t = nn.Linear(d, d)
        self.norm_mlp = nn.LayerNorm(d, eps=eps)
        hidden = int(round(d * config.mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(hidden, d))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, kernels: str) -> torch.Tensor:
        x = x + self.drop(self.proj_s(spatial_attention(self.qkv_s(self.norm_s(x)), self.num_heads,
                                                                  self.head_dim)))
        x = x + self.drop(self.proj_t(ops.temporal_attention(self.qkv_t(self.norm_t(x)), self.num_heads,
                                                             kernels=kernels)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class Model(nn.Module):
    """STT: clip (B, T, 3, H, W) float32 RGB in [0, 1] -> logits (B, num_classes).

    With ``config.loss == "compact"`` the logits are the cosine head's ``s * cos(theta)`` (no margin at
    inference); with ``"ce"`` a plain linear layer's.

    Training: ``features = model.forward_features(clip)``, ``logits = model.head(features)``,
    ``loss = model.loss(features, targets)``.

    Args:
        config: the architecture and loss (:class:`Config`).
        kernels: temporal-attention implementation, one of :data:`edgefer.ops.KERNELS`.

    Raises (from forward):
        ValueError: the clip is not (B, clip_length, 3, frame_size, frame_size).
    """

    name = "stt"

    def __init__(self, config: Config | None = None, kernels: str = "auto") -> None:
        super().__init__()
        self.config = config = config or Config()
        self.kernels = check_kernels(kernels)
        d = config.dim
        self.backbone = ResNet18()
        self.proj = nn.Conv2d(ResNet18.widths[2], d, kernel_size=1)
        n = config.tokens_per_frame
        self.pos_s = nn.Parameter(torch.zeros(n, d), requires_grad=config.spatial_embedding)
        self.pos_t = nn.Parameter(torch.zeros(config.clip_length, d), requires_grad=config.temporal_embedding)
        for pos, used in ((self.pos_s, config.spatial_embedding), (self.pos_t, config.temporal_embedding)):
            if used:
                nn.init.trunc_normal_(pos, std=0.02)
        self.cls_token = None
        if config.pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 1, d))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.embed_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.head_drop = nn.Dropout(config.dropout)
        if config.loss == "compact":
            self.head = CosineLinear(d, config.num_classes, scale=config.cs_scale)
            self.criterion = CompactSoftmaxLoss(config.num_classes, d, config.cs_scale, config.cs_margin,
                                                config.cs_center_weight)
        else:
            self.head = nn.Linear(d, config.num_classes)
            self.criterion = nn.CrossEntropyLoss()

    def metadata_fields(self) -> dict:
        """The :class:`edgefer.metadata.ModelMetadata` fields describing this model's input and output."""
        return dfer_metadata_fields(self.name, self.config)

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Pooled clip features (B, D): LN(CLS) averaged over frames, or LN of all tokens averaged."""
        c = self.config
        check_clip(clip, c)
        T, d = c.clip_length, c.dim
        feat = self.proj(self.backbone(clip.flatten(0, 1), last_stage=4)[-1])  # (B*T, D, h, w)
        x = feat.flatten(2).transpose(1, 2).reshape(-1, T, feat.shape[2] * feat.shape[3], d)  # (B, T, hw, D)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], T, 1, d), x], dim=2)
        x = self.embed_drop(x + self.pos_t[:, None, :] + self.pos_s[None, :, :])
        for block in self.blocks:
            x = block(x, self.kernels)
        x = self.norm(x)
        return x[:, :, 0].mean(dim=1) if self.cls_token is not None else x.mean(dim=(1, 2))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(clip)))

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training loss from :meth:`forward_features`'s output (B, D) and targets (B,) int64: compact or CE."""
        if self.config.loss == "compact":
            return self.criterion(self.head_drop(features), self.head.weight, targets)
        return self.criterion(self.head(self.head_drop(features)), targets)
