"""Expression spotting in long videos: post-processing of frame-wise scores and the MEGC evaluator.

- :func:`evaluate`: the MEGC spotting protocol (IoU >= 0.5 over inclusive frame ranges; TP/FP/FN, precision,
  recall, F1 per class and overall; variants ``"megc2020"`` and ``"megc2023"``).
- :func:`read_ground_truth`, :func:`read_predictions`, :func:`filter_by_length`: the MEGC2020 text formats and
  the baseline's length filters.
- :func:`window_frame_indices`, :func:`merge_window_scores`: a long video's windows of K frames (cut by
  :func:`edgefer.sampling.window_bounds`, stride K / 2) gathered, and their frame-wise probabilities averaged back.
- :func:`scores_to_intervals`: frame-wise (neutral, macro, micro) probabilities -> scored :class:`Interval`.

Imports no torch (numpy only, for the post-processing).
"""

from .intervals import EXPRESSION_CLASSES, Interval, interval_iou
from .megc_files import (DATASETS, LENGTH_FILTERS, MegcFormatError, filter_by_length, find_class_folders,
                         length_range, read_ground_truth, read_predictions, read_video_predictions, video_name)
from .metrics import VARIANTS, SpottingCounts, SpottingResult, evaluate
from .postprocess import (REFERENCE_FPS, REFERENCE_LENGTH_RANGES, frame_labels, label_runs, merge_gaps,
                          scale_length_ranges, scores_to_intervals)
from .windows import merge_window_scores, window_frame_indices

__all__ = [
    "EXPRESSION_CLASSES", "Interval", "interval_iou",
    "DATASETS", "LENGTH_FILTERS", "MegcFormatError", "filter_by_length", "find_class_folders", "length_range",
    "read_ground_truth", "read_predictions", "read_video_predictions", "video_name",
    "VARIANTS", "SpottingCounts", "SpottingResult", "evaluate",
    "REFERENCE_FPS", "REFERENCE_LENGTH_RANGES", "frame_labels", "label_runs", "merge_gaps", "scale_length_ranges",
    "scores_to_intervals",
    "merge_window_scores", "window_frame_indices",
]
