"""Video -> face track -> windows -> predictions: the job behind ``edgefer predict`` (torch-free).

A video is read with OpenCV, one face is tracked and cropped in every frame (margin and eye alignment from the
model's metadata; detector :data:`edgefer.detectors.DEFAULT_DETECTOR` unless one is given),
and the video is cut into windows of ``window`` frames every ``stride`` frames (the last window aligned to the
video's end; :func:`edgefer.sampling.window_bounds`). Each window's face crops form a clip that the model samples
with its own protocol (the DFEW test protocol for MSSTNet/STT). Frames without a face are never fed to the model:
a window whose face frames are fewer than ``min_face_fraction`` of it is reported with ``face_found=False`` and
no prediction. Windows go to the model :data:`edgefer.runtime.base.BATCH_SIZE` at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArgumentError, NoFaceError
from .metadata import ModelMetadata
from .preprocess import prepare_clip
from .runtime.base import BATCH_SIZE, LoadedModel, Prediction
from .sampling import check_fits_video, check_windows, window_bounds

#: Frames per window of a per-frame model (clip_length 1), whose metadata gives none.
DEFAULT_WINDOW = 16


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a video.

    Attributes:
        start_frame, end_frame: the window's first and last frame (0-based, inclusive).
        start_s, end_s: the window's span in seconds (``end_s`` is the end of its last frame).
        face_frames: how many of its frames had a face.
        face_found: whether enough frames had a face for the window to be classified.
        prediction: the model's result, or None where no face was found.
    """

    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    face_frames: int
    face_found: bool
    prediction: Prediction | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: frames, seconds, label, the probabilities per class, face_found."""
        p = self.prediction
        return {"start_frame": self.start_frame, "end_frame": self.end_frame, "start_s": round(self.start_s, 4),
                "end_s": round(self.end_s, 4), "face_found": self.face_found, "face_frames": self.face_frames,
                "label": p.label if p else None, "probability": p.probability if p else None,
                "probabilities": p.as_dict() if p else None}


@dataclass
class VideoPrediction:
    """The windows of one video, with what was read of it.

    Attributes:
        path: the video.
        fps: frames per second (as the container reports, or the reader's fallback).
        num_frames: frames decoded.
        face_found: (num_frames,) bool, whether each frame had a face.
        windows: the windows, in order.
        model: the model's name; ``trained``: whether its weights were trained.
        boxes: (num_frames,) the tracked face box of each frame (:class:`edgefer.video.faces.FaceBox`, full-frame
            pixels) or None where no face (for ``--annotate``).
    """

    path: str
    fps: float
    num_frames: int
    face_found: np.ndarray
    windows: list[WindowPrediction] = field(default_factory=list)
    model: str = ""
    trained: bool = False
    boxes: list = field(default_factory=list)

    @property
    def face_fraction(self) -> float:
        """Fraction of the video's frames in which a face was found."""
        return float(self.face_found.mean()) if self.num_frames else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary and every window."""
        return {"video": self.path, "fps": self.fps, "num_frames": self.num_frames,
                "face_fraction": round(self.face_fraction, 4), "model": self.model, "trained": self.trained,
                "windows": [w.as_dict() for w in self.windows]}


def _crop_size(metadata: ModelMetadata) -> int:
    return max(metadata.frame_size)


def _track(video: str | Path, metadata: ModelMetadata, detector=None, max_frames: int | None = None):
    from .video import read_face_track

    return read_face_track(video, detector=detector, margin=metadata.face_margin, crop_size=_crop_size(metadata),
                           align=metadata.face_align,
                           max_frames=max_frames)


def _reported_frame_count(video: str | Path) -> int:
    """The frame count the video's container states (0 when it states none): a cheap early check, not the truth."""
    from .video.reader import VideoReader

    with VideoReader(video) as reader:
        return reader.reported_frame_count


def predict_video(model: LoadedModel, video: str | Path, *, stride: int | None = None, window: int | None = None,
                  detector=None, min_face_fraction: float = 0.5) -> VideoPrediction:
    """Run ``model`` over ``video`` window by window.

    Window rules: a window the caller gives explicitly must fit the video. The default window (the model's clip
    length) may be longer than a short video, which is then one window over all its frames: the DFEW test
    protocol samples the model's ``clip_length`` frames from any T >= 1 frames (repeating frames), so a
    10-frame video still gets one prediction. A stride given explicitly must not exceed the video either.

    Args:
        model: a loaded clip-level (DFER) model, :func:`edgefer.load`.
        video: a video file path.
        stride: frames between window starts, 1..window; None = the window length (no overlap).
        window: frames per window, >= 1; None = the model's clip length (16 for MSSTNet / STT), or 16 for a
            per-frame model.
        detector: a face detector (:class:`edgefer.video.FaceDetector`) or its name (``"haar"``,
            ``"blazeface-short"``, ``"blazeface-full"``); None = :data:`edgefer.detectors.DEFAULT_DETECTOR`. The crops
            are cut with the model's ``face_margin`` and ``face_align``.
        min_face_fraction: the fraction of a window's frames, in [0, 1], that must have a face for it to be
            classified.

    Returns:
        A :class:`VideoPrediction` whose windows cover every frame.

    Raises:
        ArgumentError (a ValueError): ``model`` is a spotting model (use ``edgefer spot``); a window or stride
            < 1 (0 is refused, never taken as the default); a stride larger than the window; an explicit window
            or stride larger than the video ("stride 1000 is larger than the video (472 frames)"); a
            ``min_face_fraction`` outside [0, 1].
        TypeError: a window or stride that is not an int.
        VideoError: the video is missing, unreadable or not a video.
        NoFaceError: no frame of the video has a face.
    """
    model.check_task("dfer")
    m = model.metadata
    size = (m.clip_length if m.clip_length > 1 else DEFAULT_WINDOW) if window is None else window
    size, step = check_windows(size, size if stride is None else stride)
    if not (isinstance(min_face_fraction, (int, float)) and 0.0 <= min_face_fraction <= 1.0):
        raise ArgumentError(f"min_face_fraction must be a fraction in [0, 1], got {min_face_fraction!r}")
    if window is not None and (claimed := _reported_frame_count(video)):
        check_fits_video("window", size, claimed)  # before any frame is decoded; the real count is checked after
    track = _track(video, m, detector)
    fps = float(track.fps)
    found = np.asarray(track.face_found, dtype=bool)
    for name, given, value in (("window", window, size), ("stride", stride, step)):
        if given is not None:
            check_fits_video(name, value, len(found))
    result = VideoPrediction(str(video), fps, len(found), found, model=m.model, trained=m.trained,
                             boxes=list(track.boxes))
    pending: list[tuple[int, int, int, list[np.ndarray]]] = []
    for start, stop in window_bounds(len(found), size, step):
        faces = [track.crops[i] for i in range(start, stop) if found[i]]
        pending.append((start, stop, len(faces), faces))
    predictions = _predict_windows(model, [(stop - start, faces) for start, stop, _, faces in pending],
                                   min_face_fraction)
    for (start, stop, n_faces, _), prediction in zip(pending, predictions):
        result.windows.append(WindowPrediction(start, stop - 1, start / fps, stop / fps, n_faces,
                                               prediction is not None, prediction))
    return result


def _predict_windows(model: LoadedModel, windows: list[tuple[int, list[np.ndarray]]],
                     min_face_fraction: float) -> list[Prediction | None]:
    """Classify the (length, face crops) windows that have enough face frames, batching equal-length clips."""
    out: list[Prediction | None] = [None] * len(windows)
    clips = [faces for _, faces in windows]
    todo = [i for i, (length, faces) in enumerate(windows) if faces and len(faces) >= min_face_fraction * length]
    by_length: dict[int, list[int]] = {}
    for i in todo:
        by_length.setdefault(len(clips[i]), []).append(i)
    for indices in by_length.values():
        for k in range(0, len(indices), BATCH_SIZE):
            chunk = indices[k:k + BATCH_SIZE]
            results = model.predict(np.stack([np.stack(clips[i]) for i in chunk]))
            for i, r in zip(chunk, results):
                out[i] = r
    return out


def reference_clips(video: str | Path, metadata: ModelMetadata, count: int = 2) -> np.ndarray:
    """Up to ``count`` real clips from ``video``, preprocessed exactly as the runtime would, for parity checks.

    Returns:
        (count', T, C, H, W) float32 from the first windows whose every frame has a face.

    Raises:
        VideoError / NoFaceError: unreadable video, or no window with a face in every frame.
    """
    window = metadata.clip_length if metadata.clip_length > 1 else DEFAULT_WINDOW
    track = _track(video, metadata, max_frames=window * count * 4)
    clips = []
    for start, stop in window_bounds(track.num_frames, window, window):
        if stop - start == window and track.face_found[start:stop].all():
            clips.append(prepare_clip(track.crops[start:stop], metadata))
        if len(clips) == count:
            break
    if not clips:
        raise NoFaceError(f"{video}: no {window}-frame window with a face in every frame at its start")
    return np.stack(clips)
