"""Training data: DFER and spotting datasets as torch ``Dataset``s, their annotation formats, and generated data.

- :mod:`.annotations`: Former-DFER annotation lists (:func:`read_annotation_list`, with ``root`` rewriting),
  DFEW's official split CSVs (:func:`read_dfew_split`, 1-based labels), a user's class folders
  (:func:`scan_class_folders`), and :func:`write_annotation_list`.
- :mod:`.clips`: :class:`DferClipDataset`, clips sampled by :mod:`edgefer.sampling` and prepared by
  :func:`edgefer.preprocess.prepare_frame` (the runtime's rules), with the per-clip crop + flip augmentation.
- :mod:`.spotting` / :mod:`.windows`: :class:`SpottingVideo`, :func:`read_spotting_dataset` (MEGC ground truth),
  :func:`loso_folds`, :class:`SpottingWindowDataset` (K-frame windows, frame labels neutral / macro / micro).
- :mod:`.synthetic`: :func:`write_dfer_dataset` and :func:`write_spotting_dataset`, generated datasets whose class
  is set by time alone (tests, docs, and the proof that a model reads time).
- :mod:`.prepare`: :func:`prepare_videos`, raw videos -> the runtime's face crops as frame folders
  (``edgefer prepare``).

Every data error is a :class:`DatasetError` (an :class:`~edgefer.errors.EdgeferError` and a ValueError) whose one
line names the file and line. The torch ``Dataset`` classes are imported on first use, so reading annotations
and ``edgefer prepare`` need no torch.
"""

from __future__ import annotations

from edgefer.lazy import lazy_getattr

from .annotations import (parse_root, read_annotation_list, read_dfew_split, resolve_frame_dir, scan_class_folders,
                          write_annotation_list)
from .records import IMAGE_SUFFIXES, ClipRecord, DatasetError, RecordList, list_frames
from .spotting import IGNORE_INDEX, SpottingVideo, frame_labels, loso_folds, read_spotting_dataset

_LAZY = {"DferClipDataset": ".clips", "random_resized_crop_box": ".clips", "SpottingWindowDataset": ".windows",
         "write_dfer_dataset": ".synthetic", "write_spotting_dataset": ".synthetic",
         "prepare_videos": ".prepare", "PrepareReport": ".prepare"}

__all__ = ["ClipRecord", "DatasetError", "RecordList", "IMAGE_SUFFIXES", "list_frames", "parse_root",
           "resolve_frame_dir", "read_annotation_list", "read_dfew_split", "scan_class_folders",
           "write_annotation_list", "SpottingVideo", "IGNORE_INDEX", "frame_labels", "read_spotting_dataset",
           "loso_folds", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)
