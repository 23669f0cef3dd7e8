"""A video -> one face track: the tracker, its one bridging policy, and per-frame face boxes and square crops.

The DFER and spotting models read the crops of one person's face. :class:`FaceTracker` follows one face:

- start: the largest detection (ties: the higher score) starts the track;
- association: each frame, the detection that overlaps the track's box best (IoU >= ``min_iou``), or else whose
  centre lies within ``max_centre_shift`` box sides of the track's centre, continues the track; other
  detections (other faces, false positives) are ignored;
- smoothing: the track's box is an exponential moving average of the matched detections (weight ``smoothing``
  on the new one), which removes a detector's frame-to-frame jitter (keypoints are smoothed alike);
- dropouts, one policy for files and streams alike: a run of at most ``max_gap`` frames without a matching
  detection, between two detections of the same track, is bridged -- its frames get the box linearly
  interpolated between the track's boxes on either side, and count as face-found (``detected=False``). A longer
  run, or one the video ends in, means the face has gone: those frames are face-less (box None), and the next
  detection starts a new track (``new_track=True``).

So a frame's box is known once the track is seen again or lost, at most ``max_gap`` frames later; until then
the frame is pending. :meth:`FaceTracker.update` returns the frames it has just decided, in order;
:func:`iter_face_track` turns them into crops and yields each frame at most ``max_gap`` frames late (holding at
most ``max_gap + 1`` frames), for streams and cameras; :func:`read_face_track`, the entry point of the prediction
pipelines, is that stream collected into a :class:`FaceTrack`. This look-ahead rule is the better one offline
-- a held box would put a face crop on frames after the person has left -- and costs a stream only that
bounded latency (12 frames, half a second at 24 fps, by default).

While a face is tracked, a detector with ``detect_near`` (:class:`~edgefer.video.faces.RegionFaceDetector`)
searches only around the track's box, and the whole frame only when that finds nothing. Crops are cut around
each box (:func:`~edgefer.video.faces.crop_face`), optionally resized to ``crop_size`` as they go so a long video
stays small in memory.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from ..errors import ArgumentError, NoFaceError
from ..detectors import make_detector
from .faces import PAD_MODES, FaceBox, FaceDetector, RegionFaceDetector, box_iou, crop_face
from .reader import VideoReader, describe_source


@dataclass(frozen=True)
class TrackedBox:
    """The tracker's decision about one frame.

    Attributes:
        index: the frame's number, counting :meth:`FaceTracker.update` calls since the last reset (0-based).
        box: the face's box in full-frame pixels (smoothed, or interpolated across a bridged dropout), or None
            when the frame has no face.
        detected: True when a detection in this frame continued or started the track; False for a bridged
            frame or a face-less one.
        new_track: True when the track (re)started at this frame: its face need not be the previous frames' one.
    """

    index: int
    box: FaceBox | None
    detected: bool
    new_track: bool = False


class FaceTracker:
    """Follows one face through a video, frame by frame (see the module docstring for the rules).

    Args:
        max_gap: the longest run of frames (>= 0) without a matching detection that is bridged; a longer one
            loses the track.
        min_iou: IoU with the track's box that makes a detection the same face, in (0, 1].
        max_centre_shift: alternatively, the largest centre displacement (in units of the track box's larger
            side) for a detection to be the same face; >= 0.
        smoothing: weight of the new detection in the box's moving average, in (0, 1]; 1 = no smoothing.

    Raises:
        ArgumentError (a ValueError): a parameter out of range.
    """

    def __init__(self, max_gap: int = 12, min_iou: float = 0.2, max_centre_shift: float = 0.5,
                 smoothing: float = 0.6) -> None:
        if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
            raise ArgumentError(f"max_gap must be an int >= 0 (frames), got {max_gap!r}")
        if not 0.0 < min_iou <= 1.0:
            raise ArgumentError(f"min_iou must be in (0, 1], got {min_iou}")
        if not (math.isfinite(max_centre_shift) and max_centre_shift >= 0):
            raise ArgumentError(f"max_centre_shift must be >= 0, got {max_centre_shift}")
        if not 0.0 < smoothing <= 1.0:
            raise ArgumentError(f"smoothing must be in (0, 1], got {smoothing}")
        self.max_gap = int(max_gap)
        self.min_iou = float(min_iou)
        self.max_centre_shift = float(max_centre_shift)
        self.smoothing = float(smoothing)
        self.reset()

    def reset(self) -> None:
        """Forget the track and any pending frames, and count frames from 0 again (e.g. at a new video)."""
        self._box: FaceBox | None = None
        self._pending: list[int] = []
        self._next = 0

    @property
    def box(self) -> FaceBox | None:
        """The track's last (smoothed) box, kept while the face is missed; None when there is no track."""
        return self._box

    def update(self, detections: Sequence[FaceBox]) -> list[TrackedBox]:
        """Advance one frame with its detections (full-frame pixels, any order).

        Returns:
            The frames decided by this one, in order: none while the face is missed for at most ``max_gap``
            frames (the frame is pending); the pending frames, bridged, and this one when the track is detected
            again; the pending frames, face-less, and this one when the track is lost or there is none.
        """
        index = self._next
        self._next += 1
        decided: list[TrackedBox] = []
        if self._box is not None:
            match = self._match(detections)
            if match is not None:
                a, p = self.smoothing, self._box
                box = FaceBox(a * match.x + (1 - a) * p.x, a * match.y + (1 - a) * p.y,
                              a * match.w + (1 - a) * p.w, a * match.h + (1 - a) * p.h, match.score,
                              _mix_points(p.keypoints, match.keypoints, a))
                steps = len(self._pending) + 1
                decided = [TrackedBox(i, _lerp(p, box, k / steps), False) for k, i in enumerate(self._pending, 1)]
                self._box, self._pending = box, []
                return decided + [TrackedBox(index, box, True)]
            if len(self._pending) < self.max_gap:
                self._pending.append(index)
                return []
            decided = self.finish()
        if detections:
            self._box = max(detections, key=lambda d: (d.area, d.score))
            return decided + [TrackedBox(index, self._box, True, new_track=True)]
        return decided + [TrackedBox(index, None, False)]

    def finish(self) -> list[TrackedBox]:
        """End the track: its pending frames are decided face-less and returned (call at the end of a video).

        The frame count goes on, so a later :meth:`update` continues the numbering.
        """
        decided = [TrackedBox(i, None, False) for i in self._pending]
        self._box, self._pending = None, []
        return decided

    def _match(self, detections: Sequence[FaceBox]) -> FaceBox | None:
        prev = self._box
        assert prev is not None
        reach = self.max_centre_shift * max(prev.w, prev.h)
        best, best_key = None, None
        for det in detections:
            iou = box_iou(prev, det)
            dist = math.hypot(det.cx - prev.cx, det.cy - prev.cy)
            if iou < self.min_iou and dist > reach:
                continue
            key = (iou, -dist)
            if best_key is None or key > best_key:
                best, best_key = det, key
        return best


