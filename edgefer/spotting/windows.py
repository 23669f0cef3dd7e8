"""A long video's overlapping windows of K frames gathered for a spotting model, and their frame-wise scores
merged back.

FESNet reads intervals of K consecutive frames (K = 64, stride K / 2; the design note's *(ours)* choice). The
windows are :func:`edgefer.sampling.window_bounds`'s (the one window cutter): every frame of the video lies in at
least one window, and where windows overlap, the frame-wise class probabilities are averaged. A video shorter
than K gives one window whose missing frames repeat the last frame (:func:`window_frame_indices`), and the padded
positions are ignored when merging. numpy only.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..sampling import check_count, window_bounds


def window_frame_indices(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Frame indices to gather for each window: int64 array (W, window), clamped to ``num_frames - 1``.

    Row ``w`` is ``start_w, start_w + 1, ..., start_w + window - 1`` for the windows of
    :func:`edgefer.sampling.window_bounds` (so column 0 holds the starts); in a video shorter than ``window`` the
    indices past the end repeat the last frame.

    Raises:
        TypeError / ArgumentError: as :func:`edgefer.sampling.window_bounds` (counts < 1, a stride > window).
    """
    starts = np.array([start for start, _ in window_bounds(num_frames, window, stride)], dtype=np.int64)
    return np.minimum(starts[:, None] + np.arange(window, dtype=np.int64)[None, :], num_frames - 1)


def merge_window_scores(window_scores: np.ndarray, starts: list[int] | np.ndarray, num_frames: int) -> np.ndarray:
    """Average the frame-wise scores of overlapping windows into one score row per video frame.

    Args:
        window_scores: (W, K, C) float array, the probabilities (softmax of the logits, not the logits) of
            window ``w`` for its frames ``starts[w] .. starts[w] + K - 1``.
        starts: (W,) first frame of each window.
        num_frames: F, frames in the video; window positions at or past F (padding) are ignored.

    Returns:
        (F, C) float64 array: for each frame, the mean over the windows that contain it.

    Raises:
        ArgumentError (a ValueError): shapes disagree, a start is negative, or a frame of the video lies in no
            window.
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if scores.ndim != 3:
        raise ArgumentError(f"window_scores must be (W, K, C), got shape {scores.shape}")
    if starts.shape[0] != scores.shape[0]:
        raise ArgumentError(f"{starts.shape[0]} window starts for {scores.shape[0]} windows of scores")
    num_frames = check_count("num_frames", num_frames)
    if (starts < 0).any():
        raise ArgumentError(f"window starts must be >= 0, got {starts.tolist()}")
    W, K, C = scores.shape
    total = np.zeros((num_frames, C))
    count = np.zeros(num_frames)
    for w in range(W):
        n = max(0, min(K, num_frames - int(starts[w])))
        total[starts[w]:starts[w] + n] += scores[w, :n]
        count[starts[w]:starts[w] + n] += 1
    if (count == 0).any():
        missing = np.flatnonzero(count == 0)
        raise ArgumentError(f"{missing.size} frame(s) lie in no window, first {int(missing[0])}")
    return total / count[:, None]
