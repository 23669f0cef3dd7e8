"""A video -> one face track: per-frame face boxes and square face crops (what the models read).

:func:`read_face_track` is the entry point the prediction pipeline calls: it decodes a video file (or camera),
detects faces in every frame (:class:`~edgefer.video.faces.HaarFaceDetector` by default), keeps one face track
(:class:`~edgefer.video.tracker.FaceTracker`; while a face is tracked, a detector with ``detect_near``
searches only around it, and the whole frame only when that fails), and cuts a square crop around the tracked
face in every frame, optionally resized to ``crop_size`` as it goes so a long video stays small in memory.

Dropouts: a gap of at most ``max_gap`` frames between two detections of the same track is bridged -- its
frames get the box linearly interpolated between the detections on either side, and count as face-found. A gap
that is longer, or that the video ends in, means the face has gone: those frames are face-less (crop None).
:func:`iter_face_track` does the same as a generator, yielding each frame at most ``max_gap`` frames late, for
streams and cameras.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..errors import NoFaceError
from .faces import PAD_MODES, FaceBox, FaceDetector, HaarFaceDetector, RegionFaceDetector, crop_face
from .reader import VideoReader, describe_source
from .tracker import FaceTracker


@dataclass
class FaceFrame:
    """One frame of a face track.

    Attributes:
        index: 0-based frame index in the video.
        box: the tracked face's box in full-frame pixels, or None when the frame has no face.
        detected: True when the detector found the face in this frame; False for a bridged frame (box
            interpolated across a short dropout) or a face-less one.
        crop: square BGR uint8 crop (S, S, 3) around ``box`` (S = ``crop_size`` if given), or None with no face.
    """

    index: int
    box: FaceBox | None
    detected: bool
    crop: np.ndarray | None


@dataclass
class FaceTrack:
    """One face followed through a video: per-frame boxes and crops.

    Attributes:
        source: the video's path (or ``camera N``).
        fps: frames per second (the container's, or the reader's fallback, see
            :class:`~edgefer.video.reader.VideoReader`).
        num_frames: frames decoded (and analysed), N -- the real count, not the container's claim.
        crops: N entries, a BGR uint8 (S, S, 3) square face crop or None where the frame has no face. All crops
            are ``crop_size`` x ``crop_size`` when it was given, else their native size (varying).
        boxes: N entries, the face's FaceBox in full-frame pixels or None.
        face_found: (N,) bool, True where the frame has a face (detected or bridged).
        detected: (N,) bool, True where the detector itself found the face (a subset of ``face_found``).
        crop_size: S, or None for native-size crops.
        margin: the crop margin used (fraction of the box added on each side).
    """

    source: str
    fps: float
    num_frames: int
    crops: list[np.ndarray | None]
    boxes: list[FaceBox | None]
    face_found: np.ndarray
    detected: np.ndarray
    crop_size: int | None = None
    margin: float = 0.2

    @property
    def face_ratio(self) -> float:
        """Fraction of frames with a face, in [0, 1]."""
        return float(self.face_found.mean()) if self.num_frames else 0.0

    def face_indices(self) -> np.ndarray:
        """(K,) int64, the indices of the frames with a face, increasing."""
        return np.flatnonzero(self.face_found).astype(np.int64)

    def clip(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stack the crops of frames ``indices`` into a clip, (T, S, S, 3) uint8 BGR.

        A face-less frame takes the crop of the nearest face-found frame (the earlier one on a tie), so a clip
        sampled over the whole video (e.g. :func:`edgefer.sampling.dfew_test_indices`) is always complete.

        Raises:
            ValueError: the track was read without ``crop_size`` (crops of different sizes cannot be stacked),
                or an index is outside [0, num_frames).
            NoFaceError: the track has no face at all.
        """
        if self.crop_size is None:
            raise ValueError("crops have native, varying sizes; read the track with crop_size=... to stack a clip")
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_frames):
            raise ValueError(f"frame indices must be in [0, {self.num_frames}), got {idx.min()}..{idx.max()}")
        found = self.face_indices()
        if found.size == 0:
            raise NoFaceError(f"no face in any frame of {self.source}")
        pos = np.clip(np.searchsorted(found, idx), 1, max(1, found.size - 1))
        if found.size == 1:
            nearest = np.zeros_like(idx)
        else:
            left, right = found[pos - 1], found[pos]
            nearest = np.where(np.abs(idx - left) <= np.abs(right - idx), pos - 1, pos)
        chosen = np.where(self.face_found[idx], idx, found[nearest])
        return np.stack([self.crops[i] for i in chosen]) if idx.size else np.zeros(
            (0, self.crop_size, self.crop_size, 3), np.uint8)


