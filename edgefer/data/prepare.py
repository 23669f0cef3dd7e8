"""``edgefer prepare``: raw videos -> face-crop frame folders and an annotation list, cut by the runtime's own
face detection, tracking and cropping, so that training and inference see identical crops.

Each video goes through :func:`edgefer.video.read_face_track` -- the call ``edgefer predict`` and ``edgefer
spot`` make (:mod:`edgefer.pipeline`), with the same detector choice (:func:`edgefer.detectors.make_detector`), the
same crop margin and eye alignment (``--face-margin`` / ``--face-align``, as ``edgefer export`` records them in an
artefact's metadata) and the same crop size -- and every frame of the video is written: a frame where the
tracker has no face takes the crop of the nearest frame with one (:meth:`edgefer.video.FaceTrack.clip`, what the
runtime feeds the model for such a frame). So clip sampling over the frame folder reads the frames the runtime
would read from the video. Crops are written as PNG (lossless; ``image_format="jpg"`` saves space but changes
pixels).

Input: ``VIDEO_DIR/<class>/<video>`` (class folders named by the labels, case-insensitive), or an annotation file
of ``video label`` lines (a path relative to VIDEO_DIR; a label index or a class name). Output:
``OUT_DIR/<class>/<video name>/00001.png ...``, the Former-DFER list ``OUT_DIR/annotation.txt`` (paths relative to
OUT_DIR) and ``OUT_DIR/prepare.json``, the options the crops were cut with.

Resuming: each video is written into ``<name>.part`` and renamed when complete, so a rerun skips the finished
videos and redoes a partial one; a rerun with different crop options is refused. A video in which no face is
found, or which cannot be read, is reported (``PrepareReport.no_face`` / ``failed``) and left out of the list --
never dropped silently.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import ArgumentError, NoFaceError, VideoError
from ..labels import DFER_LABELS
from .annotations import VIDEO_SUFFIXES, class_index, write_annotation_list
from .records import ClipRecord, DatasetError, list_frames

#: The options a prepared folder records, which a resumed run must repeat.
CROP_OPTIONS = ("detector", "face_margin", "face_align", "crop_size", "max_frames", "image_format")
SETTINGS_FILE = "prepare.json"
LIST_FILE = "annotation.txt"


@dataclass
class PrepareReport:
    """What :func:`prepare_videos` did.

    Attributes:
        out_dir: the output folder.
        annotation: the annotation list written (``OUT_DIR/annotation.txt``).
        records: the clips in the list (prepared now or before).
        prepared: videos cut in this run; resumed: videos found finished from an earlier run.
        no_face: videos (relative paths) where no frame had a face; failed: ``(video, reason)`` for videos that
            could not be read.
        settings: the crop options (``prepare.json``).
    """

    out_dir: Path
    annotation: Path
    records: list[ClipRecord]
    prepared: int = 0
    resumed: int = 0
    no_face: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def find_videos(video_dir: Path, annotation: Path | None, labels: Sequence[str]) -> list[tuple[Path, int]]:
    """``(video path, label)`` pairs from class folders or from an annotation file of ``video label`` lines.

    Raises:
        DatasetError: VIDEO_DIR missing, an unknown class folder or label, a listed video missing, no video found.
    """
    if not video_dir.is_dir():
        raise DatasetError(f"video folder {video_dir} does not exist or is not a folder")
    pairs: list[tuple[Path, int]] = []
    if annotation is not None:
        try:
            text = annotation.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"video annotation {annotation} cannot be read ({exc.__class__.__name__})") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{annotation}:{lineno}"
            if len(fields) != 2:
                raise DatasetError(f"{where}: expected 'video label', got {line.strip()!r}")
            video = video_dir / fields[0]
            if not video.is_file():
                raise DatasetError(f"{where}: video {video} does not exist")
            if fields[1].lstrip("-").isdigit():
                label = int(fields[1])
                if not 0 <= label < len(labels):
                    raise DatasetError(f"{where}: label {label} is out of range 0..{len(labels) - 1}")
            else:
                label = class_index(fields[1], labels, where)
            pairs.append((video, label))
    else:
        for folder in sorted(p for p in video_dir.iterdir() if p.is_dir()):
            label = class_index(folder.name, labels, str(video_dir))
            pairs += [(v, label) for v in sorted(folder.iterdir())
                      if v.is_file() and v.suffix.lower() in VIDEO_SUFFIXES]
    if not pairs:
        raise DatasetError(f"no video found in {video_dir}: expected {video_dir}/<class>/<video> with classes "
                           f"{', '.join(labels)}, or an annotation of 'video label' lines")
    return pairs


def clip_folder_name(video: Path, video_dir: Path) -> str:
    """The output folder name of a video: its path below VIDEO_DIR's class folder (or VIDEO_DIR), without the
    suffix, ``/`` -> ``__`` and white space -> ``_`` (an annotation list cannot hold spaces)."""
    rel = video.relative_to(video_dir).with_suffix("")
    parts = rel.parts[1:] if len(rel.parts) > 1 else rel.parts
    return "__".join("_".join(p.split()) for p in parts)


def prepare_videos(video_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                   annotation: str | os.PathLike | None = None, labels: Sequence[str] = DFER_LABELS,
                   detector: str | None = None, face_margin: float = 0.2, face_align: bool = False,
                   crop_size: int = 112, max_frames: int | None = None, image_format: str = "png",
                   progress: bool = True) -> PrepareReport:
    """Cut raw videos into the runtime's face-crop frame folders plus an annotation list (see the module docstring).

    Args:
        video_dir: the videos, in class folders (or listed by ``annotation``).
        out_dir: the output folder (created; an earlier run's finished videos are kept).
        annotation: optional ``video label`` list instead of class folders.
        labels: class names (folder names / label names), index = label; edgefer's DFER labels by default.
        detector: a :data:`edgefer.detectors.DETECTOR_NAMES` name; None = :data:`edgefer.detectors.DEFAULT_DETECTOR`.
        face_margin: fraction of the face box added on each side (the metadata's ``face_margin``, 0.2).
        face_align: rotate crops so the eyes are level (the metadata's ``face_align``; needs a BlazeFace detector).
        crop_size: side of the square crops in pixels (112: the models' frame size, as ``predict`` crops).
        max_frames: read at most this many frames of each video (None = all).
        image_format: ``"png"`` (lossless) or ``"jpg"``.
        progress: show a tqdm bar over the videos (on stderr).

    Returns:
        a :class:`PrepareReport`.

    Raises:
        DatasetError: bad input folders or annotation, an output folder prepared with other options, or no video
            with a face at all.
        ArgumentError: a bad option (unknown detector, margin < 0, crop size < 1, image format).
        FetchError / BackendUnavailableError: the BlazeFace detector cannot be made (offline; see ``--detector``).
        OutputPathError: the output cannot be written.
    """
    import cv2
    from tqdm import tqdm

    from .._version import __version__
    from ..detectors import DEFAULT_DETECTOR, make_detector
    from ..outputs import write_atomically
    from ..video import read_face_track

    if image_format not in ("png", "jpg"):
        raise ArgumentError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
        raise ArgumentError(f"crop_size must be an int >= 1, got {crop_size!r}")
    video_dir, out_dir = Path(video_dir), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"output folder {out_dir} exists and is not a folder")
    pairs = find_videos(video_dir, Path(annotation) if annotation is not None else None, labels)
    names = {}
    for video, label in pairs:
        key = (label, clip_folder_name(video, video_dir))
        if key in names:
            raise DatasetError(f"videos {names[key]} and {video} would both be written to "
                               f"{labels[label]}/{key[1]}; rename one")
        names[key] = video
    settings = {"detector": detector or DEFAULT_DETECTOR, "face_margin": float(face_margin),
                "face_align": bool(face_align), "crop_size": crop_size, "max_frames": max_frames,
                "image_format": image_format}
    settings_path = out_dir / SETTINGS_FILE
    earlier: dict = {}
    if settings_path.is_file():
        try:
            earlier = json.loads(settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DatasetError(f"{settings_path} is not a prepare settings file; use an empty OUT_DIR") from None
        changed = [k for k in CROP_OPTIONS if earlier.get(k) != settings[k]]
        if changed:
            was = ", ".join(f"{k}={earlier.get(k)!r}" for k in changed)
            raise DatasetError(f"{out_dir} was prepared with other crop options ({was}); rerun with the same "
                               "options or use a new OUT_DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    known_no_face = set(earlier.get("no_face", []))
    det = None  # made on the first video that needs it: a fully resumed run needs no detector
    report = PrepareReport(out_dir, out_dir / LIST_FILE, [], settings=settings)
    bar = tqdm(pairs, desc="prepare", unit="video", disable=not progress)
    for video, label in bar:
        rel = video.relative_to(video_dir).as_posix()
        final = out_dir / labels[label] / clip_folder_name(video, video_dir)
        if final.is_dir():
            report.records.append(ClipRecord(final, len(list_frames(final)), label, rel))
            report.resumed += 1
            continue
        if rel in known_no_face:
            report.no_face.append(rel)
            continue
        part = final.with_name(final.name + ".part")
        if part.exists():
            shutil.rmtree(part)
        if det is None:
            det = make_detector(detector)
        try:
            track = read_face_track(video, detector=det, margin=face_margin, crop_size=crop_size,
                                    max_frames=max_frames, align=face_align)
        except NoFaceError:
            report.no_face.append(rel)
            continue
        except VideoError as exc:
            report.failed.append((rel, str(exc)))
            continue
        crops = track.clip(range(track.num_frames))
        part.mkdir(parents=True)
        for i, crop in enumerate(crops, 1):
            path = part / f"{i:05d}.{image_format}"
            if not cv2.imwrite(str(path), crop):
                raise DatasetError(f"could not write {path}")
        os.replace(part, final)
        report.records.append(ClipRecord(final, track.num_frames, label, rel))
        report.prepared += 1
    bar.close()
    settings_out = dict(settings, edgefer_version=__version__, labels=list(labels), no_face=report.no_face,
                        failed=[f"{v}: {why}" for v, why in report.failed])
    write_atomically(settings_path, json.dumps(settings_out, indent=1) + "\n", "prepare settings")
    if not report.records:
        raise DatasetError(f"no face-crop clip could be made from {len(pairs)} video(s) in {video_dir} "
                           f"({len(report.no_face)} without a face, {len(report.failed)} unreadable)")
    write_annotation_list(report.annotation, report.records)
    return report
