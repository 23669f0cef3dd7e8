"""Keeping one face track across the frames of a video (online, frame by frame).

The DFER and spotting models read the crops of one person's face. :class:`FaceTracker` follows one face:

- start: the largest detection (ties: the higher score) starts the track;
- association: each frame, the detection that overlaps the track's box best (IoU >= ``min_iou``), or else whose
  centre lies within ``max_centre_shift`` box sides of the track's centre, continues the track; other
  detections (other faces, false positives) are ignored;
- smoothing: the track's box is an exponential moving average of the matched detections (weight ``smoothing``
  on the new one), which removes the Haar detector's frame-to-frame jitter;
- dropouts: a frame with no matching detection holds the last box, for at most ``max_gap`` frames in a row;
  after that the track is lost (the face has gone) and the next detection starts a new track.

It is online (it never looks ahead), so a held box right after a face leaves is reported as a bridge
(``detected=False``). :func:`edgefer.video.track.iter_face_track` looks ahead up to ``max_gap`` frames and marks a
bridge face-less unless the same track is detected again after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .faces import FaceBox, box_iou


@dataclass(frozen=True)
class TrackUpdate:
    """What :meth:`FaceTracker.update` says about one frame.

    Attributes:
        box: the track's (smoothed) box in this frame, or None when there is no track.
        detected: True when a detection in this frame continued or started the track; False when ``box`` is a
            held box bridging a dropout (or None).
        new_track: True when the track (re)started at this frame, so this box is not the continuation of the
            previous frames' box.
    """

    box: FaceBox | None
    detected: bool
    new_track: bool


class FaceTracker:
    """Follows one face through a video, frame by frame (see the module docstring for the rules).

    Args:
        max_gap: frames in a row a track may go undetected (holding its box) before it is lost; >= 0.
        min_iou: IoU with the track's box that makes a detection the same face, in (0, 1].
        max_centre_shift: alternatively, the largest centre displacement (in units of the track box's larger
            side) for a detection to be the same face; >= 0.
        smoothing: weight of the new detection in the box's moving average, in (0, 1]; 1 = no smoothing.

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(self, max_gap: int = 12, min_iou: float = 0.2, max_centre_shift: float = 0.5,
                 smoothing: float = 0.6) -> None:
        if int(max_gap) != max_gap or max_gap < 0:
            raise ValueError(f"max_gap must be an int >= 0 (frames), got {max_gap}")
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if not (math.isfinite(max_centre_shift) and max_centre_shift >= 0):
            raise ValueError(f"max_centre_shift must be >= 0, got {max_centre_shift}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.max_gap = int(max_gap)
        self.min_iou = float(min_iou)
        self.max_centre_shift = float(max_centre_shift)
        self.smoothing = float(smoothing)
        self.reset()

    def reset(self) -> None:
        """Forget the track (e.g. at a new video)."""
        self.box: FaceBox | None = None
        self.misses = 0

    def _match(self, detections: Sequence[FaceBox]) -> FaceBox | None:
        prev = self.box
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

    def update(self, detections: Sequence[FaceBox]) -> TrackUpdate:
        """Advance one frame with that frame's detections (full-frame pixels, any order); return the track state."""
        if self.box is not None:
            match = self._match(detections)
            if match is not None:
                a = self.smoothing
                p = self.box
                self.box = FaceBox(a * match.x + (1 - a) * p.x, a * match.y + (1 - a) * p.y,
                                   a * match.w + (1 - a) * p.w, a * match.h + (1 - a) * p.h, match.score)
                self.misses = 0
                return TrackUpdate(self.box, True, False)
            self.misses += 1
            if self.misses <= self.max_gap:
                return TrackUpdate(self.box, False, False)
            self.reset()
        if detections:
            self.box = max(detections, key=lambda d: (d.area, d.score))
            self.misses = 0
            return TrackUpdate(self.box, True, True)
        return TrackUpdate(None, False, False)