def _resize(crop: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or crop.shape[0] == size:
        return crop
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def _lerp(a: FaceBox, b: FaceBox, t: float) -> FaceBox:
    return FaceBox(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t,
                   min(a.score, b.score))


def _check_options(margin: float, crop_size: int | None, max_frames: int | None, pad: str) -> None:
    if not (isinstance(margin, (int, float)) and margin >= 0):
        raise ValueError(f"margin must be a fraction >= 0, got {margin!r}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    for name, value in (("crop_size", crop_size), ("max_frames", max_frames)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")


def iter_face_track(source: str | os.PathLike[str] | int | VideoReader, detector: FaceDetector | None = None,
                    margin: float = 0.2, crop_size: int | None = None, max_frames: int | None = None, *,
                    max_gap: int = 12, pad: str = "constant") -> Iterator[FaceFrame]:
    """Yield a :class:`FaceFrame` per frame of ``source``, in order, each at most ``max_gap`` frames late.

    Arguments as for :func:`read_face_track`. Raises VideoError on opening (see
    :class:`~edgefer.video.reader.VideoReader`); never NoFaceError (face-less frames have ``box=None``).
    """
    _check_options(margin, crop_size, max_frames, pad)
    detector = HaarFaceDetector() if detector is None else detector
    tracker = FaceTracker(max_gap=max_gap)
    near = detector.detect_near if isinstance(detector, RegionFaceDetector) else None
    reader = source if isinstance(source, VideoReader) else VideoReader(source)
    held: list[tuple[int, np.ndarray]] = []  # frames bridged by the online tracker, not yet confirmed
    last_detected: FaceBox | None = None

    def make(index: int, frame: np.ndarray, box: FaceBox, detected: bool) -> FaceFrame:
        return FaceFrame(index, box, detected, _resize(crop_face(frame, box, margin, pad), crop_size))

    try:
        for index, frame in enumerate(itertools.islice(reader, max_frames)):
            boxes: list[FaceBox] = []
            if near is not None and tracker.box is not None:
                boxes = near(frame, tracker.box)  # search near the tracked face first: much faster
            update = tracker.update(boxes or detector.detect(frame))
            if update.box is not None and not update.detected:
                held.append((index, frame))
                continue
            if update.detected and not update.new_track and held and last_detected is not None:
                gap = len(held) + 1
                for k, (i, f) in enumerate(held, start=1):
                    yield make(i, f, _lerp(last_detected, update.box, k / gap), False)
            else:
                for i, _ in held:
                    yield FaceFrame(i, None, False, None)
            held = []
            if update.box is None:
                last_detected = None
                yield FaceFrame(index, None, False, None)
            else:
                last_detected = update.box
                yield make(index, frame, update.box, True)
        for i, _ in held:
            yield FaceFrame(i, None, False, None)
    finally:
        if not isinstance(source, VideoReader):
            reader.close()


def read_face_track(path_or_capture: str | os.PathLike[str] | int | VideoReader, detector: FaceDetector | None = None,
                    margin: float = 0.2, crop_size: int | None = None, max_frames: int | None = None, *,
                    max_gap: int = 12, pad: str = "constant") -> FaceTrack:
    """Read a video and follow one face through it: per-frame boxes and square face crops.

    Args:
        path_or_capture: a video file path, a camera index (int), or an open
            :class:`~edgefer.video.reader.VideoReader` (not yet iterated).
        detector: a :class:`~edgefer.video.faces.FaceDetector`; None = ``HaarFaceDetector()``.
        margin: fraction of the face box added on each side of the square crop (0.2 -> 1.4x the box).
        crop_size: resize every crop to ``crop_size`` x ``crop_size`` pixels as it is read (e.g. 112; keeps memory
            at N * S * S * 3 bytes); None keeps native-size crops.
        max_frames: stop after this many frames (needed for a camera); None = the whole video.
        max_gap: the longest detection dropout (frames) bridged by interpolating the box.
        pad: how :func:`~edgefer.video.faces.crop_face` fills a crop beyond the frame border: ``"constant"``
            (zeros, black) or ``"edge"`` (repeat the border pixels).

    Returns:
        a :class:`FaceTrack` with N = frames decoded (or ``max_frames``): ``crops`` (BGR uint8, None where no
        face), ``boxes``, ``face_found`` (N,) bool, ``detected`` (N,) bool, ``fps``, ``num_frames``.

    Raises:
        VideoError: the file is missing, not a video, or has no decodable frame; the camera cannot be opened.
        NoFaceError: no face in any frame read; the message names the video.
        ValueError: a bad ``margin``, ``crop_size``, ``max_frames`` or ``pad``.
    """
    _check_options(margin, crop_size, max_frames, pad)
    reader = path_or_capture if isinstance(path_or_capture, VideoReader) else VideoReader(path_or_capture)
    try:
        frames = list(iter_face_track(reader, detector, margin, crop_size, max_frames, max_gap=max_gap, pad=pad))
    finally:
        if not isinstance(path_or_capture, VideoReader):
            reader.close()
    name = describe_source(reader.source)
    face_found = np.array([f.box is not None for f in frames], dtype=bool)
    if not face_found.any():
        raise NoFaceError(f"no face found in any of the {len(frames)} frames of {name}")
    return FaceTrack(source=name, fps=reader.fps, num_frames=len(frames), crops=[f.crop for f in frames],
                     boxes=[f.box for f in frames], face_found=face_found,
                     detected=np.array([f.detected for f in frames], dtype=bool), crop_size=crop_size, margin=margin)
