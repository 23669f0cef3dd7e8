"""Which frames of a video a clip model reads: the DFEW clip-sampling protocol, and cutting a video into windows.

The DFEW family protocol (DFEW, FERV39k, AFEW; the code of Former-DFER and its successors) takes a clip of
``segments * frames_per_segment`` frames (T = 8 x 2 = 16 by default) from a video of F frames:

- test / inference (:func:`dfew_test_indices`): if ``F > segments + frames_per_segment - 1`` (F > 9 by default),
  ``tick = (F - frames_per_segment + 1) / segments`` and ``offset_i = int(tick / 2 + i * tick)``; otherwise every
  offset is 0.
- training (:func:`dfew_train_indices`): ``avg = (F - frames_per_segment + 1) // segments``; if ``avg > 0``,
  ``offset_i = i * avg + randint(avg)``; elif ``F > segments``, sorted random offsets in
  ``[0, F - frames_per_segment + 1)``; else every offset is 0.

Each offset takes ``frames_per_segment`` consecutive frames ``offset_i, offset_i + 1, ...``, clamped to ``F - 1``,
so a short video repeats frames. With the defaults this is exactly the design note's rule (tick = (F - 1) / 8).

numpy only.
"""

from __future__ import annotations

import numpy as np


def _check_counts(num_frames: int, segments: int, frames_per_segment: int) -> None:
    for name, value in (("num_frames", num_frames), ("segments", segments), ("frames_per_segment", frames_per_segment)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _expand(offsets: np.ndarray, num_frames: int, frames_per_segment: int) -> np.ndarray:
    """Segment offsets (S,) -> frame indices (S * L,): offset + 0..L-1 per segment, clamped to F - 1."""
    frames = offsets.astype(np.int64)[:, None] + np.arange(frames_per_segment, dtype=np.int64)[None, :]
    return np.minimum(frames, num_frames - 1).reshape(-1)


def dfew_test_indices(num_frames: int, segments: int = 8, frames_per_segment: int = 2) -> np.ndarray:
    """Frame indices of the deterministic DFEW test/inference clip of a ``num_frames``-frame video.

    Args:
        num_frames: F, frames in the video (>= 1).
        segments: segments the video is split into (8 in DFEW).
        frames_per_segment: consecutive frames taken per segment (2 in DFEW).

    Returns:
        int64 array of shape (segments * frames_per_segment,) -- (16,) by default -- of 0-based frame indices in
        ``[0, F - 1]``, non-decreasing when F > segments + frames_per_segment - 1 (a shorter video repeats
        its first frames: F = 5 -> [0 1 0 1 ...]). Example: F = 10 -> [0 1 1 2 2 3 3 4 5 6 6 7 7 8 8 9].

    Raises:
        TypeError / ValueError: a non-int or non-positive argument.
    """
    _check_counts(num_frames, segments, frames_per_segment)
    if num_frames > segments + frames_per_segment - 1:
        tick = (num_frames - frames_per_segment + 1) / float(segments)
        offsets = np.array([int(tick / 2.0 + tick * i) for i in range(segments)], dtype=np.int64)
    else:
        offsets = np.zeros(segments, dtype=np.int64)
    return _expand(offsets, num_frames, frames_per_segment)


def dfew_train_indices(num_frames: int, rng: np.random.Generator | int | None = None, segments: int = 8,
                       frames_per_segment: int = 2) -> np.ndarray:
    """Frame indices of one random DFEW training clip of a ``num_frames``-frame video (segment-based sampling).

    Args:
        num_frames: F, frames in the video (>= 1).
        rng: a ``numpy.random.Generator`` (or a seed for one; None = fresh entropy).
        segments: segments the video is split into (8 in DFEW).
        frames_per_segment: consecutive frames taken per segment (2 in DFEW).

    Returns:
        int64 array of shape (segments * frames_per_segment,) of 0-based frame indices in ``[0, F - 1]``;
        when ``avg = (F - L + 1) // segments > 0`` segment i's first frame lies in ``[i * avg, (i + 1) * avg)``
        (so the indices are non-decreasing); shorter videos may repeat frames out of order.

    Raises:
        TypeError / ValueError: a non-int or non-positive count, or an ``rng`` that is not a Generator/seed.
    """
    _check_counts(num_frames, segments, frames_per_segment)
    if not isinstance(rng, np.random.Generator):
        if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (int, np.integer))):
            raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
        rng = np.random.default_rng(rng)
    span = num_frames - frames_per_segment + 1
    avg = span // segments
    if avg > 0:
        offsets = np.arange(segments, dtype=np.int64) * avg + rng.integers(0, avg, size=segments)
    elif num_frames > segments:
        offsets = np.sort(rng.integers(0, span, size=segments))
    else:
        offsets = np.zeros(segments, dtype=np.int64)
    return _expand(offsets, num_frames, frames_per_segment)


def window_bounds(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Cut ``num_frames`` frames into windows of ``window`` frames every ``stride`` frames, covering every frame.

    Windows start at 0, stride, 2 * stride, ... while they fit; when the last fitting window stops short of the
    end, one more window is aligned to the end, ``(num_frames - window, num_frames)``. A video of at most
    ``window`` frames gives one window over all of it, ``[(0, num_frames)]``.

    Args:
        num_frames: frames in the video (>= 1).
        window: frames per window (>= 1).
        stride: frames between window starts, 1..window (a larger stride would leave frames uncovered).

    Returns:
        list of ``(start, end_exclusive)`` pairs, starts strictly increasing; every window but a short video's
        single one spans exactly ``window`` frames.

    Raises:
        TypeError / ValueError: a non-int or non-positive argument, or ``stride > window``.
    """
    _check_counts(num_frames, 1, 1)
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if stride > window:
        raise ValueError(f"stride ({stride}) must not exceed window ({window}), or frames between windows are skipped")
    num_frames, window, stride = int(num_frames), int(window), int(stride)
    if num_frames <= window:
        return [(0, num_frames)]
    bounds = [(start, start + window) for start in range(0, num_frames - window + 1, stride)]
    if bounds[-1][1] < num_frames:
        bounds.append((num_frames - window, num_frames))
    return bounds
