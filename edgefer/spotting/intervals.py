"""Frame intervals and their IoU, the unit of the MEGC spotting protocol.

Frames are integers and an interval ``[start, end]`` holds both ends (``end - start + 1`` frames), as in the
MEGC2020 spotting challenge (He et al., "Spotting macro- and micro-expression intervals in long video
sequences", FG 2020). Pure Python: no numpy, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The expression classes an interval can have (``edgefer.labels.SPOTTING_CLASSES`` without "neutral").
EXPRESSION_CLASSES: tuple[str, ...] = ("macro", "micro")


@dataclass(frozen=True)
class Interval:
    """One spotted (or annotated) expression interval of a video.

    Attributes:
        start_frame: first frame of the interval (inclusive).
        end_frame: last frame of the interval (inclusive), ``>= start_frame``.
        label: ``"macro"`` or ``"micro"``.
        score: confidence in [0, 1] (post-processing: the mean probability of ``label`` over the interval).
    """

    start_frame: int
    end_frame: int
    label: str
    score: float = 1.0

    def __post_init__(self) -> None:
        if self.end_frame < self.start_frame:
            raise ValueError(f"interval end_frame {self.end_frame} is before start_frame {self.start_frame}")
        if self.label not in EXPRESSION_CLASSES:
            raise ValueError(f"interval label {self.label!r} is not one of {EXPRESSION_CLASSES}")

    @property
    def num_frames(self) -> int:
        """Length in frames, both ends included."""
        return self.end_frame - self.start_frame + 1

    def seconds(self, fps: float) -> tuple[float, float]:
        """(start, end) in seconds at ``fps``: the start of the first frame and the end of the last one.

        Frame ``i`` covers ``[i / fps, (i + 1) / fps)``, so a 0-based ``[0, 29]`` interval at 30 fps is
        (0.0, 1.0). Raises ValueError when ``fps <= 0``.
        """
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return self.start_frame / fps, (self.end_frame + 1) / fps


def interval_iou(a_start: int, a_end: int, b_start: int, b_end: int) -> float:
    """Temporal IoU of two inclusive frame intervals ``[a_start, a_end]`` and ``[b_start, b_end]``.

    ``|A n B| / |A u B|`` counting frames, both ends included: identical intervals give 1.0, disjoint ones 0.0,
    ``[0, 9]`` and ``[5, 14]`` give 5 / 15. (The MEGC2020 baseline's own helper also returns 0 for a one-frame
    interval; here a one-frame interval is an ordinary interval of length 1.)

    Raises:
        ValueError: an interval ends before it starts.
    """
    if a_end < a_start or b_end < b_start:
        raise ValueError(f"interval ends before it starts: [{a_start}, {a_end}] / [{b_start}, {b_end}]")
    inter = min(a_end, b_end) - max(a_start, b_start) + 1
    if inter <= 0:
        return 0.0
    union = (a_end - a_start + 1) + (b_end - b_start + 1) - inter
    return inter / union
