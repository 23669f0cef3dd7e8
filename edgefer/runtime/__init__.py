"""The lightweight runtime: ``edgefer.load(path)`` picks a backend from the file's suffix.

``.onnx`` runs on ONNX Runtime (CPU by default); ``.engine`` (``.plan``, ``.trt``) on TensorRT with a CUDA GPU
(:mod:`edgefer.runtime.tensorrt_backend`); ``.pt`` on PyTorch (development, parity checks); ``zoo:NAME`` fetches a
ready-made artefact (see ``edgefer zoo list``). Only the ``.pt`` path imports torch.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from .base import FrameScores, LoadedModel, Prediction

__all__ = ["load", "LoadedModel", "Prediction", "FrameScores"]


def load(path: str | Path, *, device: str | None = None, **options) -> LoadedModel:
    """Load an edgefer artefact for inference.

    Args:
        path: an ``.onnx`` file, a TensorRT engine (``.engine``, with its ``.engine.json`` side-car; written by
            ``edgefer export --format engine``), a ``.pt`` checkpoint, a split model folder (``encoder.onnx`` + ``head.onnx``,
            written by ``edgefer export --split``; see :mod:`edgefer.runtime.split_backend`), or ``"zoo:NAME"``.
        device: ``"cpu"`` or ``"cuda"``; default the backend's own: ``"cpu"``, and ``"cuda"`` for an engine.
        options: backend options: ``providers``, ``threads`` (ONNX Runtime); ``model_name``, ``kernels`` (PyTorch);
            ``plugins`` (TensorRT: plugin library paths instead of those the metadata names).

    Returns:
        A model with ``.labels``, ``.metadata`` and its task's call: ``.predict(clip)`` for a DFER model,
        ``.spot_frames(window)`` for a spotting model (:class:`edgefer.runtime.base.LoadedModel`).

    Raises:
        ModelFileError: missing, truncated or unsupported file, or a directory, or a file ONNX Runtime or TensorRT
            cannot load (the message gives its reason).
        MetadataError: the file lacks edgefer metadata or it contradicts the model (its input, or its output's
            shape against the task and the labels).
        BackendUnavailableError: the backend the file needs is not installed (TensorRT, cuda-python: the message
            says how to install them on JetPack), no CUDA device for an engine, or the custom-op or plugin library
            its metadata lists (the message says how to build it).
        ArgumentError: an engine loaded with ``device="cpu"``.
        FetchError: a ``zoo:`` entry could not be fetched.
    """
    text = str(path)
    if text.startswith("zoo:"):
        from ..zoo import zoo_path

        path = zoo_path(text[len("zoo:"):])
    if Path(path).is_dir():
        from .split_backend import SplitModel, is_split_folder

        if is_split_folder(path):  # a split stream model: encoder.onnx + head.onnx (edgefer export --split)
            return SplitModel(path, device=device or "cpu", **options)
        raise ModelFileError(f"model path {path} is a directory, not a model file")
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        from .onnx_backend import OnnxModel

        return OnnxModel(path, device=device or "cpu", **options)
    if suffix in (".pt", ".pth"):
        from .torch_backend import TorchModel

        return TorchModel(path, device=device or "cpu", **options)
    if suffix in (".engine", ".plan", ".trt"):
        from .tensorrt_backend import TensorRTModel

        return TensorRTModel(path, device=device or "cuda", **options)
    raise ModelFileError(f"{path}: unknown model file type {suffix or '(no suffix)'!r}; edgefer loads .onnx, "
                         ".engine and .pt")
