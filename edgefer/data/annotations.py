"""DFER annotation files: Former-DFER's lists, DFEW's official split CSVs, and a user's class folders.

Formats:

- **annotation list** (Former-DFER and the DFER codebases after it: ``annotation/DFEW_set_1_train.txt``,
  ``FERV39K_train.txt``, ``AFEW_validation.txt``): one clip a line, ``frame_dir num_frames label``, separated by
  white space; ``label`` is 0..6 in edgefer's order (:data:`edgefer.labels.DFER_LABELS`). Blank lines and lines
  starting with ``#`` are ignored. Paths: see :func:`resolve_frame_dir` (``root``).
- **DFEW's official split** (``EmoLabel_DataSplit/train(single-labeled)/set_N.csv`` and
  ``test(single-labeled)/set_N.csv``, N = 1..5): a CSV with the header ``video_name,label``; ``video_name`` is the
  clip's number (``1`` -> frame folder ``00001``, as DFEW's ``Clip/clip_224x224/00001/`` names it) and ``label``
  is 1-based, 1 Happy, 2 Sad, 3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear: edgefer's label is ``label - 1``
  (the same order; MAE-DFER's DFEW preprocessing script maps it the same way).
- **class folders** (:func:`scan_class_folders`): ``ROOT/<class name>/<clip>/`` frame folders, one folder per
  class named by the label (case-insensitive). Videos are not read here: cut them into face-crop frame folders
  with ``edgefer prepare`` first, so that training sees the runtime's face crops.

Every check names the file and line (``set_1_train.txt:12: ...``). With ``skip_bad=True`` a bad entry is dropped
instead, and the returned :class:`~edgefer.data.records.RecordList` counts it (``skipped``, ``problems``). Checking
that each image decodes costs a read of every image; it is done when a clip is loaded
(:class:`~edgefer.data.clips.DferClipDataset`), or up front with ``check_images=True``. Torch-free.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence, Union

from ..labels import DFER_LABELS
from .records import IMAGE_SUFFIXES, ClipRecord, DatasetError, RecordList, first_gap, list_frames

#: What ``root`` may be: a folder that relative paths are joined to, or an ``(old_prefix, new_prefix)`` pair.
Root = Union[str, os.PathLike, tuple]

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def parse_root(text: str) -> Root:
    """A ``--root`` value: ``OLD=NEW`` -> the prefix pair ``("OLD", "NEW")``; anything else -> a folder Path."""
    old, sep, new = text.partition("=")
    if sep and old:
        return (old, new)
    return Path(text)


def resolve_frame_dir(path_text: str, list_path: Path, root: Root | None) -> Path:
    """Where a listed frame folder is, under the root rule.

    - ``root=(OLD, NEW)``: a path that starts with the prefix ``OLD`` gets it replaced by ``NEW`` (the lists that
      DFER codebases ship hold their authors' absolute paths, ``/home/x/DFEW/Clip/...``); other paths are kept.
    - ``root=FOLDER``: a relative path is joined to ``FOLDER``; an absolute one is kept.
    - ``root=None``: a relative path is relative to the annotation list's own folder (as a playlist's entries are).
    """
    if isinstance(root, tuple):
        if len(root) != 2:
            raise TypeError(f"root as a prefix rewrite must be (old, new), got {root!r}")
        old, new = str(root[0]), str(root[1])
        return Path(os.path.normpath(new + path_text[len(old):] if path_text.startswith(old) else path_text))
    path = Path(path_text)
    if path.is_absolute():
        return Path(os.path.normpath(path))
    return Path(os.path.normpath((Path(root) if root is not None else list_path.parent) / path))


def check_clip_folder(frame_dir: Path, num_frames: int | None, where: str, *, check_images: bool = False) -> int:
    """Check a frame folder against its stated frame count; return the count of images.

    Raises:
        DatasetError: ``"<where>: frame folder ... does not exist"``, ``"... holds 23 images, the list says 24
            (frame 7 is missing)"``, ``"... holds no images"``, or with ``check_images`` an image that does not
            decode.
    """
    try:
        frames = list_frames(frame_dir)
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    if not frames:
        raise DatasetError(f"{where}: frame folder {frame_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if num_frames is not None and len(frames) != num_frames:
        gap = first_gap(frames)
        hint = f" (frame {gap} is missing)" if gap is not None and len(frames) < num_frames else ""
        raise DatasetError(f"{where}: frame folder {frame_dir} holds {len(frames)} images, the list says "
                           f"{num_frames}{hint}")
    if check_images:
        from .images import read_image

        for image in frames:
            read_image(image, where)
    return len(frames)


def _label(text: str, num_classes: int, where: str, *, one_based: bool = False) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DatasetError(f"{where}: label {text!r} is not an integer") from None
    low, high = (1, num_classes) if one_based else (0, num_classes - 1)
    if not low <= value <= high:
        raise DatasetError(f"{where}: label {value} is out of range {low}..{high}")
    return value - 1 if one_based else value


def read_annotation_list(path: str | os.PathLike, *, root: Root | None = None, skip_bad: bool = False,
                         num_classes: int = len(DFER_LABELS), check_images: bool = False) -> RecordList:
    """Read a Former-DFER annotation list (``frame_dir num_frames label`` a line) and check it against the disk.

    Args:
        path: the list file.
        root: how listed paths are resolved (:func:`resolve_frame_dir`): None (relative to the list's folder), a
            folder (relative paths joined to it) or ``(old_prefix, new_prefix)`` (from ``--root OLD=NEW``,
            :func:`parse_root`).
        skip_bad: drop bad lines instead of raising; the result counts them.
        num_classes: labels must lie in ``0..num_classes - 1`` (7: edgefer's DFER labels).
        check_images: also decode every image now (slow on a full dataset; otherwise a bad image is reported when
            its clip is loaded, with the same file:line).

    Returns:
        a :class:`~edgefer.data.records.RecordList` of :class:`ClipRecord` in file order (``source`` =
        ``"path:line"``), with ``skipped`` / ``problems``.

    Raises:
        DatasetError: the list is missing, unreadable or empty of clips; or (without ``skip_bad``) a line without
            3 fields, a non-integer ``num_frames`` < 1, a label out of range, a missing frame folder, a folder whose
            image count differs from ``num_frames``, an image that does not decode (with ``check_images``). One
            line, naming ``path:line``.
    """
    path = Path(path)
    records = RecordList()
    for lineno, line in enumerate(_read_text(path, "annotation list").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            if len(fields) != 3:
                raise DatasetError(f"{where}: expected 'frame_dir num_frames label', got {line.strip()!r}")
            frame_dir = resolve_frame_dir(fields[0], path, root)
            try:
                num_frames = int(fields[1])
            except ValueError:
                raise DatasetError(f"{where}: num_frames {fields[1]!r} is not an integer") from None
            if num_frames < 1:
                raise DatasetError(f"{where}: num_frames must be >= 1, got {num_frames}")
            label = _label(fields[2], num_classes, where)
            check_clip_folder(frame_dir, num_frames, where, check_images=check_images)
        except DatasetError as exc:
            records.drop(exc, skip_bad)
            continue
        records.append(ClipRecord(frame_dir, num_frames, label, where))
    return records.checked(path, "lists no usable clip")


def dfew_frame_dir(frames_root: Path, video_name: str) -> Path:
    """The frame folder of DFEW clip ``video_name`` (``"1"`` or ``"00001"``): ``frames_root/00001``."""
    return Path(frames_root) / f"{int(video_name):05d}"


def read_dfew_split(csv_path: str | os.PathLike, frames_root: str | os.PathLike, *, skip_bad: bool = False,
                    check_images: bool = False) -> RecordList:
    """Read one of DFEW's official ``EmoLabel_DataSplit`` CSVs (``video_name,label``, 1-based labels).

    Args:
        csv_path: e.g. ``EmoLabel_DataSplit/train(single-labeled)/set_1.csv``.
        frames_root: the folder holding DFEW's per-clip frame folders ``00001/``, ``00002/``, ... (e.g.
            ``Clip/clip_224x224``, or a folder of face crops made from it).
        skip_bad, check_images: as :func:`read_annotation_list`.

    Returns:
        a :class:`~edgefer.data.records.RecordList` of :class:`ClipRecord` with ``label = csv label - 1`` (edgefer's
        order, :data:`edgefer.labels.DFER_LABELS`) and ``num_frames`` = the images found in the folder (the CSV
        states no count).

    Raises:
        DatasetError: the CSV is missing, lacks the ``video_name`` / ``label`` columns, a ``video_name`` that is not
            a clip number, a label outside 1..7, a missing or empty frame folder; one line naming ``csv_path:line``.
    """
    csv_path, frames_root = Path(csv_path), Path(frames_root)
    text = _read_text(csv_path, "DFEW split CSV")
    rows = list(csv.reader(text.lstrip("\ufeff").splitlines()))
    if not rows:
        raise DatasetError(f"{csv_path} is empty; expected a 'video_name,label' header and one clip a line")
    header = [h.strip().lower() for h in rows[0]]
    if "video_name" not in header or "label" not in header:
        raise DatasetError(f"{csv_path}:1: expected the header 'video_name,label' of DFEW's EmoLabel_DataSplit, "
                           f"got {','.join(rows[0])!r}")
    name_col, label_col = header.index("video_name"), header.index("label")
    records = RecordList()
    for lineno, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_path}:{lineno}"
        try:
            if len(row) <= max(name_col, label_col):
                raise DatasetError(f"{where}: expected 'video_name,label', got {','.join(row)!r}")
            name = row[name_col].strip()
            if not name.isdigit():
                raise DatasetError(f"{where}: video_name {name!r} is not a DFEW clip number")
            label = _label(row[label_col].strip(), len(DFER_LABELS), where, one_based=True)
            frame_dir = dfew_frame_dir(frames_root, name)
            num_frames = check_clip_folder(frame_dir, None, where, check_images=check_images)
        except DatasetError as exc:
            records.drop(exc, skip_bad)
            continue
        records.append(ClipRecord(frame_dir, num_frames, label, where))
    return records.checked(csv_path, "lists no usable clip")


def class_index(name: str, labels: Sequence[str], where: str) -> int:
    """The index of class folder ``name`` in ``labels`` (case-insensitive).

    Raises:
        DatasetError: an unknown class name; the message lists the expected ones.
    """
    lowered = [label.lower() for label in labels]
    if name.lower() not in lowered:
        raise DatasetError(f"{where}: folder {name!r} is not a class; expected one of {', '.join(labels)} "
                           "(case-insensitive)")
    return lowered.index(name.lower())


def scan_class_folders(root: str | os.PathLike, *, labels: Sequence[str] = DFER_LABELS, skip_bad: bool = False,
                       check_images: bool = False) -> RecordList:
    """A user's own clips: ``root/<class>/<clip>/`` frame folders, the class named by a label of ``labels``.

    Class folders are matched to ``labels`` case-insensitively (``happy/`` -> 0 with the DFER labels); clips are
    taken in natural name order within each class, classes in ``labels`` order; ``*.part`` folders (a video that
    ``edgefer prepare`` had not finished) are not clips. A class folder that holds video
    files instead of frame folders is refused: run ``edgefer prepare VIDEO_DIR OUT_DIR`` first, which writes the
    runtime's face crops (training on uncropped frames would not match deployment).

    Returns:
        a :class:`~edgefer.data.records.RecordList` of :class:`ClipRecord` (``source`` = the clip folder).

    Raises:
        DatasetError: ``root`` is not a folder, a sub-folder is not one of ``labels``, a class folder holds videos,
            a clip folder holds no images (or, with ``check_images``, an image that does not decode), or no clip is
            found at all.
    """
    from .records import _natural_key

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"class-folder dataset {root} does not exist or is not a folder")
    found: dict[int, list[ClipRecord]] = {}
    records = RecordList()  # the bad entries; the clips are added in label order below
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name)):
        try:
            label = class_index(folder.name, labels, str(root))
            videos = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
            if videos:
                raise DatasetError(f"{folder} holds videos ({videos[0].name}, ...): cut them into face-crop frame "
                                   f"folders first with `edgefer prepare {root} OUT_DIR`")
        except DatasetError as exc:
            records.drop(exc, skip_bad)
            continue
        clips = (p for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".part"))  # .part: unfinished
        for clip in sorted(clips, key=lambda p: _natural_key(p.name)):
            try:
                count = check_clip_folder(clip, None, str(clip), check_images=check_images)
            except DatasetError as exc:
                records.drop(exc, skip_bad)
                continue
            found.setdefault(label, []).append(ClipRecord(clip, count, label, str(clip)))
    records.extend(r for label in sorted(found) for r in found[label])
    return records.checked(root, f"holds no clip: expected {root}/<class>/<clip>/ frame folders, classes "
                                 f"{', '.join(labels)}")


def write_annotation_list(path: str | os.PathLike, records: Sequence[ClipRecord], *,
                          relative_to: str | os.PathLike | None = None) -> Path:
    """Write records as a Former-DFER annotation list (atomically), ``frame_dir num_frames label`` a line.

    Args:
        path: the list file to write.
        records: the clips.
        relative_to: write frame folders relative to this folder (default: the list's own folder, which is what
            :func:`read_annotation_list` assumes without ``root``), so the dataset can be moved as a whole.

    Raises:
        OutputPathError: the list cannot be written; DatasetError: a frame folder contains white space (the format
            cannot hold it).
    """
    from ..outputs import write_atomically

    path = Path(path)
    base = Path(os.path.abspath(relative_to if relative_to is not None else path.parent))
    lines = []
    for r in records:
        target = Path(os.path.abspath(r.frame_dir))
        try:
            shown = os.path.relpath(target, base)
        except ValueError:  # another drive (Windows)
            shown = str(target)
        if any(ch.isspace() for ch in shown):
            raise DatasetError(f"frame folder {shown!r} contains white space, which an annotation list cannot hold")
        lines.append(f"{Path(shown).as_posix()} {r.num_frames} {r.label}\n")
    return write_atomically(path, "".join(lines), "annotation list")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise DatasetError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{what} {path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise DatasetError(f"{what} {path} cannot be read: {exc.strerror}") from None
