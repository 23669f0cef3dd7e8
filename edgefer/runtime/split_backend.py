"""A split stream model on ONNX Runtime: a per-frame encoder and a temporal head, loaded from one folder.

``edgefer export MODEL --split --out NAME.split`` (:mod:`edgefer.export.split`) writes the folder:
``encoder.onnx`` (frames (N, C, H, W) float32 -> per-frame features (N, *F)) and ``head.onnx`` (features
(B, T, *F) -> the first output, (B, classes) logits). Both carry the whole model's metadata and the split's
fields in ``extra``: ``split.part``, ``split.encoder``, ``split.head``, ``split.features`` (F as a JSON list).

As a :class:`~edgefer.runtime.base.LoadedModel` it predicts whole clips like the single-graph export (encoder on
the clip's T frames, then the head). A stream (:func:`edgefer.stream`) calls :meth:`SplitModel.encode` once per
new frame, keeps the features, and calls :meth:`SplitModel.predict_features` once per window. A TensorRT backend
builds one engine per graph (the encoder's batch is frames, the head's is clips) and offers the same two calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, ClipError, MetadataError, ModelFileError
from ..metadata import ModelMetadata
from .base import LoadedModel, Prediction, check_output_shape
from .onnx_backend import _one_line, _register_custom_ops, session_setup
from .onnx_metadata import read_metadata_props

#: The head file a split folder must hold; its metadata names the encoder.
HEAD_FILE = "head.onnx"


def is_split_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a split model's ``head.onnx``."""
    return Path(path).is_dir() and (Path(path) / HEAD_FILE).is_file()


def split_fields(metadata: ModelMetadata, source: str) -> tuple[str, str, str, tuple[int, ...]]:
    """(part, encoder file, head file, feature shape) from a split graph's metadata; MetadataError if malformed."""
    extra = metadata.extra
    missing = [k for k in ("split.part", "split.encoder", "split.head", "split.features") if k not in extra]
    if missing:
        raise MetadataError(f"{source} is not part of a split model: its metadata lacks {', '.join(missing)}")
    try:
        features = tuple(int(d) for d in json.loads(extra["split.features"]))
    except (ValueError, TypeError):
        raise MetadataError(f"{source}: metadata 'edgefer.split.features' is not a JSON list of ints: "
                            f"{extra['split.features'][:60]!r}") from None
    if not features or min(features) < 1:
        raise MetadataError(f"{source}: metadata 'edgefer.split.features' must list positive sizes, got {features}")
    return extra["split.part"], extra["split.encoder"], extra["split.head"], features


