"""Split a clip model into a per-frame encoder and a temporal head: two ONNX graphs in one folder, checked.

The split is what lets a stream (:func:`edgefer.stream`) run the expensive per-frame part once per new frame and
cache its output, and the cheap temporal part once per window:

- MSSTNet: encoder = ResNet-18 + each scale's patch projection (pad + Conv2d(C_s, D, P_s, stride P_s) + bias),
  frame (N, 3, H, W) -> features (N, L, G*G, D), one row per scale; head = temporal and spatial position
  embeddings + the residual adds + the T-Former blocks + LN -> T-Mean -> token mean -> Linear,
  features (B, T, L, G*G, D) -> logits (B, classes).
- STT: encoder = ResNet-18 up to C4 + the 1x1 projection, frame -> (N, h*w, D); head = CLS token, position
  embeddings, the blocks and the classifier, (B, T, h*w, D) -> logits.

Artefact layout (``edgefer.load`` takes the folder): ``OUT/encoder.onnx`` and ``OUT/head.onnx``, each one graph
with one input and one output, so a TensorRT build makes one engine of each (``encoder.engine``,
``head.engine``: the encoder's batch is frames, the head's is clips, two independent optimisation profiles).
Both files carry the whole model's :class:`~edgefer.metadata.ModelMetadata` (the clip's input, labels, sampling
...) plus the split's fields in ``extra`` (see :data:`SPLIT_KEYS`): ``split.part`` (``encoder`` | ``head``),
``split.encoder`` / ``split.head`` (the partner files' names, relative to the folder), ``split.features`` (the
per-frame feature shape as a JSON list, e.g. ``[3, 16, 512]``).

The export is checked before anything is written: onnx.checker on each graph, then encoder + head on ONNX Runtime
against the whole PyTorch model on random clips and on real clips when given; a max abs logit difference above
``atol`` (1e-4) raises :class:`~edgefer.errors.ExportError`. The folder appears only once every check passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgefer.errors import ExportError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import check_output_path, folder_written_atomically

from .onnx_export import DEFAULT_OPSET, tracing

ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "head.onnx"
#: The metadata ``extra`` keys a split artefact carries (the ``edgefer.`` prefix is added in ONNX).
SPLIT_KEYS = ("split.part", "split.encoder", "split.head", "split.features")
#: Models this module can split.
SPLITTABLE = ("msstnet", "stt")


class MSSTNetEncoder(nn.Module):
    """MSSTNet's per-frame part: frames (N, 3, H, W) -> (N, L, G*G, D), the scales' projected patches (no PE)."""

    def __init__(self, model) -> None:
        super().__init__()
        from edgefer.models.msstnet import STAGES

        self.model = model
        self.stage_index = [STAGES[s][1] for s in model.config.scales]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        m, g = self.model, self.model.config.grid
        maps = m.backbone(frames, last_stage=m._last_stage)
        out = []
        for index, embed in zip(self.stage_index, m.embeddings):
            feat = maps[index]
            p = embed.proj.weight.shape[-1]
            x = F.pad(feat, (0, g * p - feat.shape[-1], 0, g * p - feat.shape[-2]))
            x = F.conv2d(x, embed.proj.weight, embed.proj.bias, stride=p)  # (N, D, G, G)
            out.append(x.flatten(2).transpose(1, 2))  # (N, G*G, D), patches row-major as the MELayer
        return torch.stack(out, dim=1)


class MSSTNetHead(nn.Module):
    """MSSTNet's temporal part: cached features (B, T, L, G*G, D) -> logits (B, classes)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = None
        for level, (embed, block) in enumerate(zip(m.embeddings, m.blocks)):
            e = feats[:, :, level] + embed.pos_t[:, None, :] + embed.pos_s[None, :, :]
            x = e if x is None else e + x
            x = block(x, "reference")
        x = m.norm(x).mean(dim=(1, 2))
        return m.head(m.head_drop(x))


class STTEncoder(nn.Module):
    """STT's per-frame part: frames (N, 3, H, W) -> (N, h*w, D), the 1x1-projected C4 tokens."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        feat = self.model.proj(self.model.backbone(frames, last_stage=4)[-1])
        return feat.flatten(2).transpose(1, 2)


class STTHead(nn.Module):
    """STT's temporal part: cached tokens (B, T, h*w, D) -> logits (B, classes)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        T, d = m.config.clip_length, m.config.dim
        if m.cls_token is not None:
            x = torch.cat([m.cls_token.expand(x.shape[0], T, 1, d), x], dim=2)
        x = m.embed_drop(x + m.pos_t[:, None, :] + m.pos_s[None, :, :])
        for block in m.blocks:
            x = block(x, "reference")
        x = m.norm(x)
        x = x[:, :, 0].mean(dim=1) if m.cls_token is not None else x.mean(dim=(1, 2))
        return m.head(m.head_drop(x))


def split_modules(model) -> tuple[nn.Module, nn.Module]:
    """(encoder, head) modules sharing ``model``'s weights; raises ExportError for a model without a split."""
    name = getattr(model, "name", type(model).__name__)
    if name == "msstnet":
        return MSSTNetEncoder(model).eval(), MSSTNetHead(model).eval()
    if name == "stt":
        return STTEncoder(model).eval(), STTHead(model).eval()
    raise ExportError(f"{name} has no encoder/head split (splittable: {', '.join(SPLITTABLE)}); export it whole")


