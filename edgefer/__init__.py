"""edgefer: video facial expression analysis (DFER and expression spotting) at the edge.

The runtime -- ``edgefer.load(path).predict(clip)`` (DFER) or ``.spot_frames(window)`` (expression spotting) on
``.onnx`` and ``.engine`` files -- needs only numpy, OpenCV and ONNX Runtime (or TensorRT); importing
``edgefer`` never imports torch. Training, export and the Triton kernels live in submodules that import torch
when they are imported.
"""

from ._version import __version__
from .errors import (ArgumentError, BackendUnavailableError, ClipError, EdgeferError, ExportError, FetchError,
                     MetadataError, ModelFileError, NoFaceError, OutputPathError, VideoError)
from .labels import DFER_LABELS
from .runtime import load
from . import stream  # callable: edgefer.stream(model, source, stride=S)

__all__ = ["__version__", "load", "stream", "DFER_LABELS", "EdgeferError", "ClipError", "ArgumentError", "OutputPathError",
           "ModelFileError", "MetadataError", "BackendUnavailableError", "VideoError", "NoFaceError", "FetchError",
           "ExportError"]
