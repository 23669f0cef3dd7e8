"""``edgefer.stream(model, source, stride=S)``: live windows over a camera, a file, a URL or any frame iterator.

Per frame: the face is detected every ``detect_every`` frames (between detections the tracker's last box is
carried forward and matched as the track's detection), tracked with :class:`~edgefer.video.track.FaceTracker`'s
one bridging policy (:func:`~edgefer.video.track.iter_face_track`: a frame's box is known at most
``tracker.max_gap`` frames late), and cropped with the model's ``face_margin`` / ``face_align``. A split model
(:class:`~edgefer.runtime.split_backend.SplitModel`, ``edgefer export --split``) encodes each new face crop once
into the :class:`~edgefer.stream.cache.FeatureCache` and runs its temporal head once per window; any other model
(a single-graph export, the per-frame zoo model, FESNet) reruns on the window's crops. A window is the last T
face frames (T = the model's clip length, 16 for MSSTNet / STT), one result every ``stride`` face frames once T
are cached; the model reads them with its own sampling protocol (the DFEW test protocol takes all 16 of 16).

A face-less frame is never fed to a model: the cache is cleared (the window restarts), smoothing is reset, and
a result with ``face="lost"`` and no label is yielded at the first face-less frame and then every ``stride``
face-less frames. A new track (another face) also restarts the window.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import ArgumentError
from ..preprocess import prepare_frame
from ..runtime.base import LoadedModel
from ..sampling import check_count, check_windows
from .cache import FeatureCache
from .smoothing import Smoother
from .sources import FrameFeed, open_source

#: Frames per window of a per-frame model (clip_length 1), as in :data:`edgefer.pipeline.DEFAULT_WINDOW`.
DEFAULT_WINDOW = 16
TRACKED, LOST = "tracked", "lost"


@dataclass(frozen=True)
class StreamResult:
    """One window of a stream (``face == "tracked"``), or a report that the face is gone (``"lost"``).

    Attributes:
        start_frame, end_frame: the window's first and last source frame (0-based, inclusive; frames dropped by
            ``on_slow="drop"`` are skipped, so a window may span more than T source frames). For a lost result:
            the face-less frames it reports.
        start_s, end_s: the same span in seconds (``end_s`` = the end of its last frame), from the source's fps.
        face: ``"tracked"`` or ``"lost"``.
        label, index: the top class (after smoothing), or None when lost.
        probabilities: (C,) float32 summing to 1, smoothed as asked; None when lost.
        raw_probabilities: (C,) float32 of this window alone; logits: (C,) float32 (a spotting model: the mean
            frame-wise log-probabilities); None when lost.
        frame_probabilities: a spotting model's (T, C) frame-wise scores of the window; else None.
        box: the face box (:class:`~edgefer.video.faces.FaceBox`, full-frame pixels) of the window's last frame,
            None when lost.
        detected: whether that box came from a detector run (False: carried by the tracker or bridged).
        ms: model time this result cost, in milliseconds: the encoder on the frames new since the previous result
            plus the head (a split model), or the whole model on the window (otherwise).
        detect_ms: face detection time since the previous result, in milliseconds.
        dropped: frames dropped so far because the consumer was slower than the source (``on_slow="drop"``).
        cached: whether the window came from the feature cache (a split model).
    """

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    face: str
    label: str | None
    index: int | None
    probabilities: np.ndarray | None
    raw_probabilities: np.ndarray | None
    logits: np.ndarray | None
    frame_probabilities: np.ndarray | None
    box: Any
    detected: bool
    ms: float
    detect_ms: float
    dropped: int
    cached: bool

    @property
    def tracked(self) -> bool:
        """Whether the window has a face (and a label)."""
        return self.face == TRACKED

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (probabilities per label when tracked)."""
        return {"start_frame": self.start_frame, "end_frame": self.end_frame, "start_s": round(self.start_s, 4),
                "end_s": round(self.end_s, 4), "face": self.face, "label": self.label,
                "probability": None if self.index is None else float(self.probabilities[self.index]),
                "box": None if self.box is None else [round(float(v), 1) for v in (self.box.x, self.box.y,
                                                                                   self.box.w, self.box.h)],
                "ms": round(self.ms, 3), "detect_ms": round(self.detect_ms, 3), "dropped": self.dropped,
                "cached": self.cached}


