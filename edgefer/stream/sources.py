"""Live frame sources for :func:`edgefer.stream`: cameras, files, RTSP URLs, GStreamer pipelines, iterators.

All yield OpenCV BGR uint8 (H, W, 3) frames. :func:`open_source` opens one and says whether it is live (a camera
or network stream, which keeps producing frames whether or not we read them) and its frame rate.
:class:`FrameFeed` puts a bounded buffer between the source and the consumer, with one of two policies for a
consumer slower than the source: ``"block"`` (the source waits: nothing is lost, a live source falls behind in
its own buffers) or ``"drop"`` (a reader thread keeps reading; when the buffer is full the oldest frame is
dropped and counted in :attr:`FrameFeed.dropped`).
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import ArgumentError, VideoError

#: Backpressure policies of a feed.
POLICIES = ("block", "drop")


@dataclass
class Source:
    """An opened frame source.

    Attributes:
        frames: the frames, BGR uint8 (H, W, 3).
        fps: frames per second (reported, or the fallback for sources that report none).
        name: a short name for messages.
        live: True for cameras and network/GStreamer streams.
        close: releases the device or file (idempotent).
    """

    frames: Iterable[np.ndarray]
    fps: float
    name: str
    live: bool
    close: object


def _is_url_or_pipeline(text: str) -> bool:
    return "://" in text or "!" in text


def open_source(source, fps: float | None = None) -> Source:
    """Open ``source`` for reading.

    Args:
        source: a camera index (int), a video file path, an RTSP/HTTP URL (``rtsp://...``), a GStreamer pipeline
            string (contains ``!``, ending in ``appsink``), or any iterable of BGR uint8 (H, W, 3) frames.
        fps: the frame rate to assume (frames/s) when the source reports none (iterators always); default 25.

    Raises:
        VideoError: the file is missing or not a video, the camera, URL or pipeline cannot be opened, or it
            yields no frame.
        ArgumentError: ``fps`` is not a positive number.
    """
    from ..video.reader import DEFAULT_FPS, VideoReader, usable_fps

    if fps is not None and not (isinstance(fps, (int, float)) and fps > 0):
        raise ArgumentError(f"fps must be a positive number of frames per second, got {fps!r}")
    fallback = float(fps) if fps is not None else DEFAULT_FPS
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        reader = VideoReader(int(source), fps_fallback=fallback)
        return Source(reader, reader.fps, f"camera {int(source)}", True, reader.close)
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        if isinstance(source, str) and _is_url_or_pipeline(text) and not Path(text).exists():
            return _open_capture(text, fallback)
        reader = VideoReader(source, fps_fallback=fallback)
        return Source(reader, reader.fps, text, False, reader.close)
    if isinstance(source, (bytes, bool)) or not hasattr(source, "__iter__"):
        raise VideoError(f"a stream source must be a camera index, a video file, an RTSP URL, a GStreamer pipeline or "
                         f"an iterable of BGR frames, got {type(source).__name__}")
    return Source(_checked_frames(iter(source)), fallback, "frames", False, lambda: None)


def _open_capture(spec: str, fallback: float) -> Source:
    import cv2

    from ..video.reader import usable_fps

    pipeline = "!" in spec
    capture = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER) if pipeline else cv2.VideoCapture(spec)
    kind = "GStreamer pipeline" if pipeline else "stream URL"
    if not capture.isOpened():
        extra = " (is this OpenCV built with GStreamer?)" if pipeline else ""
        raise VideoError(f"cannot open {kind} {spec!r}{extra}")
    fps, _ = usable_fps(capture.get(cv2.CAP_PROP_FPS), fallback)

    def frames() -> Iterator[np.ndarray]:
        while capture.isOpened():
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            yield frame

    return Source(frames(), fps, spec, True, capture.release)


def _checked_frames(frames: Iterator) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
            what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise VideoError(f"frame {i} of the frame iterator is not a BGR uint8 (H, W, 3) image: {what}")
        yield frame


class FrameFeed:
    """A bounded buffer between a frame source and its consumer; iterate it for ``(source_index, frame)``.

    Args:
        frames: the source's frames.
        policy: ``"block"`` (read on demand, in the consumer's thread: nothing is dropped) or ``"drop"`` (a
            reader thread fills a buffer of ``buffer`` frames; when full, the oldest is dropped and counted).
        buffer: frames held at most (>= 1) with ``"drop"``.

    Attributes:
        dropped: frames dropped so far (always 0 with ``"block"``).
    """

    def __init__(self, frames: Iterable[np.ndarray], policy: str = "block", buffer: int = 4) -> None:
        if policy not in POLICIES:
            raise ArgumentError(f"on_slow must be one of {POLICIES}, got {policy!r}")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ArgumentError(f"buffer must be an int >= 1 (frames), got {buffer!r}")
        self.frames, self.policy, self.buffer = frames, policy, buffer
        self.dropped = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.policy == "block":
            yield from enumerate(self.frames)
            return
        q: queue.Queue = queue.Queue(maxsize=self.buffer)
        lock = threading.Lock()
        end = object()

        def read() -> None:
            try:
                for item in enumerate(self.frames):
                    if self._stop.is_set():
                        return
                    with lock:
                        while True:
                            try:
                                q.put_nowait(item)
                                break
                            except queue.Full:
                                try:
                                    q.get_nowait()
                                    self.dropped += 1
                                except queue.Empty:
                                    pass
            except BaseException as exc:  # handed to the consumer's thread
                self._error = exc
            finally:
                with lock:
                    while True:
                        try:
                            q.put_nowait(end)
                            break
                        except queue.Full:
                            q.get_nowait()
                            self.dropped += 1

        thread = threading.Thread(target=read, name="edgefer-frame-feed", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is end:
                    break
                yield item
            if self._error is not None:
                raise self._error
        finally:
            self._stop.set()
            thread.join(timeout=1.0)
