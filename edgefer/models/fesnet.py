"""FESNet: facial expression spotting in long videos (frame-wise neutral / macro / micro).

Source: Zhang, Lu, Wang, He, "FESNet: Spotting Facial Expressions Using Local Spatial Discrepancy and Multi-Scale
Temporal Aggregation", Computing and Informatics 43(2), 2024, read through edgefer's design note
(``shared/design/models.md``); only the abstract and figure captions could be read. The paper's parts: LSDM, a
local spatial discrepancy module (per-frame spatial features with inner spatial correlation, their discrepancy
to the interval's first frame, frame-wise spatial proposals), MTAM, a multi-scale temporal aggregation module
with cascade refinement, and a smooth loss for the temporal consistency of the proposals. Our reading, all in
:class:`Config`: the encoder (3 stages of BasicBlocks, 32/64/128 channels, 8 x 8 = 64 tokens of dim 128; frames
zero-padded from 112 to 128 pixels so the 16x-downsampling encoder gives exactly 8 x 8), one pre-norm MHSA over
the tokens with a learned spatial embedding, mean pooling of the discrepancy, the temporal kernel sizes 3/5/7/9,
the MS-TCN-style refinement stages (dilated residual 1-D convolutions on the previous stage's probabilities),
the class weights, and supervising the LSDM proposals as a stage of the loss.

Input (B, K, 3, H, W) float32 RGB in [0, 1], K consecutive face crops (K = 64 by default) -> frame-wise logits
over (neutral, macro, micro): :meth:`Model.forward` returns the final stage (B, K, 3) (the exported graph),
:meth:`Model.forward_stages` every stage (B, S, K, 3) for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import SPOTTING_CLASSES
from .common import check_kernels
from .losses import SpottingLoss
from .resnet import BasicBlock


@dataclass(frozen=True)
class Config:
    """FESNet's architecture and loss. Fields marked (ours) are edgefer's reading of the paper.

    Attributes:
        clip_length: K, frames per interval (ours: 64; long videos are cut with stride K / 2).
        frame_size: H = W of each face crop (112).
        num_classes: frame classes, :data:`edgefer.labels.SPOTTING_CLASSES` (neutral, macro, micro).
        encoder_channels: widths of the 3 encoder stages, each stride 2 after a stride-2 stem (ours: 32/64/128).
        blocks_per_stage: BasicBlocks per encoder stage (ours: 1).
        token_grid: G, spatial tokens per side, G*G tokens (ours: 8); frames are zero-padded to 16*G pixels.
        spatial_heads: heads of the MHSA over the G*G tokens (ours: 4).
        proposal_hidden: hidden width of the proposal head on the pooled discrepancy (ours: 64).
        temporal_kernels: kernel sizes of MTAM's parallel 1-D convolutions (ours: 3, 5, 7, 9).
        temporal_channels: width of every MTAM / refinement convolution (ours: 64).
        refine_stages: cascade refinement stages after MTAM's first (ours: 3, MS-TCN style).
        refine_layers: dilated residual layers per refinement stage, dilations 1, 2, 4, ... (ours: 5).
        dropout: dropout in MTAM and the refinement layers (ours: 0.1).
        class_weights: CE weight of neutral, macro, micro (ours: 1, 2, 8; set them from the training frames'
            inverse class frequency).
        smooth_weight: lambda_s of the smooth loss (ours: 0.15).
        smooth_tau: tau of the smooth loss (ours: 4).
        supervise_proposals: also apply the loss to LSDM's proposals p0 (ours).
    """

    clip_length: int = 64
    frame_size: int = 112
    num_classes: int = 3
    encoder_channels: tuple[int, int, int] = (32, 64, 128)
    blocks_per_stage: int = 1
    token_grid: int = 8
    spatial_heads: int = 4
    proposal_hidden: int = 64
    temporal_kernels: tuple[int, ...] = (3, 5, 7, 9)
    temporal_channels: int = 64
    refine_stages: int = 3
    refine_layers: int = 5
    dropout: float = 0.1
    class_weights: tuple[float, ...] = (1.0, 2.0, 8.0)
    smooth_weight: float = 0.15
    smooth_tau: float = 4.0
    supervise_proposals: bool = True

    def __post_init__(self) -> None:
        for name in ("encoder_channels", "temporal_kernels", "class_weights"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.encoder_channels) != 3 or min(self.encoder_channels) < 1:
            raise ValueError(f"encoder_channels must be 3 positive widths, got {self.encoder_channels}")
        if self.encoder_channels[-1] % self.spatial_heads:
            raise ValueError(f"token width {self.encoder_channels[-1]} is not divisible by spatial_heads "
                             f"{self.spatial_heads}")
        pad = 16 * self.token_grid - self.frame_size
        if pad < 0 or pad % 2:
            raise ValueError(f"frame_size {self.frame_size} must be at most 16 * token_grid "
                             f"({16 * self.token_grid}) and differ from it by an even number of pixels")
        if not self.temporal_kernels or any(k < 1 or k % 2 == 0 for k in self.temporal_kernels):
            raise ValueError(f"temporal_kernels must be odd sizes >= 1, got {self.temporal_kernels}")
        if len(self.class_weights) != self.num_classes:
            raise ValueError(f"class_weights needs {self.num_classes} values, got {self.class_weights}")
        if self.clip_length < 1 or self.blocks_per_stage < 1 or self.refine_stages < 0 or self.refine_layers < 1:
            raise ValueError("need clip_length >= 1, blocks_per_stage >= 1, refine_stages >= 0, refine_layers >= 1")

    @property
    def num_stages(self) -> int:
        """S, stages :meth:`Model.forward_stages` returns: the proposals, MTAM's first stage, the refinements."""
        return 2 + self.refine_stages


