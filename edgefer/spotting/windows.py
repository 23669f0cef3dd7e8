"""A long video cut into overlapping windows of K frames, and the windows' frame-wise scores merged back.

FESNet reads intervals of K consecutive frames (K = 64, stride K / 2; the design note's *(ours)* choice). Every
frame of the video lies in at least one window; where windows overlap, the frame-wise class probabilities are
averaged. A video shorter than K gives one window whose missing frames repeat the last frame (the caller feeds
:func:`window_frame_indices`), and the padded positions are ignored when merging. numpy only.
"""

from __future__ import annotations

import numpy as np


def window_starts(num_frames: int, window: int = 64, stride: int | None = None) -> list[int]:
    """First frame (0-based) of each window covering ``num_frames`` frames.

    Windows start at 0, stride, 2*stride, ...; when the last one stops short of the end, one more window is
    aligned to the end (start ``num_frames - window``). A video of at most ``window`` frames has one window, 0.

    Args:
        num_frames: frames in the video, >= 1.
        window: K, frames per window, >= 1.
        stride: frames between window starts, 1..window; ``window // 2`` (at least 1) when None.

    Raises:
        ValueError: a non-positive count, or a stride outside 1..window.
    """
    stride = _check(num_frames, window, stride)
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def window_frame_indices(num_frames: int, window: int = 64, stride: int | None = None) -> np.ndarray:
    """Frame indices to gather for each window: int64 array (W, window), clamped to ``num_frames - 1``.

    Row ``w`` is ``start_w, start_w + 1, ..., start_w + window - 1`` (see :func:`window_starts`); in a video
    shorter than ``window`` the indices past the end repeat the last frame. Raises ValueError as
    :func:`window_starts`.
    """
    starts = np.asarray(window_starts(num_frames, window, stride), dtype=np.int64)
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
        ValueError: shapes disagree, a start is negative, or a frame of the video lies in no window.
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    if scores.ndim != 3:
        raise ValueError(f"window_scores must be (W, K, C), got shape {scores.shape}")
    if starts.shape[0] != scores.shape[0]:
        raise ValueError(f"{starts.shape[0]} window starts for {scores.shape[0]} windows of scores")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if (starts < 0).any():
        raise ValueError(f"window starts must be >= 0, got {starts.tolist()}")
    W, K, C = scores.shape
    total = np.zeros((num_frames, C))
    count = np.zeros(num_frames)
    for w in range(W):
        n = max(0, min(K, num_frames - int(starts[w])))
        total[starts[w]:starts[w] + n] += scores[w, :n]
        count[starts[w]:starts[w] + n] += 1
    if (count == 0).any():
        missing = np.flatnonzero(count == 0)
        raise ValueError(f"{missing.size} frame(s) lie in no window, first {int(missing[0])}")
    return total / count[:, None]


def _check(num_frames: int, window: int, stride: int | None) -> int:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    stride = max(1, window // 2) if stride is None else stride
    if not 1 <= stride <= window:
        raise ValueError(f"stride must be in 1..{window} (the window), got {stride}")
    return stride
