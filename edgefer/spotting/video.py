"""Long video -> face track -> overlapping windows -> frame-wise scores -> expression intervals (torch-free).

The job behind ``edgefer spot``, following the FESNet reading of the design note (``shared/design/models.md``)
and the MEGC spotting protocol:

1. one face is tracked and cropped in every frame (:func:`edgefer.video.read_face_track`; margin and eye
   alignment from the model's metadata, crops of the metadata's frame size);
2. the video is cut into windows of K = ``metadata.clip_length`` consecutive frames, stride K / 2 by default,
   the last window aligned to the video's end (:func:`edgefer.sampling.window_bounds`, gathered by
   :func:`edgefer.spotting.window_frame_indices`); a video shorter than K gives one window whose missing frames
   repeat the last one;
3. the model scores the frames of batches of windows (:meth:`edgefer.runtime.base.LoadedModel.spot_frames`:
   frame-wise probabilities (K, 3) over (neutral, macro, micro) a window), averaged where windows overlap
   (:func:`edgefer.spotting.merge_window_scores`);
4. frame-wise probabilities -> runs per class -> gap merging -> length ranges per class scaled by the video's
   fps (:func:`edgefer.spotting.scores_to_intervals`).

Frames without a face: the model reads consecutive frames, so a window cannot skip them. A face-less frame is fed
the crop of the nearest frame with a face (the earlier one on a tie: a held face, see
:meth:`edgefer.video.FaceTrack.clip`), which keeps the window's discrepancies small there rather than comparing
against a black frame. Its output is then discarded: the frame's probabilities are masked to neutral (1, 0, 0),
it is reported in ``face_found``, and intervals are found separately in each run of consecutive face frames
(:func:`face_intervals`), so no interval contains (or is gap-merged across) a frame without a face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ArgumentError, MetadataError
from ..labels import SPOTTING_CLASSES
from ..runtime.base import BATCH_SIZE, LoadedModel
from ..sampling import check_fits_video, check_windows
from .intervals import Interval
from .postprocess import REFERENCE_LENGTH_RANGES, label_runs, scores_to_intervals
from .windows import merge_window_scores, window_frame_indices


@dataclass
class SpottingVideoResult:
    """Expression intervals spotted in one video, with the frame-wise scores they came from.

    Attributes:
        path: the video.
        fps: frames per second (the container's, or the reader's fallback), used for seconds and length ranges.
        num_frames: F, frames decoded.
        face_found: (F,) bool, whether each frame had a face (detected, or bridged by the tracker).
        probabilities: (F, 3) float64 frame-wise probabilities over ``classes`` (rows sum to 1), averaged over
            the overlapping windows; rows of face-less frames are masked to neutral (1, 0, 0).
        intervals: the spotted :class:`~edgefer.spotting.Interval` s (0-based inclusive frames), sorted by start.
        classes: the column names of ``probabilities``, ``("neutral", "macro", "micro")``.
        window: K, frames per window; ``stride``: frames between window starts; ``num_windows``: windows run.
        model: the model's name; ``trained``: whether its weights were trained.
    """

    path: str
    fps: float
    num_frames: int
    face_found: np.ndarray
    probabilities: np.ndarray
    intervals: list[Interval] = field(default_factory=list)
    classes: tuple[str, ...] = SPOTTING_CLASSES
    window: int = 0
    stride: int = 0
    num_windows: int = 0
    model: str = ""
    trained: bool = False

    @property
    def face_fraction(self) -> float:
        """Fraction of the video's frames in which a face was found, in [0, 1]."""
        return float(self.face_found.mean()) if self.num_frames else 0.0

    def as_dict(self, frames: bool = True) -> dict[str, Any]:
        """JSON-ready summary and intervals (frames inclusive, seconds = start of first / end of last frame).

        With ``frames``, also the frame-wise ``face_found`` and ``probabilities`` (rounded to 5 decimals).
        """
        out: dict[str, Any] = {
            "video": self.path, "fps": self.fps, "num_frames": self.num_frames,
            "face_fraction": round(self.face_fraction, 4), "model": self.model, "trained": self.trained,
            "window": self.window, "stride": self.stride, "num_windows": self.num_windows,
            "classes": list(self.classes),
            "intervals": [_interval_dict(i, self.fps) for i in self.intervals],
        }
        if frames:
            out["face_found"] = [bool(v) for v in self.face_found]
            out["probabilities"] = np.round(self.probabilities, 5).tolist()
        return out


def _interval_dict(interval: Interval, fps: float) -> dict[str, Any]:
    start_s, end_s = interval.seconds(fps)
    return {"start_frame": interval.start_frame, "end_frame": interval.end_frame, "start_s": round(start_s, 4),
            "end_s": round(end_s, 4), "label": interval.label, "score": round(interval.score, 4)}


def check_spotting_model(model: LoadedModel) -> tuple[int, int]:
    """Check that ``model`` is a frame-wise spotting model over (neutral, macro, micro).

    Returns:
        (K, neutral column): the model's window length and the index of ``"neutral"`` in its labels.

    Raises:
        ArgumentError: the model is not a spotting model (the message points to ``edgefer predict``).
        MetadataError: its labels are not neutral, macro and micro.
    """
    m = model.metadata
    model.check_task("spotting")
    missing = [c for c in SPOTTING_CLASSES if c not in m.labels]
    if missing or len(m.labels) != len(SPOTTING_CLASSES):
        raise MetadataError(f"{model.path}: a spotting model's labels must be {SPOTTING_CLASSES}, got {m.labels}")
    return m.clip_length, list(m.labels).index("neutral")


