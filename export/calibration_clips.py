"""Real face clips to calibrate an int8 model on, and the held-apart clips its agreement with fp32 is measured on.

The clips are prepared exactly as the runtime prepares a clip (the one definition in :mod:`edgefer.preprocess`),
from a video, a folder of videos (cut by :func:`edgefer.pipeline.reference_clips`, the runtime's own detector,
tracker and crop) or a Former-DFER annotation list of face-crop folders. :func:`export.int8.quantize_int8` and
:func:`export.tensorrt_build.build_engine` take the :class:`CalibrationSet` this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefer.errors import ArgumentError, NoFaceError, VideoError
from edgefer.data.annotations import VIDEO_SUFFIXES
from edgefer.metadata import ModelMetadata

#: A ``--calib`` file with one of these endings is read as a Former-DFER annotation list.
ANNOTATION_LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class CalibrationSet:
    """Real clips for calibration and the held-apart clips the agreement is measured on.

    Attributes:
        calibration: (Nc, T, C, H, W) float32, preprocessed as the runtime does.
        held_out: (Nh, T, C, H, W) float32, disjoint from ``calibration``.
        split: how the two were separated, one line.
        skipped: videos that gave no clip (no face), with the reason.
    """

    calibration: np.ndarray
    held_out: np.ndarray
    split: str
    skipped: list[str] = field(default_factory=list)


def calibration_clips(source: str | Path, metadata: ModelMetadata, *, clips_per_video: int = 8) -> CalibrationSet:
    """Real face clips from a video, a folder of videos or a Former-DFER annotation list, prepared as the runtime
    prepares them, split into calibration and held-apart clips.

    Videos: cut by the runtime's own pipeline (:func:`edgefer.pipeline.reference_clips`: detection, tracking,
    crops, then :func:`edgefer.preprocess.prepare_clip` on non-overlapping windows of
    :func:`edgefer.sampling.window_bounds`, the window cutter ``predict`` and ``spot`` use; for a spotting model
    such as FESNet a window is its K consecutive frames).
    Annotation list (a ``.txt``/``.lst``/``.list`` file, ``frame_dir num_frames label`` a line, read by
    :func:`edgefer.data.read_annotation_list`; its frame folders hold face crops already): see
    :func:`annotation_clips`.

    Split: with two or more sources (videos, or the list's clips) that yield clips, whole sources are held apart
    (every third in order, the last of two: videos by sorted name, clips in list order; interleaved, so that a
    list sorted by class still holds out every class), so no held-out clip
    shares a source with a calibration clip; with one source, its windows are split in time: about the first two
    thirds calibrate, the window after them is left out (a short video's last window is aligned to its end and
    may overlap the one before it, :func:`edgefer.sampling.window_bounds`), the rest are held out.

    Args:
        source: a video file, a folder whose video files (:data:`edgefer.data.annotations.VIDEO_SUFFIXES`) are
            used, or an annotation list.
        metadata: the model's metadata (frame size, colour order, mean/std, clip length, sampling, crop rules).
        clips_per_video: at most this many clips per video or per listed clip.

    Returns:
        :class:`CalibrationSet` of (N, T, C, H, W) float32 clips.

    Raises:
        ArgumentError: ``source`` is missing, holds no video, or gives neither two sources with clips nor three
            clips of one.
        VideoError: a single video that cannot be read.
        DatasetError (an :class:`~edgefer.errors.EdgeferError`): a malformed annotation list or frame folder,
            naming ``list:line``.
    """
    from edgefer.pipeline import reference_clips

    src = Path(source)
    if clips_per_video < 1:
        raise ArgumentError(f"clips_per_video must be >= 1, got {clips_per_video}")
    if src.is_file() and src.suffix.lower() in ANNOTATION_LIST_SUFFIXES:
        return _split(src, annotation_clips(src, metadata, clips_per_video=clips_per_video), [])
    if src.is_dir():
        videos = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise ArgumentError(f"--calib {src}: the folder holds no video ({', '.join(VIDEO_SUFFIXES)})")
    elif src.is_file():
        videos = [src]
    else:
        raise ArgumentError(f"--calib {src}: no such video, folder or annotation list")
    per_video, skipped = [], []
    for video in videos:
        try:
            per_video.append((video.name, reference_clips(video, metadata, count=clips_per_video)))
        except NoFaceError as exc:
            skipped.append(f"{video.name}: {exc}")
        except VideoError as exc:
            if len(videos) == 1:
                raise
            skipped.append(f"{video.name}: {exc}")
    return _split(src, per_video, skipped)


def annotation_clips(path: str | Path, metadata: ModelMetadata, *,
                     clips_per_video: int = 8) -> list[tuple[str, np.ndarray]]:
    """The clips of a Former-DFER annotation list, prepared exactly as the runtime prepares a clip of face crops.

    Each listed frame folder (face crops, read in :func:`edgefer.data.list_frames` order as BGR like a video
    frame, :func:`edgefer.data.images.read_image`) is one clip. A model that samples a whole clip (``dfew-test``:
    MSSTNet, STT) reads the frames :func:`edgefer.preprocess.sample_indices` picks from the whole folder, as
    ``edgefer.load(...).predict(frames)`` does, so one clip per line; a model of ``consecutive`` windows (FESNet)
    or a per-frame model reads full windows of its clip length (per-frame: 16 frames) cut by
    :func:`edgefer.sampling.window_bounds` without overlap, up to ``clips_per_video`` per line. Every frame goes
    through :func:`edgefer.preprocess.prepare_frame`.

    Args:
        path: the annotation list (paths relative to its folder).
        metadata: the model's metadata.
        clips_per_video: at most this many windows per listed clip.

    Returns:
        ``[("list.txt:LINE", (n, T, C, H, W) float32)]`` in list order; a line too short for one window gives none.

    Raises:
        DatasetError: the list or a frame folder is malformed (:func:`edgefer.data.read_annotation_list`), or an
            image does not decode; one line naming ``list:line``.
    """
    from edgefer.data import list_frames, read_annotation_list  # edgefer.data: only when a list is given
    from edgefer.data.images import read_image
    from edgefer.pipeline import DEFAULT_WINDOW
    from edgefer.preprocess import prepare_frame, sample_indices
    from edgefer.sampling import window_bounds

    out = []
    classes = {"num_classes": len(metadata.labels)} if metadata.task == "dfer" else {}  # labels: not used here
    for record in read_annotation_list(path, **classes):
        frames = list_frames(record.frame_dir)
        if metadata.sampling == "dfew-test":
            windows = [sample_indices(len(frames), metadata)]
        else:
            size = metadata.clip_length if metadata.clip_length > 1 else DEFAULT_WINDOW
            windows = [np.arange(a, b) for a, b in window_bounds(len(frames), size, size)
                       if b - a == size][:clips_per_video]
        clips = [np.stack([prepare_frame(read_image(frames[i], record.source), metadata) for i in idx])
                 for idx in windows]
        if clips:
            out.append((Path(record.source).name, np.stack(clips)))
    return out


def _split(src: Path, per_source: list[tuple[str, np.ndarray]], skipped: list[str]) -> CalibrationSet:
    """Calibration / held-out clips from ``[(source name, clips)]`` by the rule of :func:`calibration_clips`."""
    per_source = [(name, clips) for name, clips in per_source if len(clips)]
    if len(per_source) >= 2:
        # every third source is held out (the last of two): interleaved, so that a list sorted by class, as DFER
        # annotation lists are, still holds out every class
        held_idx = set(range(2, len(per_source), 3)) or {len(per_source) - 1}
        held = [s for i, s in enumerate(per_source) if i in held_idx]
        kept = [s for i, s in enumerate(per_source) if i not in held_idx]
        calib = np.concatenate([c for _, c in kept])
        test = np.concatenate([c for _, c in held])
        by = "listed clip" if src.suffix.lower() in ANNOTATION_LIST_SUFFIXES else "video"
        split = f"by {by}: calibration on {_names(kept)}; held out {_names(held)}"
    elif per_source and len(per_source[0][1]) >= 3:
        clips = per_source[0][1]
        cut = max(1, (2 * len(clips)) // 3 - 1)
        calib, test = clips[:cut], clips[cut + 1:]  # one window left out between them (see the docstring)
        split = (f"in time within {per_source[0][0]}: first {cut} windows calibrate, one is skipped, last "
                 f"{len(test)} held out")
    else:
        got = sum(len(c) for _, c in per_source)
        raise ArgumentError(f"--calib {src}: {got} face clip(s) found, need 2 videos (or listed clips) with faces or "
                            f"3 clips of one (calibration and held-out clips must differ); "
                            f"{'; '.join(skipped) or 'try a longer video'}")
    return CalibrationSet(np.ascontiguousarray(calib, np.float32), np.ascontiguousarray(test, np.float32), split,
                          skipped)


def _names(per_source: list[tuple[str, np.ndarray]], shown: int = 6) -> str:
    names = [name for name, _ in per_source]
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
