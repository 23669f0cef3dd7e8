"""Spotting datasets: long frame sequences with MEGC interval annotations, leave-one-subject-out folds, and the
K-frame windows FESNet trains on.

A spotting video on disk is a frame folder (one image per video frame, natural name order; see
:func:`edgefer.data.records.list_frames`), found under ``frames_root`` by a pattern of the subject and video
names (default ``{subject}/{video}``: ``frames_root/s15/0401/``, ``frames_root/006/1/``). Its intervals come from a
MEGC ground-truth file (``gt_casme2.txt`` / ``gt_samm_lv.txt``: ``subject video class onset apex offset``, 1-based
inclusive frame numbers), read by :func:`edgefer.spotting.read_ground_truth` (the one reader).

Frame labels (:func:`frame_labels`) use FESNet's classes, :data:`edgefer.labels.SPOTTING_CLASSES`: 0 neutral,
1 macro, 2 micro. Ground-truth frame ``n`` (1-based) is image ``n - 1``. Where a macro and a micro interval
overlap, the frames are labelled micro (the rarer class, which the spotting score needs most).

The K-frame windows (:class:`edgefer.data.windows.SpottingWindowDataset`) are
:func:`edgefer.spotting.window_frame_indices`' (K = 64, stride K / 2 by default; the one window cutter,
:func:`edgefer.sampling.window_bounds`): every frame lies in at least one window; a video shorter than K gives one
window whose positions past the end repeat the last frame and are labelled ``IGNORE_INDEX`` (left out of
FESNet's loss: the ``ignore_index`` of :class:`edgefer.models.losses.SpottingLoss`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..labels import SPOTTING_CLASSES
from .records import DatasetError, RecordList, list_frames

#: Frame label of window positions past a short video's end (ignored by the loss).
IGNORE_INDEX = -100
#: Class index of each MEGC label, in FESNet's order.
CLASS_INDEX = {name: SPOTTING_CLASSES.index(name) for name in SPOTTING_CLASSES}


@dataclass(frozen=True)
class SpottingVideo:
    """One long video of a spotting dataset.

    Attributes:
        subject: the subject id as the ground truth writes it (``s15``, ``006``): the unit of LOSO folds.
        video: the video id within the subject (``0401``, ``1``).
        frame_dir: the folder of its frames.
        num_frames: images in the folder.
        intervals: ``(onset, offset, label)`` per expression, 1-based inclusive frame numbers as in the MEGC file,
            ``label`` ``"macro"`` or ``"micro"``.
        source: where the video came from (the ground-truth file, or the video list and line).
    """

    subject: str
    video: str
    frame_dir: Path
    num_frames: int
    intervals: tuple[tuple[int, int, str], ...] = field(default_factory=tuple)
    source: str = ""

    @property
    def name(self) -> str:
        """``<subject>_<video>``, the name MEGC prediction files use (:func:`edgefer.spotting.video_name`)."""
        from ..spotting import video_name

        return video_name(self.subject, self.video)


def frame_labels(video: SpottingVideo) -> np.ndarray:
    """(F,) int64 per-frame classes of ``video``: 0 neutral, 1 macro, 2 micro (micro wins an overlap)."""
    labels = np.zeros(video.num_frames, dtype=np.int64)
    for wanted in ("macro", "micro"):
        for onset, offset, label in video.intervals:
            if label == wanted:
                labels[max(onset - 1, 0):min(offset, video.num_frames)] = CLASS_INDEX[label]
    return labels


def read_spotting_dataset(gt_file: str | os.PathLike, frames_root: str | os.PathLike, *,
                          videos_file: str | os.PathLike | None = None, pattern: str = "{subject}/{video}",
                          skip_bad: bool = False) -> RecordList:
    """The videos of a spotting dataset with their ground-truth intervals.

    Args:
        gt_file: a MEGC ground-truth file (``subject video class onset apex offset`` a line).
        frames_root: the folder the frame folders lie under.
        videos_file: optionally, every video of the dataset, ``subject video`` a line (the ground truth lists only
            videos with an expression; the MEGC2020 fixture's ``videos_casme2.txt``): videos without an interval
            are then included, as the protocol scores them too.
        pattern: the frame folder of a video relative to ``frames_root``, a ``str.format`` pattern of
            ``{subject}``, ``{video}`` and ``{name}`` (``<subject>_<video>``).
        skip_bad: drop a video whose folder is missing or whose intervals pass its last frame, instead of raising;
            the result counts them.

    Returns:
        a :class:`~edgefer.data.records.RecordList` of :class:`SpottingVideo` in order of first appearance (video
        list first when given), intervals in file order.

    Raises:
        MegcFormatError (a ValueError): a malformed ground-truth line (:func:`edgefer.spotting.read_ground_truth`).
        DatasetError: a missing video list or a malformed line of it, a video's frame folder missing or empty, an
            interval past the video's last frame (naming the file and line), or no video at all.
    """
    from ..spotting import read_ground_truth, video_name

    gt_file, frames_root = Path(gt_file), Path(frames_root)
    rows = read_ground_truth(gt_file)
    with open(gt_file, encoding="utf-8") as handle:  # the subject / video split of each row, and its line
        raw = [(n, line.split()) for n, line in enumerate(handle, 1) if line.split()]
    order: dict[str, tuple[str, str, str]] = {}
    if videos_file is not None:
        try:
            listing = Path(videos_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"video list {videos_file} cannot be read ({exc.__class__.__name__})") from None
        for lineno, line in enumerate(listing.splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise DatasetError(f"{videos_file}:{lineno}: expected 'subject video', got {line.strip()!r}")
            order.setdefault(video_name(*fields), (fields[0], fields[1], f"{videos_file}:{lineno}"))
    intervals: dict[str, list[tuple[int, int, str, str]]] = {}
    for (name, onset, offset, label), (lineno, fields) in zip(rows, raw):
        order.setdefault(name, (fields[0], fields[1], f"{gt_file}:{lineno}"))
        intervals.setdefault(name, []).append((onset, offset, label, f"{gt_file}:{lineno}"))
    videos = RecordList()
    for name, (subject, video, where) in order.items():
        try:
            folder = frames_root / pattern.format(subject=subject, video=video, name=name)
            try:
                count = len(list_frames(folder))
            except DatasetError as exc:
                raise DatasetError(f"{where}: {exc}") from None
            if count == 0:
                raise DatasetError(f"{where}: frame folder {folder} holds no images")
            for onset, offset, _label, line in intervals.get(name, []):
                if offset > count:
                    raise DatasetError(f"{line}: interval {onset}..{offset} passes the last frame of {folder} "
                                       f"({count} images)")
        except DatasetError as exc:
            videos.drop(exc, skip_bad)
            continue
        videos.append(SpottingVideo(subject, video, folder, count,
                                    tuple((a, b, c) for a, b, c, _ in intervals.get(name, [])), where))
    return videos.checked(gt_file, "gives no usable video")


def loso_folds(videos: Sequence[SpottingVideo]) -> list[tuple[str, list[SpottingVideo], list[SpottingVideo]]]:
    """Leave-one-subject-out folds: for each subject (in order of first appearance), ``(subject, train_videos,
    test_videos)`` with the subject's videos as the test fold and every other video as the training fold.

    Raises:
        DatasetError: fewer than two subjects (no training fold would remain).
    """
    subjects = list(dict.fromkeys(v.subject for v in videos))
    if len(subjects) < 2:
        raise DatasetError(f"leave-one-subject-out needs at least 2 subjects, got {len(subjects)}")
    return [(s, [v for v in videos if v.subject != s], [v for v in videos if v.subject == s]) for s in subjects]
