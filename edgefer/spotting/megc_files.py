"""Readers for the MEGC2020 spotting text formats, and the baseline's length filters.

Formats (the organisers' baseline, ``HeyingGithub/Baseline-project-for-MEGC2020_spotting``; see
``shared/data/megc2020/README.md``):

- ground truth, one interval a line: ``subject video class onset apex offset``, class ``macro-expression`` or
  ``micro-expression``, frame numbers 1-based and inclusive (integral floats such as ``557.0`` occur);
- predictions, one file per video and class, ``<subject>_<video>.txt`` in a folder per class, one interval a
  line: ``start end score`` (1-based, inclusive).

A video is named ``<subject>_<video>`` everywhere (``s15_0401``, ``006_1``), matching the prediction file names.
Frame numbers are kept as written (1-based); the apex is read but not used by the evaluator. Pure Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from ..errors import EdgeferError
from .intervals import EXPRESSION_CLASSES

#: Datasets whose baseline length filters are known.
DATASETS: tuple[str, ...] = ("casme2", "samm_lv")

#: The MEGC2020 baseline's length filters on predictions, in frames (inclusive; None = no upper bound):
#: CAS(ME)^2 (30 fps) micro 7..16, macro >= 17; SAMM Long Videos (200 fps) micro 47..105, macro >= 106.
LENGTH_FILTERS: dict[str, dict[str, tuple[int, int | None]]] = {
    "casme2": {"micro": (7, 16), "macro": (17, None)},
    "samm_lv": {"micro": (47, 105), "macro": (106, None)},
}

_CLASS_NAMES = {"macro-expression": "macro", "micro-expression": "micro"}


class MegcFormatError(EdgeferError, ValueError):
    """A MEGC text file (ground truth or predictions) is missing or malformed; the message names file and line."""


def video_name(subject: str, video: str) -> str:
    """The id of a video, ``<subject>_<video>`` (``s15_0401``, ``006_1``), as the prediction files name it."""
    return f"{subject}_{video}"


def read_ground_truth(path: str | Path) -> list[tuple[str, int, int, str]]:
    """Read a MEGC ground-truth file into ``(video, onset, offset, label)`` tuples, in file order.

    ``label`` is ``"macro"`` or ``"micro"``; onset and offset are the file's 1-based inclusive frame numbers.

    Raises:
        MegcFormatError: the file is missing, or a line does not have 6 fields, an unknown class, a non-integer
            frame number, or an offset before its onset (the message names path and line).
    """
    rows = []
    for lineno, fields in _lines(path):
        if len(fields) != 6:
            raise MegcFormatError(f"{path}:{lineno}: expected 'subject video class onset apex offset', got "
                                  f"{' '.join(fields)!r}")
        subject, video, cls, onset, _apex, offset = fields
        if cls not in _CLASS_NAMES:
            raise MegcFormatError(f"{path}:{lineno}: class {cls!r} is not one of {tuple(_CLASS_NAMES)}")
        start, end = _int(onset, path, lineno), _int(offset, path, lineno)
        _check_range(start, end, path, lineno)
        rows.append((video_name(subject, video), start, end, _CLASS_NAMES[cls]))
    return rows


def read_video_predictions(path: str | Path, label: str, video: str | None = None
                           ) -> list[tuple[str, int, int, str, float]]:
    """Read one per-video prediction file (``start end score`` lines) into ``(video, start, end, label, score)``.

    ``video`` defaults to the file's stem. Lines keep file order (the order ``megc2023`` counting uses).

    Raises:
        MegcFormatError: missing file, a line without 3 fields, a non-integer frame, a non-numeric score, or an
            end before its start.
        ValueError: ``label`` is not ``"macro"`` or ``"micro"``.
    """
    if label not in EXPRESSION_CLASSES:
        raise ValueError(f"label {label!r} is not one of {EXPRESSION_CLASSES}")
    video = Path(path).stem if video is None else video
    rows = []
    for lineno, fields in _lines(path):
        if len(fields) != 3:
            raise MegcFormatError(f"{path}:{lineno}: expected 'start end score', got {' '.join(fields)!r}")
        start, end = _int(fields[0], path, lineno), _int(fields[1], path, lineno)
        _check_range(start, end, path, lineno)
        try:
            score = float(fields[2])
        except ValueError:
            raise MegcFormatError(f"{path}:{lineno}: score {fields[2]!r} is not a number") from None
        rows.append((video, start, end, label, score))
    return rows


def find_class_folders(root: str | Path, dataset: str) -> dict[str, Path]:
    """Locate the per-class prediction folders under ``root``: ``<dataset>_<class>/`` or ``<class>/``.

    Returns ``{label: folder}`` for the classes found (``<dataset>_<class>`` wins when both exist).

    Raises:
        MegcFormatError: ``root`` is not a folder, or holds neither folder for any class.
        ValueError: unknown dataset.
    """
    _check_dataset(dataset)
    root = Path(root)
    if not root.is_dir():
        raise MegcFormatError(f"prediction folder {root} does not exist or is not a folder")
    found = {}
    for label in EXPRESSION_CLASSES:
        for candidate in (root / f"{dataset}_{label}", root / label):
            if candidate.is_dir():
                found[label] = candidate
                break
    if not found:
        raise MegcFormatError(f"{root} holds no prediction folder: expected {dataset}_macro/, {dataset}_micro/, "
                              f"macro/ or micro/ with one <subject>_<video>.txt per video")
    return found


def read_predictions(root: str | Path, dataset: str) -> list[tuple[str, int, int, str, float]]:
    """Read every per-video prediction file of both classes under ``root`` (see :func:`find_class_folders`).

    Files are read in sorted name order, lines in file order. A class with no folder contributes nothing.

    Raises:
        MegcFormatError: as :func:`find_class_folders` and :func:`read_video_predictions`.
    """
    rows = []
    for label, folder in find_class_folders(root, dataset).items():
        for path in sorted(folder.glob("*.txt")):
            rows.extend(read_video_predictions(path, label))
    return rows


def length_range(dataset: str, label: str) -> tuple[int, int | None]:
    """The baseline's ``(min, max)`` length in frames for ``label`` on ``dataset`` (max None = unbounded)."""
    _check_dataset(dataset)
    if label not in EXPRESSION_CLASSES:
        raise ValueError(f"label {label!r} is not one of {EXPRESSION_CLASSES}")
    return LENGTH_FILTERS[dataset][label]


