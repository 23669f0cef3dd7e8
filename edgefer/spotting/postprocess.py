"""Frame-wise (neutral, macro, micro) probabilities -> scored expression intervals.

The FESNet post-processing of the design note (``shared/design/models.md``): frame labels (argmax) -> runs of
consecutive frames per class -> runs of one class separated by at most ``gap`` frames merged -> runs whose length
lies outside the class's range dropped -> :class:`~edgefer.spotting.intervals.Interval` with a score, the mean
probability of the class over the (merged) run.

Length ranges are given in frames at a reference frame rate (CAS(ME)^2 at 30 fps: micro 7..16, macro >= 17, the
MEGC2020 baseline's filters) and scaled to the video's fps as durations: a range ``lo..hi`` at ``ref`` fps is the
duration ``[lo / ref, (hi + 1) / ref)``, so at ``fps`` it keeps ``ceil(lo * fps / ref) ..
ceil((hi + 1) * fps / ref) - 1`` frames. Ranges that touch at the reference rate (micro ..16, macro 17..) keep
touching at any rate; at 30 fps they are the reference numbers unchanged. numpy only.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..labels import SPOTTING_CLASSES
from .intervals import EXPRESSION_CLASSES, Interval

#: Frame rate the reference length ranges are counted at (CAS(ME)^2).
REFERENCE_FPS = 30.0
#: Length ranges in frames at :data:`REFERENCE_FPS` (inclusive; None = unbounded): the MEGC2020 baseline's
#: CAS(ME)^2 filters.
REFERENCE_LENGTH_RANGES: dict[str, tuple[int, int | None]] = {"micro": (7, 16), "macro": (17, None)}


def frame_labels(scores: np.ndarray) -> np.ndarray:
    """Class index of each frame, the argmax of its scores (ties go to the lower index, i.e. neutral first).

    Args:
        scores: (F, C) float array, frame-wise class scores.

    Returns:
        (F,) int64 array.

    Raises:
        ValueError: ``scores`` is not 2-D or holds NaN/inf.
    """
    scores = _check_scores(scores, None)
    return scores.argmax(axis=1).astype(np.int64) if scores.shape[0] else np.zeros(0, dtype=np.int64)


def label_runs(labels: np.ndarray, value: int) -> list[tuple[int, int]]:
    """Maximal runs of consecutive frames whose label is ``value``, as inclusive ``(start, end)`` pairs in order."""
    labels = np.asarray(labels).reshape(-1)
    mask = np.concatenate([[False], labels == value, [False]]).astype(np.int8)
    edges = np.diff(mask)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def merge_gaps(runs: Sequence[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Merge runs (sorted, disjoint, inclusive) separated by at most ``gap`` frames.

    ``(0, 4)`` and ``(7, 9)`` are 2 frames apart (5 and 6): merged into ``(0, 9)`` when ``gap >= 2``.
    ``gap = 0`` merges nothing (runs of one label never touch). Raises ValueError for a negative gap.
    """
    if gap < 0:
        raise ValueError(f"gap must be >= 0 frames, got {gap}")
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] - 1 <= gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def scale_length_ranges(ranges: Mapping[str, tuple[int, int | None]], fps: float,
                        reference_fps: float = REFERENCE_FPS) -> dict[str, tuple[int, int | None]]:
    """Scale per-class length ranges from frames at ``reference_fps`` to frames at ``fps`` (see the module doc).

    Example: ``{"micro": (7, 16), "macro": (17, None)}`` at 200 fps -> micro 47..113, macro >= 114.

    Raises:
        ValueError: a non-positive frame rate, or a range with ``lo < 1`` or ``hi < lo``.
    """
    if not (fps > 0 and math.isfinite(fps)) or not (reference_fps > 0 and math.isfinite(reference_fps)):
        raise ValueError(f"frame rates must be finite and > 0, got fps={fps}, reference_fps={reference_fps}")
    ratio = fps / reference_fps
    scaled: dict[str, tuple[int, int | None]] = {}
    for label, (low, high) in ranges.items():
        if low < 1 or (high is not None and high < low):
            raise ValueError(f"length range of {label!r} must be 1 <= lo <= hi, got ({low}, {high})")
        new_low = max(1, _ceil(low * ratio))
        new_high = None if high is None else max(new_low, _ceil((high + 1) * ratio) - 1)
        scaled[label] = (new_low, new_high)
    return scaled


def scores_to_intervals(scores: np.ndarray, fps: float, *, gap: int = 2,
                        length_ranges: Mapping[str, tuple[int, int | None]] | None = None,
                        reference_fps: float = REFERENCE_FPS,
                        classes: Sequence[str] = SPOTTING_CLASSES) -> list[Interval]:
    """Turn frame-wise class probabilities of a whole video into scored expression intervals.

    Args:
        scores: (F, 3) float array, per-frame probabilities over ``classes`` (default
            ``("neutral", "macro", "micro")``), e.g. from :func:`~edgefer.spotting.windows.merge_window_scores`.
        fps: the video's frame rate (frames per second), used to scale ``length_ranges``.
        gap: runs of one class at most this many frames (of the video) apart are merged; 0 merges none.
        length_ranges: ``{"macro": (lo, hi), "micro": (lo, hi)}`` in frames at ``reference_fps`` (hi None =
            unbounded); default :data:`REFERENCE_LENGTH_RANGES` (CAS(ME)^2 at 30 fps). A class left out is not
            length-filtered.
        reference_fps: the frame rate ``length_ranges`` is counted at.
        classes: the label of each score column; must hold ``"macro"`` and ``"micro"``, others are background.

    Returns:
        Intervals (0-based frame indices into ``scores``, both ends inclusive), sorted by start frame then label;
        ``score`` is the mean probability of the interval's class over its frames (gap frames included).

    Raises:
        ValueError: ``scores`` is not (F, len(classes)) or not finite, ``classes`` lacks macro or micro, or bad
            fps/gap/ranges.
    """
    scores = _check_scores(scores, len(classes))
    missing = [c for c in EXPRESSION_CLASSES if c not in classes]
    if missing:
        raise ValueError(f"classes {tuple(classes)} lack {missing}")
    ranges = scale_length_ranges(REFERENCE_LENGTH_RANGES if length_ranges is None else length_ranges, fps,
                                 reference_fps)
    labels = frame_labels(scores)
    intervals = []
    for label in EXPRESSION_CLASSES:
        column = list(classes).index(label)
        low, high = ranges.get(label, (1, None))
        for start, end in merge_gaps(label_runs(labels, column), gap):
            length = end - start + 1
            if length < low or (high is not None and length > high):
                continue
            intervals.append(Interval(start, end, label, float(scores[start:end + 1, column].mean())))
    return sorted(intervals, key=lambda i: (i.start_frame, i.label))


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def _check_scores(scores: np.ndarray, num_classes: int | None) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or (num_classes is not None and scores.shape[1] != num_classes):
        want = "(F, C)" if num_classes is None else f"(F, {num_classes})"
        raise ValueError(f"frame scores must be {want}, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("frame scores hold NaN or inf")
    return scores
