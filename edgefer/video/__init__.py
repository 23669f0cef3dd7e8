"""Video input: reading frames, finding and following a face, and cutting face crops (numpy + OpenCV, no torch).

- :mod:`.reader`: :class:`VideoReader` (file or camera, BGR uint8 frames, real frame counts, fps fallback).
- :mod:`.faces`: :class:`FaceBox`, the :class:`FaceDetector` / :class:`RegionFaceDetector` protocols,
  :class:`HaarFaceDetector`, :func:`make_detector` (by name; :data:`DEFAULT_DETECTOR` when none is given; both
  from :mod:`edgefer.detectors`),
  :func:`crop_face` (square, optionally eye-aligned).
- :mod:`.blazeface`: :class:`BlazeFaceDetector`, MediaPipe's BlazeFace on ONNX Runtime (box + 6 keypoints).
- :mod:`.track`: :class:`FaceTracker` (one face across frames, short dropouts bridged by one rule),
  :func:`read_face_track` (video -> :class:`FaceTrack` of per-frame crops) and :func:`iter_face_track` (the same
  as a stream).
"""

from .blazeface import BlazeFaceDetector
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES, make_detector
from .faces import FaceBox, FaceDetector, HaarFaceDetector, RegionFaceDetector, box_iou, crop_face, eye_roll
from .reader import DEFAULT_FPS, VideoReader, count_frames
from .track import FaceFrame, FaceTrack, FaceTracker, TrackedBox, iter_face_track, read_face_track

__all__ = ["VideoReader", "count_frames", "DEFAULT_FPS", "FaceBox", "FaceDetector", "RegionFaceDetector",
           "HaarFaceDetector", "BlazeFaceDetector", "DEFAULT_DETECTOR", "DETECTOR_NAMES", "make_detector", "box_iou",
           "crop_face", "eye_roll", "FaceTracker", "TrackedBox", "FaceFrame", "FaceTrack", "iter_face_track",
           "read_face_track"]
