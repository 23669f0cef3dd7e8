"""The spotting window dataset: the K-frame windows of long videos that FESNet trains on, with frame labels.

Windows are :func:`edgefer.spotting.window_frame_indices`' (the one window cutter,
:func:`edgefer.sampling.window_bounds`); labels are :func:`edgefer.data.spotting.frame_labels` (0 neutral, 1 macro,
2 micro), :data:`~edgefer.data.spotting.IGNORE_INDEX` past a short video's end; frames are prepared by the
runtime's :func:`edgefer.preprocess.prepare_frame`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..labels import SPOTTING_CLASSES
from ..preprocess import prepare_frame
from ..sampling import check_count, check_windows
from ..spotting import window_frame_indices
from .clips import clip_metadata
from .images import read_image
from .records import DatasetError, list_frames
from .spotting import IGNORE_INDEX, SpottingVideo, frame_labels


class SpottingWindowDataset(Dataset):
    """A torch ``Dataset`` of the K-frame windows of spotting videos, with per-frame labels.

    Args:
        videos: the videos (:func:`read_spotting_dataset`).
        window: K, frames per window (64).
        stride: frames between window starts, 1..K (K / 2 = 32).
        frame_size: S, the side of the prepared frames; ignored with ``metadata``.
        metadata: prepare frames per this artefact's metadata instead of the default (RGB, ``pixel / 255``).

    ``dataset[i]`` is ``(frames, frame_labels)``: frames a float32 tensor (K, 3, S, S), prepared by
    :func:`edgefer.preprocess.prepare_frame` (the runtime's rule); frame_labels int64 (K,) with 0 neutral, 1 macro,
    2 micro, and :data:`IGNORE_INDEX` at positions past a short video's end. ``windows`` lists ``(video index,
    first frame)`` per item.

    Raises:
        TypeError / ArgumentError: bad window or stride (:func:`edgefer.sampling.check_windows`). Loading an item
        raises DatasetError naming the video and image for an image that does not decode.
    """

    def __init__(self, videos: Sequence[SpottingVideo], *, window: int = 64, stride: int = 32,
                 frame_size: int = 112, metadata=None) -> None:
        self.videos = list(videos)
        self.window, self.stride = check_windows(window, stride)
        self.metadata = metadata if metadata is not None else clip_metadata(check_count("frame_size", frame_size),
                                                                             self.window, SPOTTING_CLASSES)
        self.windows: list[tuple[int, int]] = []
        self._indices: list[np.ndarray] = []
        for v, video in enumerate(self.videos):
            for row in window_frame_indices(video.num_frames, self.window, self.stride):
                self.windows.append((v, int(row[0])))
                self._indices.append(row)
        self._labels = [frame_labels(video) for video in self.videos]

    def __len__(self) -> int:
        return len(self.windows)

    def window_labels(self, index: int) -> np.ndarray:
        """(K,) int64 frame labels of window ``index`` (no image is read)."""
        v, start = self.windows[index]
        labels = self._labels[v][self._indices[index]]
        positions = start + np.arange(self.window)
        return np.where(positions < self.videos[v].num_frames, labels, IGNORE_INDEX).astype(np.int64)

    def __getitem__(self, index: int):
        if not -len(self.windows) <= index < len(self.windows):
            raise IndexError(f"window {index} out of range (the dataset has {len(self.windows)})")
        index = index % len(self.windows)
        v, _ = self.windows[index]
        video = self.videos[v]
        frames = list_frames(video.frame_dir)
        if len(frames) != video.num_frames:
            raise DatasetError(f"{video.source}: frame folder {video.frame_dir} now holds {len(frames)} images, it "
                               f"held {video.num_frames} when the dataset was read")
        cache: dict[int, np.ndarray] = {}
        out = []
        for i in self._indices[index]:
            if int(i) not in cache:
                cache[int(i)] = prepare_frame(read_image(frames[i], f"{video.source} ({video.name})"), self.metadata)
            out.append(cache[int(i)])
        return torch.from_numpy(np.stack(out)), torch.from_numpy(self.window_labels(index))