def _lerp(a: FaceBox, b: FaceBox, t: float) -> FaceBox:
    return FaceBox(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t,
                   min(a.score, b.score), _mix_points(a.keypoints, b.keypoints, t))


def _mix_points(a, b, t: float):
    """Keypoints ``a + (b - a) * t`` (smoothed like the box); the ones there are when only one box has them."""
    if a is None or b is None or len(a) != len(b):
        return b if b is not None else a
    return tuple((pa[0] + (pb[0] - pa[0]) * t, pa[1] + (pb[1] - pa[1]) * t) for pa, pb in zip(a, b))


@dataclass
class FaceFrame:
    """One frame of a face track.

    Attributes:
        index: 0-based frame index in the video.
        box: the tracked face's box in full-frame pixels, or None when the frame has no face.
        detected: True when the detector found the face in this frame; False for a bridged frame (box
            interpolated across a short dropout) or a face-less one.
        crop: square BGR uint8 crop (S, S, 3) around ``box`` (S = ``crop_size`` if given), or None with no face.
        new_track: True when a new track starts at this frame (its face need not be the previous frames' one).
    """

    index: int
    box: FaceBox | None
    detected: bool
    crop: np.ndarray | None
    new_track: bool = False


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
        align: whether the crops were rotated so the eyes are level (:func:`~edgefer.video.faces.crop_face`).
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
    align: bool = False

    @property
    def face_fraction(self) -> float:
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
            ArgumentError (a ValueError): the track was read without ``crop_size`` (crops of different sizes
                cannot be stacked), or an index is outside [0, num_frames).
            NoFaceError: the track has no face at all.
        """
        if self.crop_size is None:
            raise ArgumentError("crops have native, varying sizes; read the track with crop_size=... to stack a clip")
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_frames):
            raise ArgumentError(f"frame indices must be in [0, {self.num_frames}), got {idx.min()}..{idx.max()}")
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


def _check_options(margin: float, crop_size: int | None, max_frames: int | None, pad: str, tracker,
                   align: bool = False) -> None:
    if not isinstance(align, (bool, np.bool_)):
        raise ArgumentError(f"align must be True or False, got {align!r}")
    if not (isinstance(margin, (int, float)) and margin >= 0):
        raise ArgumentError(f"margin must be a fraction >= 0, got {margin!r}")
    if pad not in PAD_MODES:
        raise ArgumentError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    for name, value in (("crop_size", crop_size), ("max_frames", max_frames)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ArgumentError(f"{name} must be a positive int or None, got {value!r}")
    if tracker is not None and not isinstance(tracker, FaceTracker):
        raise TypeError(f"tracker must be a FaceTracker or None, got {type(tracker).__name__}")


def iter_face_track(source: str | os.PathLike[str] | int | VideoReader, detector: FaceDetector | str | None = None,
                    margin: float = 0.2, crop_size: int | None = None, max_frames: int | None = None, *,
                    tracker: FaceTracker | None = None, pad: str = "constant",
                    align: bool = False) -> Iterator[FaceFrame]:
    """Yield a :class:`FaceFrame` per frame of ``source``, in order, each at most ``tracker.max_gap`` frames late.

    Arguments as for :func:`read_face_track`; ``source`` may also be any iterable of BGR uint8 (H, W, 3) frames
    (a live feed, :func:`edgefer.stream`), which is not closed here. Raises VideoError on opening (see
    :class:`~edgefer.video.reader.VideoReader`), ArgumentError / TypeError for bad options; never NoFaceError
    (face-less frames have ``box=None``).
    """
    _check_options(margin, crop_size, max_frames, pad, tracker, align)
    detector = make_detector(detector) if detector is None or isinstance(detector, str) else detector
    tracker = FaceTracker() if tracker is None else tracker
    tracker.reset()
    near = detector.detect_near if isinstance(detector, RegionFaceDetector) else None
    opened = isinstance(source, (str, os.PathLike, int, np.integer))  # else a VideoReader or an iterable of frames
    reader = VideoReader(source) if opened else source
    held: dict[int, np.ndarray] = {}  # frames read whose box the tracker has not decided yet

    def frames(decided: Iterable[TrackedBox]) -> Iterator[FaceFrame]:
        for step in decided:
            frame = held.pop(step.index)
            crop = None if step.box is None else _resize(crop_face(frame, step.box, margin, pad, align), crop_size)
            yield FaceFrame(step.index, step.box, step.detected, crop, step.new_track)

    try:
        for index, frame in enumerate(itertools.islice(reader, max_frames)):
            held[index] = frame
            boxes: list[FaceBox] = []
            if near is not None and tracker.box is not None:
                boxes = near(frame, tracker.box)  # search near the tracked face first: much faster
            yield from frames(tracker.update(boxes or detector.detect(frame)))
        yield from frames(tracker.finish())
    finally:
        if opened:
            reader.close()


def read_face_track(path_or_capture: str | os.PathLike[str] | int | VideoReader,
                    detector: FaceDetector | str | None = None,
                    margin: float = 0.2, crop_size: int | None = None, max_frames: int | None = None, *,
                    tracker: FaceTracker | None = None, pad: str = "constant", align: bool = False) -> FaceTrack:
    """Read a video and follow one face through it: per-frame boxes and square face crops.

    Args:
        path_or_capture: a video file path, a camera index (int), or an open
            :class:`~edgefer.video.reader.VideoReader` (not yet iterated).
        detector: a :class:`~edgefer.video.faces.FaceDetector`, or a name for
            :func:`~edgefer.detectors.make_detector` (``"haar"``, ``"blazeface-short"``, ``"blazeface-full"``);
            None = :data:`~edgefer.detectors.DEFAULT_DETECTOR`.
        margin: fraction of the face box added on each side of the square crop (0.2 -> 1.4x the box).
        crop_size: resize every crop to ``crop_size`` x ``crop_size`` pixels as it is read (e.g. 112; keeps memory
            at N * S * S * 3 bytes); None keeps native-size crops.
        max_frames: stop after this many frames (needed for a camera); None = the whole video.
        tracker: the :class:`FaceTracker` with its parameters (``max_gap``, ``min_iou``, ``max_centre_shift``,
            ``smoothing``); None = ``FaceTracker()``. It is reset first and holds this video's state while the
            call runs, so give each concurrent call its own.
        pad: how :func:`~edgefer.video.faces.crop_face` fills a crop beyond the frame border: ``"constant"``
            (zeros, black) or ``"edge"`` (repeat the border pixels).
        align: rotate each crop so the eye line is level (boxes with eye keypoints, i.e. BlazeFace; see
            :func:`~edgefer.video.faces.crop_face`). A model's metadata says whether it was trained so
            (``face_align``).

    Returns:
        a :class:`FaceTrack` with N = frames decoded (or ``max_frames``): ``crops`` (BGR uint8, None where no
        face), ``boxes``, ``face_found`` (N,) bool, ``detected`` (N,) bool, ``fps``, ``num_frames``.

    Raises:
        VideoError: the file is missing, not a video, or has no decodable frame; the camera cannot be opened.
        NoFaceError: no face in any frame read; the message names the video.
        ArgumentError (a ValueError): a bad ``margin``, ``crop_size``, ``max_frames`` or ``pad``; an unknown
            detector name.
        FetchError / BackendUnavailableError: a BlazeFace detector's model could not be fetched or converted.
        TypeError: ``tracker`` is not a FaceTracker.
    """
    _check_options(margin, crop_size, max_frames, pad, tracker, align)
    reader = path_or_capture if isinstance(path_or_capture, VideoReader) else VideoReader(path_or_capture)
    try:
        frames = list(iter_face_track(reader, detector, margin, crop_size, max_frames, tracker=tracker, pad=pad,
                                      align=align))
    finally:
        if not isinstance(path_or_capture, VideoReader):
            reader.close()
    name = describe_source(reader.source)
    face_found = np.array([f.box is not None for f in frames], dtype=bool)
    if not face_found.any():
        raise NoFaceError(f"no face found in any of the {len(frames)} frames of {name}")
    return FaceTrack(source=name, fps=reader.fps, num_frames=len(frames), crops=[f.crop for f in frames],
                     boxes=[f.box for f in frames], face_found=face_found,
                     detected=np.array([f.detected for f in frames], dtype=bool), crop_size=crop_size, margin=margin,
                     align=bool(align))
