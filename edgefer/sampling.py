"""Which frames of a video a model reads: the DFEW clip-sampling protocol, and cutting a video into windows.

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

A long video is cut into windows by :func:`window_bounds`, the one window cutter of ``edgefer predict`` (clips of
a DFER model) and ``edgefer spot`` (FESNet's K-frame windows): a start every ``stride`` frames, the last window
aligned to the video's end. Its argument rules (:func:`check_count`, :func:`check_windows`,
:func:`check_fits_video`) raise :class:`~edgefer.errors.ArgumentError` (a ValueError) for a value out of range and
TypeError for a value that is not an int.

numpy only.
"""

from __future__ import annotations

import numpy as np

from .errors import ArgumentError


def check_count(name: str, value: object) -> int:
    """``value`` as an int >= 1: a count of frames, windows or segments named ``name`` in the message.

    Raises:
        TypeError: not an int (a bool is refused too).
        ArgumentError: < 1, e.g. "stride must be >= 1, got 0".
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ArgumentError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_windows(window: object, stride: object) -> tuple[int, int]:
    """``(window, stride)`` as ints after :func:`check_count`, with ``stride <= window``.

    Raises:
        TypeError / ArgumentError: as :func:`check_count`, or a stride larger than the window, e.g. "stride 20 is
            larger than the window (16 frames): the frames between windows would never be read".
    """
    window, stride = check_count("window", window), check_count("stride", stride)
    if stride > window:
        raise ArgumentError(f"stride {stride} is larger than the window ({window} frames): the frames between "
                            "windows would never be read")
    return window, stride


def check_fits_video(name: str, value: int, num_frames: int) -> None:
    """Refuse a window or stride that the caller chose explicitly and that is longer than the video.

    Raises:
        ArgumentError: ``value > num_frames``, e.g. "stride 1000 is larger than the video (472 frames)".
    """
    if value > num_frames:
        raise ArgumentError(f"{name} {value} is larger than the video ({num_frames} frames)")


def _check_counts(num_frames: int, segments: int, frames_per_segment: int) -> None:
    for name, value in (("num_frames", num_frames), ("segments", segments), ("frames_per_segment", frames_per_segment)):
        check_count(name, value)


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
        TypeError / ArgumentError (a ValueError): a non-int or non-positive argument.
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
        TypeError / ArgumentError (a ValueError): a non-int or non-positive count; TypeError: an ``rng`` that
            is not a Generator/seed.
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
    ``window`` frames gives one window over all of it, ``[(0, num_frames)]`` (whatever the stride): the caller
    decides whether a window longer than the video is acceptable (:func:`check_fits_video`).

    Args:
        num_frames: frames in the video (>= 1).
        window: frames per window (>= 1).
        stride: frames between window starts, 1..window (a larger stride would leave frames uncovered).

    Returns:
        list of ``(start, end_exclusive)`` pairs, starts strictly increasing; every window but a short video's
        single one spans exactly ``window`` frames.

    Raises:
        TypeError: a non-int argument.
        ArgumentError (a ValueError): a non-positive argument, or ``stride > window`` (see :func:`check_windows`).
    """
    num_frames = check_count("num_frames", num_frames)
    window, stride = check_windows(window, stride)
    if num_frames <= window:
        return [(0, num_frames)]
    bounds = [(start, start + window) for start in range(0, num_frames - window + 1, stride)]
    if bounds[-1][1] < num_frames:
        bounds.append((num_frames - window, num_frames))
    return bounds