def filter_by_length(predictions: Iterable[Sequence], dataset: str) -> list[tuple]:
    """Keep the predictions whose length ``end - start + 1`` lies in the baseline's range for their class.

    Args:
        predictions: ``(video, start, end, label[, score])`` tuples.
        dataset: ``"casme2"`` or ``"samm_lv"`` (see :data:`LENGTH_FILTERS`).

    Returns:
        The kept tuples, order preserved.

    Raises:
        ValueError: unknown dataset, or a tuple with an unknown label.
    """
    _check_dataset(dataset)
    kept = []
    for item in predictions:
        low, high = length_range(dataset, item[3])
        length = item[2] - item[1] + 1
        if length >= low and (high is None or length <= high):
            kept.append(tuple(item))
    return kept


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")


def _lines(path: str | Path) -> Iterable[tuple[int, list[str]]]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise MegcFormatError(f"{path} does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise MegcFormatError(f"{path} is not a MEGC text file ({exc.__class__.__name__})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if fields:
            yield lineno, fields


def _int(text: str, path: str | Path, lineno: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise MegcFormatError(f"{path}:{lineno}: frame number {text!r} is not a number") from None
    if not value.is_integer() or value < 0:
        raise MegcFormatError(f"{path}:{lineno}: frame number {text!r} is not a non-negative integer")
    return int(value)


def _check_range(start: int, end: int, path: str | Path, lineno: int) -> None:
    if end < start:
        raise MegcFormatError(f"{path}:{lineno}: interval ends (frame {end}) before it starts (frame {start})")
