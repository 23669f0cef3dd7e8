"""Live video: ``edgefer.stream(model, source, stride=S)`` yields one :class:`StreamResult` per window.

The package is callable: ``edgefer.stream(...)`` is :func:`edgefer.stream.live.stream`. Parts:
:mod:`.live` (the loop and its results), :mod:`.cache` (the per-frame feature cache), :mod:`.smoothing`
(EMA / window vote), :mod:`.sources` (cameras, files, RTSP URLs, GStreamer pipelines, frame iterators, and the
drop-or-block buffer). Torch-free: it needs numpy, OpenCV and the model's backend.
"""

from __future__ import annotations

import sys
import types

from .cache import FeatureCache
from .live import LOST, TRACKED, StreamResult, stream
from .smoothing import SMOOTHINGS, Smoother
from .sources import POLICIES, FrameFeed, open_source

__all__ = ["stream", "StreamResult", "FeatureCache", "Smoother", "SMOOTHINGS", "POLICIES", "FrameFeed",
           "open_source", "TRACKED", "LOST"]


class _CallableModule(types.ModuleType):
    """``edgefer.stream`` is both this package and its main call."""

    def __call__(self, *args, **kwargs):
        return stream(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