@dataclass
class SplitReport:
    """What a split export wrote and measured.

    Attributes:
        path: the folder written (holding ``encoder.onnx`` and ``head.onnx``).
        metadata: the head's metadata (the whole model's, plus the split fields).
        features: the per-frame feature shape (without the batch axis).
        max_abs_diff: largest |split on ONNX Runtime - whole PyTorch model| logit difference per check set.
    """

    path: Path
    metadata: ModelMetadata
    features: tuple[int, ...]
    max_abs_diff: dict[str, float] = field(default_factory=dict)


def export_split(model, out: str | Path, metadata: ModelMetadata, *, opset: int = DEFAULT_OPSET,
                 real_clips: np.ndarray | None = None, random_batches=(1, 2), atol: float = 1e-4,
                 seed: int = 0) -> SplitReport:
    """Export ``model`` as an encoder + head folder at ``out``, checked against the whole model.

    Args:
        model: an MSSTNet or STT ``nn.Module`` (:func:`edgefer.models.build_model`).
        out: the folder to write (its parent must exist; an existing split folder there is replaced).
        metadata: the whole model's metadata (:func:`edgefer.models.checkpoint.artefact_metadata`); the split
            fields are added to its ``extra``.
        opset: ONNX opset.
        real_clips: (B, T, C, H, W) float32 clips preprocessed as the runtime would, compared too.
        random_batches: batch sizes of the uniform-random clips compared.
        atol: the largest accepted max abs logit difference.
        seed: seed of the random clips.

    Returns:
        A :class:`SplitReport`.

    Raises:
        ExportError: the model has no split, tracing or onnx.checker failed, or the split disagrees with the whole
            model by more than ``atol`` (nothing is written then).
        OutputPathError: ``out`` is a file, or its folder is missing or read-only (before any work).
    """
    import onnx

    out = Path(out)
    if out.is_file():
        from edgefer.errors import OutputPathError

        raise OutputPathError(f"split output {out} is a file; a split model is a folder (e.g. {out.with_suffix('')}.split)")
    check_output_path(out / ENCODER_FILE if out.is_dir() else out, "split output")
    model = model.eval()
    encoder, head = split_modules(model)
    previous = model.kernels
    model.kernels = "reference"
    try:
        c, (h, w), T = metadata.channels, metadata.frame_size, metadata.clip_length
        gen = torch.Generator().manual_seed(seed)
        frames = torch.rand(2, c, h, w, generator=gen)
        with torch.no_grad():
            feats = encoder(frames)
        features = tuple(int(d) for d in feats.shape[1:])
        common = {"split.encoder": ENCODER_FILE, "split.head": HEAD_FILE, "split.features": json.dumps(list(features))}
        parts = {}
        for part in ("encoder", "head"):
            parts[part] = replace(metadata, extra={**dict(metadata.extra), **common, "split.part": part})
        out.parent.mkdir(parents=False, exist_ok=True)
        with folder_written_atomically(out, ".split-") as tmp:
            head_example = torch.rand(1, T, *features, generator=gen)
            _export_graph(encoder, frames, tmp / ENCODER_FILE, "frames", "features", parts["encoder"], opset)
            _export_graph(head, head_example, tmp / HEAD_FILE, "features", "output", parts["head"], opset)
            for name in (ENCODER_FILE, HEAD_FILE):
                try:
                    onnx.checker.check_model(str(tmp / name), full_check=True)
                except onnx.checker.ValidationError as exc:
                    raise ExportError(f"the split's {name} fails onnx.checker: {exc}") from None
            diffs = _parity(model, tmp, (T, c, h, w), random_batches, real_clips, seed)
            worst = max(diffs.values())
            if not worst <= atol:
                raise ExportError(f"the split (encoder + head on ONNX Runtime) disagrees with the whole model: max "
                                  f"abs logit difference {worst:.3g} > {atol:g} ({diffs}); {out} was not written")
    finally:
        model.kernels = previous
    return SplitReport(out, parts["head"], features, diffs)


def _export_graph(module, example, path: Path, input_name: str, output_name: str, metadata: ModelMetadata,
                  opset: int) -> None:
    import onnx

    try:
        with tracing():
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=[input_name],
                              output_names=[output_name], opset_version=opset,
                              dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}})
    except Exception as exc:
        raise ExportError(f"torch.onnx.export of the split's {path.name} failed: {type(exc).__name__}: {exc}") from exc
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.to_props().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def _parity(model, folder: Path, shape, random_batches, real_clips, seed) -> dict[str, float]:
    import onnxruntime as ort

    from .onnx_export import max_abs_diff

    enc = ort.InferenceSession(str(folder / ENCODER_FILE), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(folder / HEAD_FILE), providers=["CPUExecutionProvider"])

    def run(clip: torch.Tensor) -> np.ndarray:
        b, t = clip.shape[:2]
        feats = enc.run(None, {"frames": clip.flatten(0, 1).numpy()})[0]
        return head.run(None, {"features": feats.reshape(b, t, *feats.shape[1:])})[0]

    return max_abs_diff(model, run, shape, random_batches, real_clips, seed)
