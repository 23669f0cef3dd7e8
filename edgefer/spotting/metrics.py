"""The MEGC spotting evaluator: TP/FP/FN, precision, recall and F1 per class and overall.

Protocol (MEGC2020 spotting; He et al., FG 2020, and the organisers' baseline
``HeyingGithub/Baseline-project-for-MEGC2020_spotting``): a predicted interval hits a ground-truth interval of
the same video and class when their IoU over inclusive frame ranges is >= ``iou`` (0.5). Counts are pooled
over all videos; the overall row sums the per-class TP/FP/FN. Two official counting variants:

``"megc2020"``
    TP = number of distinct ground-truth intervals hit by at least one prediction; FP = predictions - TP;
    FN = ground truth - TP. This is the MEGC2020 formula (recall = a / m, precision = a / n,
    F1 = 2a / (m + n)). When one prediction hits several ground-truth intervals (overlapping annotations, or IoU
    exactly 0.5 with both halves of it) TP can exceed the number of predictions, so FP can be *negative* and
    precision above 1, exactly as in the official script; FP is reported as computed, not clamped.
``"megc2023"``
    The MEGC2023 spot-then-recognise counting: the predictions of a video are taken **in the order given**
    (file order, for the text readers) and each one claims every still-unclaimed ground-truth interval it hits;
    a prediction that claims none (it hits nothing, or only intervals already claimed) is an FP. TP = claimed
    ground-truth intervals; FN = ground truth - TP. TP is the same as under ``megc2020``; FP differs whenever a
    prediction hits more than one ground truth, and depends on the order of the predictions.

Pure Python (no numpy, no torch).
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .intervals import EXPRESSION_CLASSES

#: The counting variants :func:`evaluate` offers.
VARIANTS: tuple[str, ...] = ("megc2020", "megc2023")

_LABEL_ALIASES = {"macro": "macro", "micro": "micro", "macro-expression": "macro", "micro-expression": "micro"}


@dataclass(frozen=True)
class SpottingCounts:
    """TP/FP/FN of one class (or of all classes summed) and the scores derived from them.

    Attributes:
        tp, fp, fn: true positives, false positives, false negatives (see the module doc for each variant).
        n_ground_truth: ground-truth intervals counted (always ``tp + fn``).
        n_predictions: predicted intervals counted (``tp + fp`` under ``megc2020``).
    """

    tp: int
    fp: int
    fn: int
    n_ground_truth: int
    n_predictions: int

    @property
    def precision(self) -> float:
        """``tp / (tp + fp)``; 0.0 when there is nothing to divide by."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp > 0 else 0.0

    @property
    def recall(self) -> float:
        """``tp / (tp + fn)``; 0.0 when there is no ground truth."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn > 0 else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0.0 when both are 0."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def __add__(self, other: "SpottingCounts") -> "SpottingCounts":
        return SpottingCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                              self.n_ground_truth + other.n_ground_truth, self.n_predictions + other.n_predictions)

    def to_dict(self) -> dict[str, float | int]:
        """Counts and scores as a plain dict (JSON-ready)."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "ground_truth": self.n_ground_truth,
                "predictions": self.n_predictions, "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


