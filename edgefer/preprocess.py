"""Clip validation and preprocessing for the runtime: OpenCV frames -> the model's input tensor (numpy only).

Everything here follows the model's :class:`edgefer.metadata.ModelMetadata`, never constants: the frame size,
the colour order, the scaling ``(pixel / 255 - mean) / std``, the clip length and the sampling protocol.
OpenCV is imported when a frame is first prepared, not with this module: ``import edgefer`` (and the kernels,
the export and the benchmarks under it) then works on a machine without OpenCV, such as a GPU build box.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ClipError
from .metadata import ModelMetadata

#: Sampling protocols a runtime knows (metadata field ``sampling``).
SAMPLINGS = ("dfew-test", "every-frame", "consecutive")


def as_clips(clip: np.ndarray | Sequence[np.ndarray]) -> tuple[list[list[np.ndarray]], bool]:
    """Validate a clip or a batch of clips of OpenCV BGR frames.

    Accepts a (T, H, W, 3) uint8 array, a list of T (H, W, 3) uint8 frames (sizes may differ: face crops), or a
    (B, T, H, W, 3) uint8 batch.

    Returns:
        (clips, batched): a list of B clips, each a list of T frames, and whether the input was a batch.

    Raises:
        ClipError: wrong type, rank, channel count, dtype, or an empty clip / frame.
    """
    if isinstance(clip, np.ndarray):
        if clip.ndim == 4:
            clips, batched = [list(clip)], False
        elif clip.ndim == 5:
            clips, batched = [list(c) for c in clip], True
        else:
            raise ClipError(f"a clip must be (T, H, W, 3) or a batch (B, T, H, W, 3) of uint8 BGR frames; "
                            f"got an array of shape {clip.shape}")
    elif isinstance(clip, (list, tuple)):
        clips, batched = [list(clip)], False
    else:
        raise ClipError(f"a clip must be a numpy array or a list of frames, got {type(clip).__name__}")
    if not clips or any(len(c) == 0 for c in clips):
        raise ClipError("the clip has no frames")
    for c in clips:
        for i, frame in enumerate(c):
            if not isinstance(frame, np.ndarray):
                raise ClipError(f"frame {i} is a {type(frame).__name__}, not a numpy array")
            if frame.dtype != np.uint8:
                raise ClipError(f"frames must be uint8 (0..255, as OpenCV reads them), got {frame.dtype} at frame {i}")
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise ClipError(f"frame {i} must be (H, W, 3) BGR, got shape {frame.shape}")
            if frame.shape[0] == 0 or frame.shape[1] == 0:
                raise ClipError(f"frame {i} is empty, shape {frame.shape}")
    return clips, batched


def sample_indices(num_frames: int, metadata: ModelMetadata) -> np.ndarray:
    """Indices of the frames of a ``num_frames`` clip that the model reads, per ``metadata.sampling``.

    ``dfew-test``: the DFEW test protocol (:func:`edgefer.sampling.dfew_test_indices`), clip_length frames.
    ``every-frame``: every frame (per-frame models average over them). ``consecutive``: exactly clip_length
    consecutive frames are required.

    Raises:
        ClipError: a ``consecutive`` clip of the wrong length.
        MetadataError: an unknown protocol (raised when the model loads, see
            :func:`edgefer.runtime.base.check_runtime_support`).
    """
    if metadata.sampling == "dfew-test":
        from .sampling import dfew_test_indices

        return dfew_test_indices(num_frames, segments=metadata.clip_length // 2, frames_per_segment=2)
    if metadata.sampling == "every-frame":
        return np.arange(num_frames)
    if num_frames != metadata.clip_length:
        raise ClipError(f"{metadata.model} reads exactly {metadata.clip_length} consecutive frames, got {num_frames}")
    return np.arange(num_frames)


def prepare_frame(frame: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """One BGR uint8 frame -> (C, H, W) float32: resized, colour-converted and scaled per the metadata."""
    import cv2

    h, w = metadata.frame_size
    shrink = frame.shape[0] > h or frame.shape[1] > w
    image = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if metadata.colour_order == "RGB":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif metadata.colour_order == "GRAY":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    x = image.astype(np.float32) * np.float32(1.0 / 255.0)
    mean = np.asarray(metadata.mean, dtype=np.float32)
    std = np.asarray(metadata.std, dtype=np.float32)
    if np.any(mean != 0) or np.any(std != 1):
        x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def prepare_clip(frames: Sequence[np.ndarray], metadata: ModelMetadata) -> np.ndarray:
    """A validated clip (list of BGR frames) -> (T', C, H, W) float32 for the frames the protocol samples."""
    indices = sample_indices(len(frames), metadata)
    return np.stack([prepare_frame(frames[i], metadata) for i in indices])