class _EveryNth:
    """A detector run every ``every``-th frame; between runs, the tracker's box is returned as the detection."""

    def __init__(self, detector, every: int, tracker) -> None:
        from ..video.faces import RegionFaceDetector

        self.detector, self.every, self.tracker = detector, every, tracker
        self.near = detector.detect_near if isinstance(detector, RegionFaceDetector) else None
        self.calls = 0
        self.ms = 0.0
        self.ran: deque[bool] = deque()  # per frame handed over, not yet decided: whether the detector ran on it

    def detect(self, frame: np.ndarray) -> list:
        k, self.calls = self.calls, self.calls + 1
        box = self.tracker.box
        if box is not None and k % self.every:
            self.ran.append(False)
            return [box]
        self.ran.append(True)
        t0 = time.perf_counter()
        found = self.near(frame, box) if self.near is not None and box is not None else []
        found = found or self.detector.detect(frame)
        self.ms += (time.perf_counter() - t0) * 1e3
        return found


def stream(model: LoadedModel | str, source, *, stride: int = 4, window: int | None = None, detect_every: int = 1,
           detector=None, smoothing: str = "none", ema_alpha: float = 0.5, vote_windows: int = 5,
           on_slow: str | None = None, buffer: int = 4, fps: float | None = None, max_frames: int | None = None,
           tracker=None) -> Iterator[StreamResult]:
    """Yield a :class:`StreamResult` per window as frames arrive (see the module docstring for the rules).

    Args:
        model: a loaded model (:func:`edgefer.load`; a split folder gives the feature cache) or a path for it.
        source: a camera index (int), a video file, an RTSP URL, a GStreamer pipeline string (through OpenCV), or
            any iterable of BGR uint8 (H, W, 3) frames.
        stride: face frames between results, >= 1 and <= the window.
        window: frames per window; None = the model's clip length (16 for MSSTNet / STT; 16 for a per-frame
            model). A clip model's window must equal its clip length; a spotting model's is its K.
        detect_every: run the detector on every N-th frame (>= 1); the tracker carries the box between.
        detector: a :class:`~edgefer.video.faces.FaceDetector` or a name for :func:`edgefer.detectors.make_detector`;
            None = the default (BlazeFace short range).
        smoothing: ``"none"``, ``"ema"`` (weight ``ema_alpha`` on the newest window) or ``"vote"`` (over the last
            ``vote_windows`` results); see :class:`~edgefer.stream.smoothing.Smoother`.
        on_slow: what to do when the consumer is slower than the source: ``"drop"`` (keep reading, drop the
            oldest buffered frame, count it in ``dropped``) or ``"block"`` (the source waits). None = ``"drop"``
            for live sources (cameras, URLs, pipelines), ``"block"`` for files and iterators.
        buffer: frames buffered with ``"drop"``, >= 1.
        fps: frame rate for timestamps when the source reports none (frame iterators); default 25.
        max_frames: stop after this many source frames (None: until the source ends).
        tracker: a :class:`~edgefer.video.track.FaceTracker` with its parameters (its ``max_gap`` is the latency
            in frames of a result); None = ``FaceTracker()``.

    Raises:
        ArgumentError: a bad stride, window, detect_every, smoothing, on_slow or buffer; a window that the model
            cannot read (a clip model's window differs from its clip length).
        VideoError: the source cannot be opened, or an iterator yields something that is not a BGR frame.
        ModelFileError / MetadataError: as :func:`edgefer.load` when ``model`` is a path.
    """
    from ..detectors import make_detector
    from ..video.track import FaceTracker, iter_face_track

    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from ..runtime import load

        model = load(model)
    m = model.metadata
    clip_model = m.clip_length > 1
    size = window if window is not None else (m.clip_length if clip_model else DEFAULT_WINDOW)
    size = check_count("window", size)
    if clip_model and size != m.clip_length:
        raise ArgumentError(f"{m.model} reads windows of exactly its clip length {m.clip_length} in a stream, got "
                            f"window {size}")
    size, step = check_windows(size, stride)
    detect_every = check_count("detect_every", detect_every)
    smoother = Smoother(smoothing, ema_alpha, vote_windows)
    split = bool(getattr(model, "has_split", False))
    tracker = FaceTracker() if tracker is None else tracker
    det = _EveryNth(make_detector(detector) if detector is None or isinstance(detector, str) else detector,
                    detect_every, tracker)
    src = open_source(source, fps)
    feed = FrameFeed(src.frames, on_slow or ("drop" if src.live else "block"), buffer)
    return _run(model, src, feed, det, tracker, smoother, size, step, split, max_frames, iter_face_track)


