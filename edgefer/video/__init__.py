"""Video input: reading frames, finding and following a face, and cutting face crops (numpy + OpenCV, no torch).

- :mod:`.reader`: :class:`VideoReader` (file or camera, BGR uint8 frames, real frame counts, fps fallback).
- :mod:`.faces`: :class:`FaceBox`, the :class:`FaceDetector` / :class:`RegionFaceDetector` protocols, the
  default :class:`HaarFaceDetector`, :func:`crop_face`.
- :mod:`.track`: :class:`FaceTracker` (one face across frames, short dropouts bridged by one rule),
  :func:`read_face_track` (video -> :class:`FaceTrack` of per-frame crops) and :func:`iter_face_track` (the same
  as a stream).
"""

from .faces import FaceBox, FaceDetector, HaarFaceDetector, RegionFaceDetector, box_iou, crop_face
from .reader import DEFAULT_FPS, VideoReader, count_frames
from .track import FaceFrame, FaceTrack, FaceTracker, TrackedBox, iter_face_track, read_face_track

__all__ = ["VideoReader", "count_frames", "DEFAULT_FPS", "FaceBox", "FaceDetector", "RegionFaceDetector",
           "HaarFaceDetector", "box_iou", "crop_face", "FaceTracker", "TrackedBox", "FaceFrame", "FaceTrack",
           "iter_face_track", "read_face_track"]
