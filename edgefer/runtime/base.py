"""What every loaded model offers, whatever runs it: one call a task, ``labels``, ``metadata``.

- a DFER model (``metadata.task == "dfer"``) classifies clips: :meth:`LoadedModel.predict` -> :class:`Prediction`;
- a spotting model (``"spotting"``, FESNet) scores every frame of a window: :meth:`LoadedModel.spot_frames` ->
  :class:`FrameScores`.

Calling one task's method on the other task's model raises :class:`~edgefer.errors.ArgumentError` saying which
to call. A backend (ONNX Runtime, PyTorch, TensorRT) only implements :meth:`LoadedModel._forward`, which maps a
float32 input batch in the model's layout to its first output. Validation, preprocessing, sampling, the check
of the output's shape against the metadata, and the reading of the output (logits or probabilities, one
:func:`softmax`) live here, once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ArgumentError, MetadataError, UntrainedWeightsWarning
from ..metadata import ModelMetadata
from ..preprocess import SAMPLINGS, as_clips, prepare_clip

#: Windows (clips) the video pipelines (:func:`edgefer.pipeline.predict_video`,
#: :func:`edgefer.spotting.video.spot_video`) pass to one model call. Input memory per call is
#: BATCH_SIZE * T * C * H * W float32: 4 FESNet windows of 64 frames at 112 x 112 are 39 MB, 4 MSSTNet clips 10 MB.
BATCH_SIZE = 4

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


@dataclass(frozen=True)
class FrameScores:
    """The frame-wise class scores of one window of K consecutive frames (a spotting model's output).

    Attributes:
        probabilities: (K, C) float32, row k = frame k of the window, each row summing to 1.
        logits: (K, C) float32; for a model that outputs probabilities, their natural log.
        labels: the column names, e.g. ``("neutral", "macro", "micro")``.
    """

    probabilities: np.ndarray
    logits: np.ndarray
    labels: tuple[str, ...]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis: float32 of ``logits``' shape (computed in float64)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
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

    def check_task(self, task: str) -> None:
        """Raise :class:`~edgefer.errors.ArgumentError` unless this model's ``metadata.task`` is ``task``.

        The message says which call (and which ``edgefer`` command) fits the model instead.
        """
        m = self.metadata
        if m.task == task:
            return
        if m.task == "spotting":
            raise ArgumentError(f"{self.path} is an expression-spotting model (task 'spotting', {m.model}): use "
                                f"`edgefer spot VIDEO --model {self.path}` or model.spot_frames(...), not predict")
        raise ArgumentError(f"{self.path} is a {m.task} model ({m.model}), not an expression-spotting model: use "
                            f"`edgefer predict VIDEO --model {self.path}` or model.predict(...), not spot_frames")

    def predict(self, clip: np.ndarray | Sequence[np.ndarray]) -> Prediction | list[Prediction]:
        """Classify a clip of face crops with a DFER model.

        Args:
            clip: (T, H, W, 3) uint8 BGR frames as OpenCV gives them (face crops of any size), a list of T such
                frames, or a batch (B, T, H, W, 3). The model's sampling protocol (``metadata.sampling``) picks the
                frames it reads: a DFEW-protocol model samples ``clip_length`` frames from any T >= 1.

        Returns:
            A :class:`Prediction`, or a list of B of them for a batch.

        Raises:
            ArgumentError: the model is a spotting model (use :meth:`spot_frames` or ``edgefer spot``).
            ClipError (a ValueError): wrong type, rank, channel count or dtype, or an empty clip.
            MetadataError: the model's output contradicts its metadata (shape, number of labels).
            ModelFileError: the backend failed to run the model (with the backend's reason).
        """
        self.check_task("dfer")
        clips, batched = as_clips(clip)
        m = self.metadata
        if m.input_layout == "BTCHW":
            probs, logits = self._scores(self._run(np.stack([prepare_clip(c, m) for c in clips])))
            results = [self._make(p, z) for p, z in zip(probs, logits)]
        else:  # per-frame model: run every sampled frame, average the probabilities over the clip's frames
            results = []
            for c in clips:
                probs, _ = self._scores(self._run(prepare_clip(c, m)))
                results.append(self._make(*_from_probabilities(probs.mean(axis=0))))
        return results if batched else results[0]

    def spot_frames(self, clip: np.ndarray | Sequence[np.ndarray]) -> FrameScores | list[FrameScores]:
        """Score every frame of a window of K consecutive face crops with a spotting model (FESNet).

        Args:
            clip: (K, H, W, 3) uint8 BGR frames (face crops of any size), a list of K such frames, or a batch
                (B, K, H, W, 3); K = ``metadata.clip_length`` (the ``consecutive`` protocol reads exactly K).

        Returns:
            A :class:`FrameScores` with (K, C) frame-wise probabilities, or a list of B of them for a batch.

        Raises:
            ArgumentError: the model is not a spotting model (use :meth:`predict` or ``edgefer predict``).
            ClipError (a ValueError): wrong type, rank, channel count or dtype, or not K frames.
            MetadataError: the model's output contradicts its metadata (shape, number of labels).
            ModelFileError: the backend failed to run the model (with the backend's reason).
        """
        self.check_task("spotting")
        clips, batched = as_clips(clip)
        probs, logits = self._scores(self._run(np.stack([prepare_clip(c, self.metadata) for c in clips])))
        results = [FrameScores(p, z, tuple(self.labels)) for p, z in zip(probs, logits)]
        return results if batched else results[0]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        output = self._forward(batch)
        check_output_shape(self.metadata, list(output.shape), self.path, batch=len(batch))
        return output

    def _scores(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, logits), float32, of a raw output, per ``metadata.output``."""
        if self.metadata.output == "logits":
            return softmax(output), output.astype(np.float32)
        return _from_probabilities(output)

    def _make(self, probs: np.ndarray, logits: np.ndarray) -> Prediction:
        index = int(np.argmax(probs))
        return Prediction(self.labels[index], index, probs, logits, tuple(self.labels))


def _from_probabilities(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = probs.astype(np.float32)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return probs, np.log(probs)


def _output_axes(metadata: ModelMetadata) -> tuple[str, ...]:
    """The names of the first output's axes for the model's task: ``("batch", "labels")`` for DFER (a per-frame
    model's batch is its frames), ``("batch", "frames", "labels")`` for spotting (K = ``clip_length`` frames)."""
    return ("batch", "frames", "labels") if metadata.task == "spotting" else ("batch", "labels")


def check_output_shape(metadata: ModelMetadata, shape: list, source: str, batch: int | None = None) -> None:
    """Raise MetadataError unless an output ``shape`` fits the metadata's task, clip length and labels.

    Args:
        metadata: the model's metadata.
        shape: the output's dims; ints are checked, anything else (a graph's symbolic or unknown dims) is not.
        source: the model file, for the message.
        batch: the batch size the output belongs to (checked when given: a run's actual output).
    """
    sizes = {"batch": batch, "frames": metadata.clip_length, "labels": len(metadata.labels)}
    layout = _output_axes(metadata)
    expected = [sizes[axis] for axis in layout]
    if len(shape) == len(expected) and all(not isinstance(d, int) or e is None or d == e
                                           for d, e in zip(shape, expected)):
        return
    want = ", ".join(axis if sizes[axis] is None else f"{axis}={sizes[axis]}" for axis in layout)
    got = "(" + ", ".join(str(d) for d in shape) + ")"
    context = f"for a batch of {batch}" if batch is not None else "in the graph"
    raise MetadataError(f"{source}: the model's first output is {got} {context}, but its metadata (task "
                        f"{metadata.task!r}, {len(metadata.labels)} labels) needs ({want})")


def check_runtime_support(metadata: ModelMetadata, source: str) -> None:
    """Raise MetadataError when this runtime cannot feed or read a model with this metadata."""
    if metadata.sampling not in SAMPLINGS:
        raise MetadataError(f"{source}: unknown sampling protocol {metadata.sampling!r} (this edgefer knows "
                            f"{SAMPLINGS})")
    if metadata.input_layout == "NCHW" and metadata.clip_length != 1:
        raise MetadataError(f"{source}: a per-frame (NCHW) model must have clip_length 1, got {metadata.clip_length}")
    if metadata.task == "spotting" and (metadata.input_layout != "BTCHW" or metadata.sampling != "consecutive"):
        raise MetadataError(f"{source}: a spotting model scores the frames it is fed, so it must read clips (BTCHW) "
                            f"of consecutive frames; got {metadata.input_layout} with sampling {metadata.sampling!r}")
    if len(metadata.mean) not in (1, metadata.channels):
        raise MetadataError(f"{source}: mean/std have {len(metadata.mean)} values for {metadata.channels} channels")
