"""Video input: reading frames, finding and following a face, and cutting face crops (numpy + OpenCV, no torch).

- :mod:`.reader`: :class:`VideoReader` (file or camera, BGR uint8 frames, real frame counts, fps fallback).
- :mod:`.faces`: :class:`FaceBox`, the :class:`FaceDetector` / :class:`RegionFaceDetector` protocols, the
  default :class:`HaarFaceDetector`, :func:`crop_face`.
- :mod:`.tracker`: :class:`FaceTracker`, one face track across frames.
- :mod:`.track`: :func:`read_face_track` (video -> :class:`FaceTrack` of per-frame crops), :func:`iter_face_track`.
"""

from .faces import FaceBox, FaceDetector, HaarFaceDetector, RegionFaceDetector, box_iou, crop_face
from .reader import DEFAULT_FPS, VideoReader, count_frames
from .track import FaceFrame, FaceTrack, iter_face_track, read_face_track
from .tracker import FaceTracker, TrackUpdate

__all__ = ["VideoReader", "count_frames", "DEFAULT_FPS", "FaceBox", "FaceDetector", "RegionFaceDetector",
           "HaarFaceDetector", "box_iou", "crop_face", "FaceTracker", "TrackUpdate", "FaceFrame", "FaceTrack",
           "iter_face_track", "read_face_track"]
