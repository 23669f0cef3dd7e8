"""The DFER clip dataset: frame folders -> (T, 3, S, S) float32 clips, sampled and prepared as the runtime does.

Sampling follows the DFEW family protocol of ``shared/design/models.md`` through its one definition,
:mod:`edgefer.sampling`: test mode takes :func:`~edgefer.sampling.dfew_test_indices` (deterministic, the frames the
runtime reads for a clip of the same length), train mode :func:`~edgefer.sampling.dfew_train_indices` (a random
frame per segment). Each sampled frame is prepared by the runtime's :func:`edgefer.preprocess.prepare_frame`
(resize to S x S with the same interpolation rule, BGR -> RGB, ``pixel / 255``, the metadata's mean/std), so a
test-mode clip equals what :func:`edgefer.preprocess.prepare_clip` makes of the same frames.

Training augmentation, per clip (the design note; Former-DFER's group transforms): ONE random-resized crop box
(:func:`random_resized_crop_box`, area 0.08..1 of the frame, aspect ratio 3/4..4/3, torchvision's
``RandomResizedCrop`` sampling rule) cut from every frame of the clip before it is resized, and ONE horizontal
flip decision (probability 1/2) for all its frames.

Randomness: item ``i`` in epoch ``e`` draws from ``numpy.random.default_rng(SeedSequence([seed, e, i]))`` --
first the frame offsets, then the crop, then the flip -- so a run is repeatable on one CPU, a DataLoader's
worker processes need no seeding, and DDP ranks (which read different indices) differ only by index. Call
:meth:`DferClipDataset.set_epoch` each epoch (as with ``DistributedSampler``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ArgumentError
from ..labels import DFER_LABELS
from ..metadata import ModelMetadata
from ..preprocess import prepare_frame
from ..sampling import check_count, dfew_test_indices, dfew_train_indices
from .images import read_image
from .records import ClipRecord, DatasetError, list_frames

#: torchvision ``RandomResizedCrop``'s defaults, which the design note names: area fraction and aspect ratio.
CROP_SCALE: tuple[float, float] = (0.08, 1.0)
CROP_RATIO: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)


def random_resized_crop_box(height: int, width: int, rng: np.random.Generator,
                            scale: tuple[float, float] = CROP_SCALE,
                            ratio: tuple[float, float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """A random crop box ``(top, left, h, w)`` in pixels of a ``height`` x ``width`` image.

    The sampling rule of torchvision's ``RandomResizedCrop.get_params``: up to 10 tries of an area
    ``U(scale) * H * W`` and an aspect ratio ``w / h`` log-uniform in ``ratio``, giving ``w = round(sqrt(area *
    ratio))``, ``h = round(sqrt(area / ratio))``; the first box that fits is placed uniformly at random. If none
    fits, the centred box of the whole image clamped to the ratio range is used.

    Returns:
        ints with ``0 <= top``, ``top + h <= height``, ``0 <= left``, ``left + w <= width``, ``h, w >= 1``.

    Raises:
        ArgumentError / TypeError: a non-positive size; ValueError: a scale or ratio range that is not increasing
            and positive.
    """
    height, width = check_count("height", height), check_count("width", width)
    if not (0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1]):
        raise ValueError(f"crop scale {scale} must be within (0, 1] and ratio {ratio} positive, both (low, high)")
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, max(1, h), max(1, w)


def clip_metadata(frame_size: int, clip_length: int, labels: Sequence[str] = DFER_LABELS) -> ModelMetadata:
    """The preprocessing a dataset prepares frames with when no model metadata is given: the DFER models'
    defaults (RGB, ``pixel / 255``, no mean/std), ``frame_size`` x ``frame_size``."""
    return ModelMetadata(model="dataset", task="dfer", labels=tuple(labels), clip_length=clip_length,
                         frame_size=(frame_size, frame_size))


class DferClipDataset(Dataset):
    """A torch ``Dataset`` of DFER clips read from frame folders.

    Args:
        records: the clips (:func:`~edgefer.data.read_annotation_list`, :func:`~edgefer.data.read_dfew_split`,
            :func:`~edgefer.data.scan_class_folders`).
        train: sample with the training protocol and augment (True), or take the deterministic test clip (False).
        frame_size: S, the side of the prepared frames in pixels (112 in the papers); ignored with ``metadata``.
        segments, frames_per_segment: the clip is ``segments * frames_per_segment`` frames (8 x 2 = 16).
        seed: the seed of all randomness (see the module docstring).
        metadata: prepare frames per this artefact's metadata (frame size, colour order, mean/std) instead of the
            defaults (:func:`clip_metadata`).
        augment: in train mode, apply the random-resized crop and the flip (True, the papers' recipe); False keeps
            only the random frame sampling.
        crop_scale, crop_ratio: the crop's area and aspect ranges (:func:`random_resized_crop_box`).

    ``dataset[i]`` is ``(clip, label)``: clip a float32 tensor (T, 3, S, S) with values in [0, 1] (for the default
    metadata), T = ``segments * frames_per_segment``, RGB; label an int64 scalar tensor.

    Raises:
        ArgumentError / TypeError: a non-positive size or count, a metadata clip length other than T. Loading an
        item raises DatasetError, naming the record's ``file:line`` and the image, for a frame folder that changed
        since it was listed or an image that does not decode.
    """

    def __init__(self, records: Sequence[ClipRecord], *, train: bool, frame_size: int = 112, segments: int = 8,
                 frames_per_segment: int = 2, seed: int = 0, metadata: ModelMetadata | None = None,
                 augment: bool = True, crop_scale: tuple[float, float] = CROP_SCALE,
                 crop_ratio: tuple[float, float] = CROP_RATIO) -> None:
        self.records = list(records)
        self.train = bool(train)
        self.segments = check_count("segments", segments)
        self.frames_per_segment = check_count("frames_per_segment", frames_per_segment)
        clip_length = self.segments * self.frames_per_segment
        if metadata is not None and metadata.clip_length != clip_length:
            raise ArgumentError(f"the metadata's clip_length {metadata.clip_length} is not segments x "
                                f"frames_per_segment = {self.segments} x {self.frames_per_segment}")
        self.metadata = metadata if metadata is not None else clip_metadata(check_count("frame_size", frame_size),
                                                                             clip_length)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.crop_scale, self.crop_ratio = tuple(crop_scale), tuple(crop_ratio)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64, every record's label (for stratified splits and class weights, without reading frames)."""
        return np.array([r.label for r in self.records], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Make the training draws those of epoch ``epoch`` (>= 0)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise TypeError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator item ``index`` draws from in the current epoch."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))

    def frame_indices(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The (T,) frame indices item ``index`` reads: the test clip, or the training draw of this epoch."""
        record = self.records[index]
        if not self.train:
            return dfew_test_indices(record.num_frames, self.segments, self.frames_per_segment)
        rng = self.rng(index) if rng is None else rng
        return dfew_train_indices(record.num_frames, rng, self.segments, self.frames_per_segment)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self.records) <= index < len(self.records):
            raise IndexError(f"clip {index} out of range (the dataset has {len(self.records)})")
        index = index % len(self.records)
        record = self.records[index]
        frames = list_frames(record.frame_dir) if record.frame_dir.is_dir() else []
        if len(frames) != record.num_frames:
            raise DatasetError(f"{record.source}: frame folder {record.frame_dir} now holds {len(frames)} images, "
                               f"it held {record.num_frames} when the list was read")
        rng = self.rng(index)
        indices = self.frame_indices(index, rng)
        images = [read_image(frames[i], record.source) for i in indices]
        flip = False
        if self.train and self.augment:
            h0, w0 = images[0].shape[:2]
            top, left, h, w = random_resized_crop_box(h0, w0, rng, self.crop_scale, self.crop_ratio)
            images = [_crop_relative(im, top / h0, left / w0, h / h0, w / w0) for im in images]
            flip = bool(rng.random() < 0.5)
        clip = np.stack([prepare_frame(im, self.metadata) for im in images])
        if flip:
            clip = clip[..., ::-1]
        return torch.from_numpy(np.ascontiguousarray(clip)), torch.tensor(record.label, dtype=torch.int64)


def _crop_relative(image: np.ndarray, top: float, left: float, h: float, w: float) -> np.ndarray:
    """Cut the box given as fractions of the first frame's size (frames of one clip may differ in size)."""
    H, W = image.shape[:2]
    y0, x0 = int(round(top * H)), int(round(left * W))
    y1, x1 = max(y0 + 1, int(round((top + h) * H))), max(x0 + 1, int(round((left + w) * W)))
    return image[y0:min(y1, H), x0:min(x1, W)]