def spot_video(model: LoadedModel, video: str | Path, *, stride: int | None = None, detector=None, gap: int = 2,
               length_ranges: Mapping[str, tuple[int, int | None]] | None = None) -> SpottingVideoResult:
    """Spot macro- and micro-expression intervals in a long video with a frame-wise spotting model (FESNet).

    Args:
        model: a loaded spotting model (:func:`edgefer.load` of a FESNet export); its ``spot_frames`` scores the
            frames of a batch of windows (B, K, H, W, 3) uint8 BGR.
        video: a video file path.
        stride: frames between window starts, 1..K; K // 2 when None (the design note's choice). An explicit
            stride longer than the video is refused; a video shorter than K is one (padded) window.
        detector: a face detector (:class:`edgefer.video.FaceDetector`) or its name (``"haar"``,
            ``"blazeface-short"``, ``"blazeface-full"``); None = :data:`edgefer.detectors.DEFAULT_DETECTOR`. Crops are
            cut with the model's ``face_margin`` and ``face_align``.
        gap: runs of one class at most this many frames apart are merged (frames of this video).
        length_ranges: per-class ``(lo, hi)`` interval lengths in frames at 30 fps (hi None = unbounded),
            scaled to the video's fps; the MEGC2020 baseline's CAS(ME)^2 ranges (micro 7..16, macro >= 17)
            when None.

    Returns:
        A :class:`SpottingVideoResult`; intervals never contain a frame without a face (see the module doc).

    Raises:
        ArgumentError (a ValueError): ``model`` is not a spotting model; a stride < 1, larger than K or than the
            video ("stride 50 is larger than the video (40 frames)"); a negative gap.
        TypeError: a stride or gap that is not an int.
        MetadataError: the model's labels are not (neutral, macro, micro), or its output contradicts them.
        VideoError: the video is missing, unreadable or not a video.
        NoFaceError: no frame of the video has a face.
        ValueError: bad length ranges.
    """
    from ..video import read_face_track

    window, _ = check_spotting_model(model)
    m = model.metadata
    window, stride_n = check_windows(window, max(1, window // 2) if stride is None else stride)
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)):
        raise TypeError(f"gap must be an int (frames), got {type(gap).__name__}")
    if gap < 0:
        raise ArgumentError(f"gap must be >= 0 frames, got {gap}")
    track = read_face_track(video, detector=detector, margin=m.face_margin, crop_size=max(m.frame_size),
                            align=m.face_align)
    num_frames = track.num_frames
    if stride is not None:
        check_fits_video("stride", stride_n, num_frames)
    found = np.asarray(track.face_found, dtype=bool)
    indices = window_frame_indices(num_frames, window, stride_n)  # (W, K); column 0: the window starts
    batches = [indices[k:k + BATCH_SIZE] for k in range(0, len(indices), BATCH_SIZE)]
    window_probs = np.concatenate([_window_probabilities(model, track, rows) for rows in batches])
    starts = indices[:, 0]
    probs = merge_window_scores(window_probs, starts, num_frames)
    classes = tuple(m.labels)
    probs, intervals = face_intervals(probs, found, track.fps, gap=gap, length_ranges=length_ranges, classes=classes)
    return SpottingVideoResult(str(video), float(track.fps), num_frames, found, probs, intervals, classes, window,
                               stride_n, len(starts), m.model, m.trained)


def face_intervals(probabilities: np.ndarray, face_found: np.ndarray, fps: float, *, gap: int = 2,
                   length_ranges: Mapping[str, tuple[int, int | None]] | None = None,
                   classes: Sequence[str] = SPOTTING_CLASSES) -> tuple[np.ndarray, list[Interval]]:
    """Mask face-less frames to neutral and find intervals in each run of consecutive face frames on its own.

    Args:
        probabilities: (F, C) frame-wise class probabilities of a whole video.
        face_found: (F,) bool, whether each frame had a face.
        fps, gap, length_ranges, classes: as for :func:`edgefer.spotting.scores_to_intervals` (length ranges
            at 30 fps; the MEGC2020 baseline's CAS(ME)^2 ranges when None).

    Returns:
        (masked, intervals): a float64 copy of ``probabilities`` whose face-less rows are one-hot neutral, and
        the intervals (0-based inclusive frames of the video, sorted by start then label), none of which
        contains, or is gap-merged across, a face-less frame.

    Raises:
        ValueError: shapes disagree, ``classes`` lacks neutral, macro or micro, or bad fps / gap / ranges.
    """
    probs = np.array(probabilities, dtype=np.float64)
    found = np.asarray(face_found)
    if found.dtype != bool or found.shape != probs.shape[:1] or probs.ndim != 2:
        raise ValueError(f"face_found must be a bool array (F,) for probabilities (F, C); got {found.dtype} "
                         f"{found.shape} for {probs.shape}")
    if "neutral" not in classes:
        raise ValueError(f"classes {tuple(classes)} lack 'neutral'")
    probs[~found] = np.eye(len(classes))[list(classes).index("neutral")]
    ranges = REFERENCE_LENGTH_RANGES if length_ranges is None else length_ranges
    intervals = []
    for first, last in label_runs(found.astype(np.int8), 1):
        for i in scores_to_intervals(probs[first:last + 1], fps, gap=gap, length_ranges=ranges, classes=classes):
            intervals.append(Interval(i.start_frame + first, i.end_frame + first, i.label, i.score))
    intervals.sort(key=lambda i: (i.start_frame, i.label))
    return probs, intervals


def _window_probabilities(model: LoadedModel, track, rows: np.ndarray) -> np.ndarray:
    """(B, K) frame indices of windows -> (B, K, C) float32 frame-wise probabilities of their face crops."""
    clips = track.clip(rows).reshape(*rows.shape, track.crop_size, track.crop_size, 3)
    return np.stack([scores.probabilities for scores in model.spot_frames(clips)])