class SplitModel(LoadedModel):
    """A split (encoder + temporal head) DFER model from a folder, on ONNX Runtime.

    Args:
        path: the split folder (holding ``head.onnx`` and the encoder its metadata names).
        device: ``"cpu"`` or ``"cuda"``; providers, threads: as for :class:`~edgefer.runtime.onnx_backend.OnnxModel`.
        spinning: let ONNX Runtime's idle threads spin between calls (off by default: a stream interleaves the
            detector's, the encoder's and the head's calls, and spinning threads slow the next session down).

    Attributes:
        feature_shape: the per-frame feature shape F (without the batch axis), e.g. (3, 16, 512) for MSSTNet.
        has_split: True (streams cache the encoder's features).

    Raises:
        ModelFileError: a graph is missing or ONNX Runtime cannot load it.
        MetadataError: the metadata is not a split's, the parts disagree (weights, feature shape), or a graph's
            input or output contradicts it.
        BackendUnavailableError: onnxruntime or the requested provider is missing.
    """

    backend = "onnxruntime (split)"
    has_split = True

    def __init__(self, path: str | Path, *, device: str = "cpu", providers: list[str] | None = None,
                 threads: int | None = None, spinning: bool = False) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("onnxruntime is not installed: `pip install onnxruntime`") from None
        folder = Path(path)
        head_path = folder / HEAD_FILE
        if not head_path.is_file():
            raise ModelFileError(f"{folder} is not a split model folder: it has no {HEAD_FILE}")
        metadata = ModelMetadata.from_props(read_metadata_props(str(head_path)), source=str(head_path))
        part, encoder_name, _, features = split_fields(metadata, str(head_path))
        if part != "head":
            raise MetadataError(f"{head_path}: metadata says it is the split's {part!r}, not its head")
        encoder_path = folder / encoder_name
        if Path(encoder_name).name != encoder_name or not encoder_path.is_file():
            raise ModelFileError(f"{folder}: the encoder its head names ({encoder_name!r}) is missing")
        enc_meta = ModelMetadata.from_props(read_metadata_props(str(encoder_path)), source=str(encoder_path))
        enc_part, _, _, enc_features = split_fields(enc_meta, str(encoder_path))
        if enc_part != "encoder" or enc_features != features or enc_meta.weights_sha256 != metadata.weights_sha256:
            raise MetadataError(f"{folder}: {encoder_name} and {HEAD_FILE} are not parts of one model (part "
                                f"{enc_part!r}, features {enc_features} vs {features}, weights differ: "
                                f"{enc_meta.weights_sha256 != metadata.weights_sha256})")
        if metadata.task != "dfer" or metadata.input_layout != "BTCHW":
            raise MetadataError(f"{folder}: a split model must be a clip (BTCHW) DFER model, got task "
                                f"{metadata.task!r}, layout {metadata.input_layout}")
        # A stream alternates small calls of several sessions (detector, encoder, head): ONNX Runtime's threads
        # spinning after one call steal the cores from the next, so they sleep unless asked (measured ~2x here).
        options, providers = session_setup(ort, device, providers, threads, spinning)
        _register_custom_ops(metadata, options, str(folder))
        self.sessions = {}
        for name, file in (("encoder", encoder_path), ("head", head_path)):
            try:
                self.sessions[name] = ort.InferenceSession(str(file), options, providers=providers)
            except Exception as exc:
                raise ModelFileError(f"ONNX Runtime cannot load {file}: {_one_line(exc)}") from None
        self.feature_shape = features
        enc_in = self.sessions["encoder"].get_inputs()
        head_in = self.sessions["head"].get_inputs()
        frame = [metadata.channels, *metadata.frame_size]
        if len(enc_in) != 1 or not _fits(enc_in[0].shape[1:], frame):
            raise MetadataError(f"{encoder_path}: the encoder's input is {enc_in[0].shape if enc_in else None}, but "
                                f"the metadata describes frames (batch, {', '.join(map(str, frame))})")
        if len(head_in) != 1 or not _fits(head_in[0].shape[1:], [metadata.clip_length, *features]):
            raise MetadataError(f"{head_path}: the head's input is {head_in[0].shape if head_in else None}, but the "
                                f"metadata describes (batch, {metadata.clip_length}, {', '.join(map(str, features))})")
        check_output_shape(metadata, list(self.sessions["head"].get_outputs()[0].shape), str(head_path))
        self._names = {k: s.get_inputs()[0].name for k, s in self.sessions.items()}
        super().__init__(metadata, str(folder))
        self.providers = self.sessions["head"].get_providers()

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame features of preprocessed frames.

        Args:
            frames: (N, C, H, W) float32, prepared as :func:`edgefer.preprocess.prepare_frame` does.

        Returns:
            (N, *feature_shape) float32.

        Raises:
            ClipError: wrong shape or dtype. ModelFileError: ONNX Runtime failed (with its reason).
        """
        frames = np.asarray(frames)
        expected = (self.metadata.channels, *self.metadata.frame_size)
        if frames.dtype != np.float32 or frames.ndim != 4 or tuple(frames.shape[1:]) != expected:
            raise ClipError(f"encode takes (N, {', '.join(map(str, expected))}) float32 frames, got "
                            f"{frames.dtype} {frames.shape}")
        return self._call("encoder", np.ascontiguousarray(frames))

    def head_logits(self, features: np.ndarray) -> np.ndarray:
        """The head's raw first output for (B, T, *feature_shape) float32 features: (B, classes) float32."""
        features = np.asarray(features)
        expected = (self.metadata.clip_length, *self.feature_shape)
        if features.dtype != np.float32 or features.ndim != len(expected) + 1 or tuple(features.shape[1:]) != expected:
            raise ClipError(f"the head takes (B, {', '.join(map(str, expected))}) float32 features, got "
                            f"{features.dtype} {features.shape}")
        output = self._call("head", np.ascontiguousarray(features))
        check_output_shape(self.metadata, list(output.shape), self.path, batch=len(features))
        return output

    def predict_features(self, features: np.ndarray) -> list[Prediction]:
        """Classify B clips given as cached per-frame features (B, T, *feature_shape) float32."""
        probs, logits = self._scores(self.head_logits(features))
        return [self._make(p, z) for p, z in zip(probs, logits)]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        b, t = batch.shape[:2]
        feats = self.encode(batch.reshape(b * t, *batch.shape[2:]))
        return self.head_logits(feats.reshape(b, t, *self.feature_shape))

    def _call(self, part: str, x: np.ndarray) -> np.ndarray:
        try:
            out = self.sessions[part].run(None, {self._names[part]: x})[0]
        except Exception as exc:
            raise ModelFileError(f"ONNX Runtime failed to run {self.path}'s {part} on shape {x.shape}: "
                                 f"{_one_line(exc)}") from None
        return out.astype(np.float32, copy=False)


def _fits(actual, expected) -> bool:
    return len(actual) == len(expected) and all(not isinstance(a, int) or a == e for a, e in zip(actual, expected))
