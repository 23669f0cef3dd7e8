"""The exceptions edgefer raises.

Every expected failure (bad input, a broken model file, a video with no face) raises a subclass of
:class:`EdgeferError`, so a caller can catch the family and the CLI can print one clear line with no
traceback. Input-shape and dtype problems passed to ``predict`` raise :class:`ClipError`, which is also a
``ValueError``, as Python callers expect.
"""

from __future__ import annotations


class EdgeferError(Exception):
    """Base class of every error edgefer raises on purpose."""


class ClipError(EdgeferError, ValueError):
    """A clip passed to ``predict`` has the wrong shape, dtype or length."""


class ArgumentError(EdgeferError, ValueError):
    """An argument is out of range or contradicts another (a stride < 1, a window longer than the video, an
    unknown model name or config field). Also a ``ValueError``."""


class OutputPathError(EdgeferError):
    """An output file cannot be written (its folder is missing, it is a directory, or it is not writable); found
    before any work starts, so nothing is lost."""


class ModelFileError(EdgeferError):
    """A model file is missing, truncated, corrupt, or of a kind edgefer cannot load."""


class MetadataError(ModelFileError):
    """A model file lacks edgefer metadata, or its metadata is malformed or unexpected."""


class BackendUnavailableError(EdgeferError):
    """The runtime backend a model needs (ONNX Runtime, TensorRT, torch, a custom-op library) is missing."""


class VideoError(EdgeferError):
    """A video file or camera is missing, unreadable, or not a video."""


class NoFaceError(VideoError):
    """No face was found in the frames that had to be analysed."""


class FetchError(EdgeferError):
    """A sample or zoo artefact could not be fetched from the package registry."""


class ExportError(EdgeferError):
    """An export failed its checks (ONNX checker, or ONNX Runtime disagreeing with PyTorch); nothing was written."""


class UntrainedWeightsWarning(UserWarning):
    """Warned once per file when a model with untrained weights is loaded: its predictions are meaningless."""
