"""Temporal smoothing of a stream's per-window probabilities: an exponential moving average, or a window vote.

Both reset when the face is lost (a new track may be another person). Inputs and outputs are (C,) float32
probability vectors summing to 1.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..errors import ArgumentError

#: Smoothing modes of :func:`edgefer.stream`.
SMOOTHINGS = ("none", "ema", "vote")


class Smoother:
    """Smooths successive probability vectors.

    Args:
        mode: ``"none"``; ``"ema"``: p_s = alpha * p + (1 - alpha) * p_s_prev; ``"vote"``: the label is the most
            frequent top class of the last ``windows`` results (ties: the latest), the probabilities their mean.
        alpha: the EMA weight of the newest window, in (0, 1].
        windows: results a vote covers, >= 1.

    Raises:
        ArgumentError: an unknown mode or a parameter out of range.
    """

    def __init__(self, mode: str = "none", alpha: float = 0.5, windows: int = 5) -> None:
        if mode not in SMOOTHINGS:
            raise ArgumentError(f"smoothing must be one of {SMOOTHINGS}, got {mode!r}")
        if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
            raise ArgumentError(f"ema alpha must be in (0, 1], got {alpha!r}")
        if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
            raise ArgumentError(f"vote windows must be an int >= 1, got {windows!r}")
        self.mode, self.alpha, self.windows = mode, float(alpha), windows
        self.reset()

    def reset(self) -> None:
        """Forget the history (the face was lost)."""
        self._ema: np.ndarray | None = None
        self._history: deque[np.ndarray] = deque(maxlen=self.windows)

    def __call__(self, probs: np.ndarray) -> tuple[np.ndarray, int]:
        """(smoothed probabilities (C,) float32, label index) after one more window's ``probs``."""
        probs = np.asarray(probs, dtype=np.float32)
        if self.mode == "ema":
            self._ema = probs if self._ema is None else self.alpha * probs + (1 - self.alpha) * self._ema
            out = (self._ema / self._ema.sum()).astype(np.float32)
            return out, int(np.argmax(out))
        if self.mode == "vote":
            self._history.append(probs)
            tops = [int(np.argmax(p)) for p in self._history]
            counts = np.bincount(tops, minlength=len(probs))
            best = counts.max()
            label = next(t for t in reversed(tops) if counts[t] == best)
            return np.mean(self._history, axis=0).astype(np.float32), label
        return probs, int(np.argmax(probs))
