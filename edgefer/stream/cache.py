"""The per-frame feature cache of a stream: the last T frames' encoder outputs (or face crops), in order.

With a split model (:class:`edgefer.runtime.split_backend.SplitModel`) each new face frame is encoded once and its
features (*F float32) kept here; a window is the stack of the last T entries, handed to the model's head.
Without a split the entries are the face crops, and every window reruns the whole model on them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class FeatureCache:
    """The last ``length`` entries with their source frame indices.

    Args:
        length: entries a window holds (the model's clip length T), >= 1.
    """

    def __init__(self, length: int) -> None:
        self.length = int(length)
        self._items: deque[Any] = deque(maxlen=self.length)
        self._frames: deque[int] = deque(maxlen=self.length)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """Whether a whole window is cached."""
        return len(self._items) == self.length

    def clear(self) -> None:
        """Drop every entry (the face was lost or changed: the window restarts)."""
        self._items.clear()
        self._frames.clear()

    def append(self, frame_index: int, item: Any) -> None:
        """Cache one frame's entry; the oldest is evicted when full."""
        self._items.append(item)
        self._frames.append(int(frame_index))

    def window(self) -> tuple[list[Any], int, int]:
        """(entries oldest first, first frame index, last frame index)."""
        return list(self._items), self._frames[0], self._frames[-1]

    def stacked(self) -> np.ndarray:
        """The entries as one array (T, ...) (features, or equal-size crops)."""
        return np.stack(list(self._items))
