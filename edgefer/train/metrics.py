"""Classification metrics of the DFER protocol: the confusion matrix, WAR and UAR over a fixed label set.

Definitions (``shared/design/models.md``; DFEW, Jiang et al., ACM MM 2020): WAR (weighted average recall) is the
accuracy over all clips; UAR (unweighted average recall) is the mean per-class recall over the classes that have
at least one target clip. The label set is fixed (7 classes for DFER), so a class absent from a split never turns
UAR into NaN, and confusion matrices of several ranks or folds add up. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError


def confusion_matrix(targets, predictions, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = target class, column = predicted class.

    Raises:
        ArgumentError: lengths differ, or a class index outside [0, num_classes).
    """
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    p = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ArgumentError(f"{t.size} targets for {p.size} predictions")
    for name, values in (("target", t), ("prediction", p)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ArgumentError(f"{name} class outside [0, {num_classes}): {values.min()}..{values.max()}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassificationScores:
    """WAR and UAR of a confusion matrix.

    Attributes:
        war: accuracy over all clips, in [0, 1] (0 for an empty matrix).
        uar: mean recall over the classes with at least one target clip, in [0, 1] (0 for an empty matrix).
        per_class_recall: recall of each class, NaN where the class has no target clip.
        clips: clips counted.
        confusion: the (C, C) int64 matrix itself.
    """

    war: float
    uar: float
    per_class_recall: tuple[float, ...]
    clips: int
    confusion: np.ndarray

    def as_dict(self) -> dict:
        return {"war": self.war, "uar": self.uar, "clips": self.clips,
                "per_class_recall": [None if np.isnan(r) else r for r in self.per_class_recall],
                "confusion": self.confusion.tolist()}


def scores(confusion: np.ndarray) -> ClassificationScores:
    """WAR / UAR of a (C, C) confusion matrix (rows = targets).

    Raises:
        ArgumentError: not a square 2-D matrix.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ArgumentError(f"a confusion matrix is (C, C), got shape {cm.shape}")
    support = cm.sum(axis=1)
    total = int(support.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    present = support > 0
    war = float(np.trace(cm) / total) if total else 0.0
    uar = float(recall[present].mean()) if present.any() else 0.0
    return ClassificationScores(war, uar, tuple(float(r) for r in recall), total, cm)
