"""ONNX Runtime backend: the embedded default (CPU execution provider), CUDA execution provider on request.

Loading follows the file's metadata, never ONNX Runtime's error strings: the metadata is read first, from the
file itself (:func:`~edgefer.runtime.onnx_metadata.read_metadata_props`); the custom-op libraries it lists are
registered before the session is created; any failure of ONNX Runtime is reported with ONNX Runtime's own reason;
and the graph's input and first output are checked against the metadata before the first ``predict``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, MetadataError, ModelFileError
from ..metadata import ModelMetadata
from .base import LoadedModel, check_output_shape
from .onnx_metadata import read_metadata_props

DEVICES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
#: Custom-op domains this runtime can register when ``metadata.custom_ops`` lists them (:mod:`edgefer.ortops`).
CUSTOM_OP_DOMAINS = ("edgefer",)
#: ONNX Runtime's names of the float tensor types edgefer reads an output of (cast to float32).
FLOAT_OUTPUTS = ("tensor(float)", "tensor(float16)", "tensor(double)")


class OnnxModel(LoadedModel):
    """An edgefer ``.onnx`` artefact on ONNX Runtime.

    Args:
        path: the ``.onnx`` file (with edgefer metadata, written by ``edgefer export``).
        device: ``"cpu"`` (CPU execution provider) or ``"cuda"`` (CUDA execution provider, CPU fallback for
            ops it lacks).
        providers: an explicit ONNX Runtime execution-provider list, overriding ``device``.
        threads: intra-op threads (ONNX Runtime's default when None).
        spinning: let idle intra-op threads spin between calls (ONNX Runtime's default); False makes them sleep,
            which is faster when several sessions take turns on few cores (a stream's detector and model).

    Raises:
        ModelFileError: the file is missing, empty, truncated or not ONNX, or ONNX Runtime cannot create a
            session from it (the message carries ONNX Runtime's reason).
        MetadataError: no edgefer metadata, metadata naming a custom-op domain this edgefer lacks, or metadata
            that contradicts the graph: its input's shape or type, or its first output's shape (the labels, the
            task's layout) or type.
        BackendUnavailableError: onnxruntime, the requested execution provider, or the edgefer custom-op
            library the metadata lists is missing (the message names the library and how to build it).
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, *, device: str = "cpu", providers: list[str] | None = None,
                 threads: int | None = None, spinning: bool = True) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("onnxruntime is not installed: `pip install onnxruntime`") from None
        path = str(path)
        if not Path(path).is_file():
            raise ModelFileError(f"model file {path} does not exist")
        if Path(path).stat().st_size == 0:
            raise ModelFileError(f"model file {path} is empty")
        metadata = ModelMetadata.from_props(read_metadata_props(path), source=path)
        options, providers = session_setup(ort, device, providers, threads, spinning)
        _register_custom_ops(metadata, options, path)
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types per failure, all plain Exceptions
            raise ModelFileError(f"ONNX Runtime cannot load {path}: {_one_line(exc)}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        _check_graph(inputs, outputs, metadata, path)
        self.input_name = inputs[0].name
        super().__init__(metadata, path)
        self.providers = self.session.get_providers()

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        try:
            output = self.session.run(None, {self.input_name: batch})[0]
        except Exception as exc:  # a graph that fails on inputs of the shape its metadata promised
            raise ModelFileError(f"ONNX Runtime failed to run {self.path} on a batch of shape {batch.shape}: "
                                 f"{_one_line(exc)}") from None
        return output.astype(np.float32, copy=False)


def session_setup(ort, device: str, providers: list[str] | None, threads: int | None, spinning: bool):
    """(SessionOptions, execution providers) for a session of this runtime: ``providers``, or ``device``'s.

    ``threads`` sets the intra-op threads (ONNX Runtime's default when None); ``spinning=False`` lets idle
    threads sleep between calls (sessions called in turn, such as a stream's detector, encoder and head).

    Raises:
        ValueError: an unknown ``device``.
        BackendUnavailableError: ``device="cuda"`` without ONNX Runtime's CUDA execution provider.
    """
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
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options, providers


def _register_custom_ops(metadata: ModelMetadata, options, path: str) -> None:
    unknown = [d for d in metadata.custom_ops if d not in CUSTOM_OP_DOMAINS]
    if unknown:
        raise MetadataError(f"{path} needs custom-op domains {unknown} that this edgefer does not provide (it "
                            f"provides {list(CUSTOM_OP_DOMAINS)})")
    if "edgefer" in metadata.custom_ops:
        from .. import ortops

        try:
            ortops.register(options)
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(f"{path} uses edgefer custom ops (metadata custom_ops "
                                          f"{list(metadata.custom_ops)}): {exc}") from None


def _check_graph(inputs: list, outputs: list, metadata: ModelMetadata, path: str) -> None:
    """The graph's one float input and first float output must have the shapes the metadata describes."""
    if len(inputs) != 1:
        raise MetadataError(f"{path}: edgefer feeds one input, but the graph has {len(inputs)}: "
                            f"{[i.name for i in inputs]}")
    if inputs[0].type != "tensor(float)":
        raise MetadataError(f"{path}: edgefer feeds float32 clips, but the graph's input is {inputs[0].type}")
    if metadata.input_layout == "BTCHW":
        expected = (metadata.clip_length, metadata.channels, *metadata.frame_size)
    else:
        expected = (metadata.channels, *metadata.frame_size)
    shape = list(inputs[0].shape)
    actual = shape[1:]
    if len(actual) != len(expected) or any(isinstance(a, int) and a != e for a, e in zip(actual, expected)):
        raise MetadataError(f"{path}: metadata describes inputs (batch, {', '.join(map(str, expected))}) but the "
                            f"graph's input is {shape}")
    if not outputs:
        raise MetadataError(f"{path}: the graph has no output")
    if outputs[0].type not in FLOAT_OUTPUTS:
        raise MetadataError(f"{path}: the graph's first output is {outputs[0].type}, not float scores")
    check_output_shape(metadata, list(outputs[0].shape), path)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