def _run(model, src, feed, det, tracker, smoother, size, step, split, max_frames, iter_face_track):
    m = model.metadata
    fps = float(src.fps)
    source_index: deque[int] = deque()  # source indices of the frames handed to the tracker, not yet decided

    def frames():
        for index, frame in itertools.islice(feed, max_frames):
            source_index.append(index)
            yield frame

    cache = FeatureCache(size)
    since = 0  # face frames since the last result
    emitted = False  # a result of this track was given
    lost_start, lost_count = None, 0  # first face-less frame of the current run, frames in it
    model_ms, detect_seen = 0.0, 0.0

    def result(**kw) -> StreamResult:
        nonlocal model_ms, detect_seen
        out = StreamResult(**kw, ms=model_ms, detect_ms=det.ms - detect_seen, dropped=feed.dropped, cached=split)
        model_ms, detect_seen = 0.0, det.ms
        return out

    try:
        for ff in iter_face_track(frames(), det, m.face_margin, max(m.frame_size), tracker=tracker,
                                  align=m.face_align):
            index = source_index.popleft()
            ran_detector = det.ran.popleft()
            if ff.box is None:
                if lost_start is None:  # the face just went (or there was none yet): the window restarts
                    cache.clear()
                    smoother.reset()
                    emitted, since, lost_start, lost_count = False, 0, index, 0
                if lost_count % step == 0:
                    yield result(start_frame=index, end_frame=index, start_s=index / fps, end_s=(index + 1) / fps,
                                 face=LOST, label=None, index=None, probabilities=None, raw_probabilities=None,
                                 logits=None, frame_probabilities=None, box=None, detected=False)
                lost_count += 1
                continue
            lost_start = None
            if ff.new_track and len(cache):
                cache.clear()
                smoother.reset()
                emitted, since = False, 0
            t0 = time.perf_counter()
            if split:
                cache.append(index, model.encode(prepare_frame(ff.crop, m)[None])[0])
            else:
                cache.append(index, ff.crop)
            model_ms += (time.perf_counter() - t0) * 1e3
            since += 1
            if not cache.full or (emitted and since < step):
                continue
            t0 = time.perf_counter()
            entries, first, last = cache.window()
            frame_probs = None
            if split:
                prediction = model.predict_features(cache.stacked()[None])[0]
                raw, logits = prediction.probabilities, prediction.logits
            elif m.task == "spotting":
                scores = model.spot_frames(np.stack(entries))
                frame_probs = scores.probabilities
                raw = frame_probs.mean(axis=0).astype(np.float32)
                with np.errstate(divide="ignore"):
                    logits = np.log(raw)
            else:
                prediction = model.predict(np.stack(entries))
                raw, logits = prediction.probabilities, prediction.logits
            model_ms += (time.perf_counter() - t0) * 1e3
            probs, top = smoother(raw)
            emitted, since = True, 0
            yield result(start_frame=first, end_frame=last, start_s=first / fps, end_s=(last + 1) / fps, face=TRACKED,
                         label=model.labels[top], index=top, probabilities=probs, raw_probabilities=raw,
                         logits=logits, frame_probabilities=frame_probs, box=ff.box,
                         detected=ff.detected and ran_detector)
    finally:
        src.close()


__all__ = ["stream", "StreamResult", "TRACKED", "LOST"]
