"""What every loaded model offers, whatever runs it: ``predict(clip)``, ``labels``, ``metadata``.

A backend (ONNX Runtime, PyTorch, TensorRT) only implements :meth:`LoadedModel._forward`, which maps a float32
input batch in the model's layout to its first output. Validation, preprocessing, sampling and the reading of
the output (logits or probabilities) live here, once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import MetadataError, UntrainedWeightsWarning
from ..metadata import ModelMetadata
from ..preprocess import SAMPLINGS, as_clips, prepare_clip

_warned_untrained: set[str] = set()


@dataclass(frozen=True)
class Prediction:
    """The result of one clip.

    Attributes:
        label: the top class's name.
        index: the top class's index into ``labels``.
        probabilities: (num_classes,) float32, summing to 1.
        logits: (num_classes,) float32; for a model that outputs probabilities, their natural log.
        labels: class names, index = column.
    """

    label: str
    index: int
    probabilities: np.ndarray
    logits: np.ndarray
    labels: tuple[str, ...]

    @property
    def probability(self) -> float:
        """Probability of the top class."""
        return float(self.probabilities[self.index])

    def as_dict(self) -> dict[str, float]:
        """``{label: probability}`` for every class."""
        return {name: float(p) for name, p in zip(self.labels, self.probabilities)}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, float32."""
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class LoadedModel:
    """Base class of the runtime's models; see :func:`edgefer.load`.

    Attributes:
        metadata: the artefact's :class:`edgefer.metadata.ModelMetadata`.
        labels: class names, index = output column.
        path: the file the model was loaded from.
    """

    backend = "base"

    def __init__(self, metadata: ModelMetadata, path: str) -> None:
        check_runtime_support(metadata, path)
        self.metadata = metadata
        self.labels = metadata.labels
        self.path = path
        if not metadata.trained and path not in _warned_untrained:
            _warned_untrained.add(path)
            warnings.warn(f"{path} holds untrained weights: its predictions are meaningless (export trained weights "
                          f"with `edgefer export --weights`)", UntrainedWeightsWarning, stacklevel=3)

    def __repr__(self) -> str:
        m = self.metadata
        return f"<{type(self).__name__} {m.model} from {self.path} on {self.backend}, {len(m.labels)} classes>"

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a float32 batch in its input layout; return its first output as float32."""
        raise NotImplementedError

    def predict(self, clip: np.ndarray | Sequence[np.ndarray]) -> Prediction | list[Prediction]:
        """Classify a clip of face crops.

        Args:
            clip: (T, H, W, 3) uint8 BGR frames as OpenCV gives them (face crops of any size), a list of T such
                frames, or a batch (B, T, H, W, 3). The model's sampling protocol (``metadata.sampling``) picks the
                frames it reads: a DFEW-protocol model samples ``clip_length`` frames from any T >= 1.

        Returns:
            A :class:`Prediction`, or a list of B of them for a batch.

        Raises:
            ClipError (a ValueError): wrong type, rank, channel count or dtype, or an empty clip.
        """
        clips, batched = as_clips(clip)
        m = self.metadata
        if m.input_layout == "BTCHW":
            output = self._forward(np.stack([prepare_clip(c, m) for c in clips]))
            if m.task != "dfer":
                return output  # frame-wise outputs (spotting) are read by their own pipeline
            results = [self._read(row) for row in output]
        else:  # per-frame model: run every sampled frame, average the probabilities over the clip's frames
            results = []
            for c in clips:
                probs = self._probabilities(self._forward(prepare_clip(c, m)))
                results.append(self._read_probabilities(probs.mean(axis=0)))
        return results if batched else results[0]

    def _probabilities(self, output: np.ndarray) -> np.ndarray:
        return softmax(output) if self.metadata.output == "logits" else output.astype(np.float32)

    def _read(self, row: np.ndarray) -> Prediction:
        if self.metadata.output == "logits":
            return self._make(softmax(row), row.astype(np.float32))
        return self._read_probabilities(row)

    def _read_probabilities(self, probs: np.ndarray) -> Prediction:
        probs = probs.astype(np.float32)
        probs = probs / probs.sum()
        with np.errstate(divide="ignore"):
            return self._make(probs, np.log(probs))

    def _make(self, probs: np.ndarray, logits: np.ndarray) -> Prediction:
        index = int(np.argmax(probs))
        return Prediction(self.labels[index], index, probs, logits, tuple(self.labels))


def check_runtime_support(metadata: ModelMetadata, source: str) -> None:
    """Raise MetadataError when this runtime cannot feed or read a model with this metadata."""
    if metadata.sampling not in SAMPLINGS:
        raise MetadataError(f"{source}: unknown sampling protocol {metadata.sampling!r} (this edgefer knows {SAMPLINGS})")
    if metadata.input_layout == "NCHW" and metadata.clip_length != 1:
        raise MetadataError(f"{source}: a per-frame (NCHW) model must have clip_length 1, got {metadata.clip_length}")
    if len(metadata.mean) not in (1, metadata.channels):
        raise MetadataError(f"{source}: mean/std have {len(metadata.mean)} values for {metadata.channels} channels")
