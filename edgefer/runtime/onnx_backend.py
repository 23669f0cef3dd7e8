"""ONNX Runtime backend: the embedded default (CPU execution provider), CUDA execution provider on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, MetadataError, ModelFileError
from ..metadata import ModelMetadata
from .base import LoadedModel

DEVICES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


class OnnxModel(LoadedModel):
    """An edgefer ``.onnx`` artefact on ONNX Runtime.

    Args:
        path: the ``.onnx`` file (with edgefer metadata, written by ``edgefer export``).
        device: ``"cpu"`` (CPU execution provider) or ``"cuda"`` (CUDA execution provider, CPU fallback for
            ops it lacks).
        providers: an explicit ONNX Runtime execution-provider list, overriding ``device``.
        threads: intra-op threads (ONNX Runtime's default when None).

    Raises:
        ModelFileError: the file is missing, empty, truncated or not ONNX.
        MetadataError: no edgefer metadata, or metadata that contradicts the graph's input.
        BackendUnavailableError: onnxruntime, the requested execution provider, or the edgefer custom-op
            library the graph needs is missing.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, device: str = "cpu", providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("onnxruntime is not installed: `pip install onnxruntime`") from None
        path = str(path)
        if not Path(path).is_file():
            raise ModelFileError(f"model file {path} does not exist")
        if Path(path).stat().st_size == 0:
            raise ModelFileError(f"model file {path} is empty")
        if providers is None:
            if device not in DEVICES:
                raise ValueError(f"device must be one of {sorted(DEVICES)}, got {device!r}")
            if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError("the CUDA execution provider is not available in this onnxruntime "
                                              "(install onnxruntime-gpu with a matching CUDA)")
            providers = DEVICES[device]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = self._open(ort, path, options, providers)
        props = self.session.get_modelmeta().custom_metadata_map
        metadata = ModelMetadata.from_props(props, source=path)
        self.input_name = self.session.get_inputs()[0].name
        _check_input_shape(self.session.get_inputs()[0].shape, metadata, path)
        super().__init__(metadata, path)
        self.providers = self.session.get_providers()

    @staticmethod
    def _open(ort, path: str, options, providers):
        try:
            return ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            message = str(exc)
            if "edgefer" not in message or "not a registered function/op" not in message:
                first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
                raise ModelFileError(f"{path} is not a loadable ONNX model (truncated or corrupt?): {first}") from None
        from .. import ortops  # the graph uses edgefer custom ops: register the library, then retry

        ortops.register(options)
        try:
            return ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:
            raise ModelFileError(f"{path} failed to load with the edgefer custom-op library: {exc}") from None

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0].astype(np.float32, copy=False)


def _check_input_shape(shape: list, metadata: ModelMetadata, path: str) -> None:
    if metadata.input_layout == "BTCHW":
        expected = (metadata.clip_length, metadata.channels, *metadata.frame_size)
    else:
        expected = (metadata.channels, *metadata.frame_size)
    actual = list(shape)[1:]
    if len(actual) != len(expected) or any(isinstance(a, int) and a != e for a, e in zip(actual, expected)):
        raise MetadataError(f"{path}: metadata describes inputs (batch, {', '.join(map(str, expected))}) but the "
                            f"graph's input is {shape}")