class FrameEncoder(nn.Module):
    """Per-frame residual encoder: (N, 3, H, W) -> (N, G*G, C) tokens (zero-pad to 16G, stem + 3 stages)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.pad = (16 * config.token_grid - config.frame_size) // 2
        c0 = config.encoder_channels[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        layers, width = [], c0
        for channels in config.encoder_channels:
            layers.append(BasicBlock(width, channels, stride=2))
            layers.extend(BasicBlock(channels, channels) for _ in range(config.blocks_per_stage - 1))
            width = channels
        self.stages = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if self.pad:
            frames = F.pad(frames, (self.pad, self.pad, self.pad, self.pad))
        return self.stages(self.stem(frames)).flatten(2).transpose(1, 2)


class SpatialCorrelation(nn.Module):
    """Pre-norm MHSA among the tokens of a frame (inner spatial correlation): (N, L, C) -> (N, L, C)."""

    def __init__(self, channels: int, num_tokens: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = channels // num_heads
        self.pos = nn.Parameter(torch.zeros(num_tokens, channels))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.out_norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos
        d_h = self.head_dim
        q, k, v = self.qkv(self.norm(x)).unflatten(-1, (3, self.num_heads, d_h)).unbind(-3)  # (N, L, H, d_h)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (N, H, L, d_h)
        attn = torch.softmax((q @ k.transpose(-1, -2)) * d_h ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).flatten(-2))
        return self.out_norm(x)


class MultiScaleTemporal(nn.Module):
    """MTAM's first stage: parallel 1-D convs (kernels 3/5/7/9) over (B, C_in, K), concatenated, fused -> logits."""

    def __init__(self, in_channels: int, config: Config) -> None:
        super().__init__()
        ch = config.temporal_channels
        self.branches = nn.ModuleList(nn.Conv1d(in_channels, ch, k, padding=k // 2) for k in config.temporal_kernels)
        self.fuse = nn.Sequential(nn.ReLU(), nn.Conv1d(ch * len(config.temporal_kernels), ch, 1), nn.ReLU(),
                                  nn.Dropout(config.dropout), nn.Conv1d(ch, config.num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


class RefinementStage(nn.Module):
    """One cascade refinement stage (MS-TCN single stage): probabilities (B, C, K) -> refined logits (B, C, K)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        ch = config.temporal_channels
        self.inp = nn.Conv1d(config.num_classes, ch, 1)
        self.dilated = nn.ModuleList(nn.Conv1d(ch, ch, 3, padding=2 ** i, dilation=2 ** i)
                                     for i in range(config.refine_layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(ch, ch, 1) for _ in range(config.refine_layers))
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Conv1d(ch, config.num_classes, 1)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        x = self.inp(probs)
        for dilated, pointwise in zip(self.dilated, self.pointwise):
            x = x + self.drop(pointwise(F.relu(dilated(x))))
        return self.out(x)


class Model(nn.Module):
    """FESNet: K face crops (B, K, 3, H, W) float32 RGB in [0, 1] -> frame-wise logits (B, K, 3).

    Args:
        config: the architecture and loss (:class:`Config`).
        kernels: accepted for the common model contract (:data:`edgefer.ops.KERNELS`); FESNet uses no
            edgefer kernel, its attention is plain PyTorch.

    Raises (from forward):
        ValueError: the input is not (B, clip_length, 3, frame_size, frame_size).
    """

    name = "fesnet"

    def __init__(self, config: Config | None = None, kernels: str = "auto") -> None:
        super().__init__()
        self.config = config = config or Config()
        self.kernels = check_kernels(kernels)
        width = config.encoder_channels[-1]
        self.encoder = FrameEncoder(config)
        self.spatial = SpatialCorrelation(width, config.token_grid ** 2, config.spatial_heads)
        self.proposal = nn.Sequential(nn.Linear(width, config.proposal_hidden), nn.ReLU(),
                                      nn.Linear(config.proposal_hidden, config.num_classes))
        self.temporal = MultiScaleTemporal(width + config.num_classes, config)
        self.refine = nn.ModuleList(RefinementStage(config) for _ in range(config.refine_stages))
        self.criterion = SpottingLoss(config.class_weights, config.smooth_weight, config.smooth_tau)

    def metadata_fields(self) -> dict:
        """The :class:`edgefer.metadata.ModelMetadata` fields describing this model's input and output."""
        c = self.config
        labels = SPOTTING_CLASSES if c.num_classes == len(SPOTTING_CLASSES) else \
            tuple(f"class_{i}" for i in range(c.num_classes))
        return dict(model=self.name, task="spotting", labels=labels, clip_length=c.clip_length,
                    frame_size=(c.frame_size, c.frame_size), colour_order="RGB", mean=(0.0,), std=(1.0,),
                    sampling="consecutive", input_layout="BTCHW", output="logits")

    def discrepancy(self, clip: torch.Tensor) -> torch.Tensor:
        """LSDM's discrepancy Delta_t = F_t - F_first of a clip of K frames (B, K, 3, H, W): tokens (B, K, G*G, C)."""
        c = self.config
        expected = (c.clip_length, 3, c.frame_size, c.frame_size)
        if clip.dim() != 5 or tuple(clip.shape[1:]) != expected:
            raise ValueError(f"clip must be (B, {', '.join(map(str, expected))}), got {tuple(clip.shape)}")
        tokens = self.spatial(self.encoder(clip.flatten(0, 1)))  # (B*K, L, C)
        tokens = tokens.reshape(-1, c.clip_length, tokens.shape[1], tokens.shape[2])
        return tokens - tokens[:, :1]

    def forward_stages(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits of every stage, (B, S, K, num_classes): [LSDM proposals p0, MTAM stage 1, refinements...]."""
        pooled = self.discrepancy(clip).mean(dim=2)  # (B, K, C)
        p0 = self.proposal(pooled)  # (B, K, classes)
        x = torch.cat([pooled, torch.softmax(p0, dim=-1)], dim=-1).transpose(1, 2)  # (B, C + classes, K)
        logits = self.temporal(x)  # (B, classes, K)
        stages = [p0, logits.transpose(1, 2)]
        for stage in self.refine:
            logits = stage(torch.softmax(logits, dim=1))
            stages.append(logits.transpose(1, 2))
        return torch.stack(stages, dim=1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Final stage's frame-wise logits (B, K, num_classes) of a clip of K consecutive frames (B, K, 3, H, W)."""
        return self.forward_stages(clip)[:, -1]

    def loss(self, stage_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training loss from :meth:`forward_stages`'s output and frame targets (B, K) int64 (-100 = ignore)."""
        if not self.config.supervise_proposals:
            stage_logits = stage_logits[:, 1:]
        return self.criterion(stage_logits, targets)