_ZERO = SpottingCounts(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class SpottingResult:
    """What :func:`evaluate` returns.

    Attributes:
        variant: ``"megc2020"`` or ``"megc2023"``.
        iou: the IoU threshold used.
        per_class: ``{"macro": SpottingCounts, "micro": SpottingCounts}``.
        overall: the per-class counts summed.
        num_videos: videos that had ground truth or predictions.
    """

    variant: str
    iou: float
    per_class: Mapping[str, SpottingCounts]
    overall: SpottingCounts
    num_videos: int = 0

    def __getitem__(self, label: str) -> SpottingCounts:
        """Counts of ``"macro"``, ``"micro"`` or ``"overall"``."""
        if label == "overall":
            return self.overall
        return self.per_class[label]

    def to_dict(self) -> dict:
        """The result as a plain dict (JSON-ready)."""
        return {"variant": self.variant, "iou": self.iou, "num_videos": self.num_videos,
                **{label: counts.to_dict() for label, counts in self.per_class.items()},
                "overall": self.overall.to_dict()}

    def table(self, title: str | None = None) -> str:
        """A fixed-width text table: one row per class and one overall row, columns TP FP FN P R F1."""
        head = title or f"{self.variant} (IoU >= {self.iou:g}, {self.num_videos} videos)"
        lines = [head, f"{'class':<8} {'GT':>6} {'pred':>6} {'TP':>6} {'FP':>6} {'FN':>6} "
                       f"{'precision':>10} {'recall':>8} {'F1':>8}"]
        for label, c in [*self.per_class.items(), ("overall", self.overall)]:
            lines.append(f"{label:<8} {c.n_ground_truth:>6} {c.n_predictions:>6} {c.tp:>6} {c.fp:>6} {c.fn:>6} "
                         f"{c.precision:>10.4f} {c.recall:>8.4f} {c.f1:>8.4f}")
        return "\n".join(lines)


def evaluate(ground_truth: Iterable[Sequence], predictions: Iterable[Sequence], variant: str = "megc2020",
             iou: float = 0.5) -> SpottingResult:
    """Score predicted expression intervals against ground truth with the MEGC spotting protocol.

    Args:
        ground_truth: iterable of ``(video, start_frame, end_frame, label)``; ``video`` any id (compared as
            ``str``), frames integers (integral floats accepted) with both ends included, ``label`` ``"macro"``
            or ``"micro"`` (``"macro-expression"``/``"micro-expression"`` accepted too).
        predictions: the same tuples, optionally with a 5th element (a score, ignored for counting). Under
            ``"megc2023"`` their order within a video matters: they are taken in the order given.
        variant: ``"megc2020"`` or ``"megc2023"`` (see the module doc).
        iou: hit threshold in (0, 1]; a hit is ``IoU >= iou``.

    Returns:
        :class:`SpottingResult`, counts pooled over videos, per class and overall. Empty inputs give all-zero
        counts and F1 = 0.

    Raises:
        ValueError: unknown variant, threshold outside (0, 1], or a malformed tuple (wrong length, unknown
            label, non-integer or negative frame, end before start) -- the message names the item.
        TypeError: an argument is not iterable.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if isinstance(iou, bool) or not isinstance(iou, numbers.Real) or not 0 < iou <= 1:
        raise ValueError(f"iou threshold must be a number in (0, 1], got {iou!r}")
    gts = _group(ground_truth, "ground_truth", allow_score=False)
    preds = _group(predictions, "predictions", allow_score=True)
    totals = {label: _ZERO for label in EXPRESSION_CLASSES}
    videos = {video for video, _ in gts} | {video for video, _ in preds}
    for key in set(gts) | set(preds):
        label = key[1]
        totals[label] = totals[label] + _count(gts.get(key, []), preds.get(key, []), variant, float(iou))
    overall = sum(totals.values(), _ZERO)
    return SpottingResult(variant, float(iou), totals, overall, len(videos))


def _count(gts: list[tuple[int, int]], preds: list[tuple[int, int]], variant: str, threshold: float) -> SpottingCounts:
    hits = [{i for i, (gs, ge) in enumerate(gts) if _hit(ps, pe, gs, ge, threshold)} for ps, pe in preds]
    if variant == "megc2020":
        tp = len(set().union(*hits))
        fp = len(preds) - tp
    else:
        claimed: set[int] = set()
        fp = 0
        for hit in hits:
            new = hit - claimed
            if new:
                claimed |= new
            else:
                fp += 1
        tp = len(claimed)
    return SpottingCounts(tp, fp, len(gts) - tp, len(gts), len(preds))


def _hit(a_start: int, a_end: int, b_start: int, b_end: int, threshold: float) -> bool:
    inter = min(a_end, b_end) - max(a_start, b_start) + 1
    if inter <= 0:
        return False
    union = (a_end - a_start + 1) + (b_end - b_start + 1) - inter
    return inter / union >= threshold


def _group(items: Iterable[Sequence], name: str, allow_score: bool) -> dict[tuple[str, str], list[tuple[int, int]]]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"{name} must be an iterable of (video, start_frame, end_frame, label) tuples, "
                        f"got {type(items).__name__}")
    grouped: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    sizes = (4, 5) if allow_score else (4,)
    for index, item in enumerate(items):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) not in sizes:
            want = "(video, start_frame, end_frame, label[, score])" if allow_score else \
                "(video, start_frame, end_frame, label)"
            raise ValueError(f"{name}[{index}] must be a tuple {want}, got {item!r}")
        video, start, end, label = item[:4]
        start = _frame(start, f"{name}[{index}] start_frame")
        end = _frame(end, f"{name}[{index}] end_frame")
        if end < start:
            raise ValueError(f"{name}[{index}] ends (frame {end}) before it starts (frame {start})")
        if label not in _LABEL_ALIASES:
            raise ValueError(f"{name}[{index}] label {label!r} is not one of {EXPRESSION_CLASSES}")
        grouped[(str(video), _LABEL_ALIASES[label])].append((start, end))
    return grouped


def _frame(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be an integer frame number, got {value!r}")
    if isinstance(value, numbers.Integral):
        frame = int(value)
    elif float(value).is_integer():
        frame = int(value)
    else:
        raise ValueError(f"{what} must be an integer frame number, got {value!r}")
    if frame < 0:
        raise ValueError(f"{what} must be >= 0, got {frame}")
    return frame
