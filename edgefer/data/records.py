"""What a dataset is made of: clip records, the dataset error, and the one rule for listing a frame folder.

A DFER clip on disk is a *frame folder*: a folder of face-crop images (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``,
any case), read in natural file-name order (digit runs compare as numbers, so ``2.jpg`` comes before ``10.jpg``;
for zero-padded names such as DFEW's ``00001.jpg`` this is plain sorted order). Every reader of
:mod:`edgefer.data` lists frames through :func:`list_frames`. Torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgeferError

#: Image file endings a frame folder may hold (compared case-insensitively).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetError(EdgeferError, ValueError):
    """A dataset file or folder is missing or malformed: an annotation line, a frame folder whose image count
    disagrees with its ``num_frames``, a label out of range, an unreadable image. The message is one line and
    names the file and line (``list.txt:12: ...``) or the image."""


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip of a DFER dataset.

    Attributes:
        frame_dir: the clip's frame folder (absolute or relative to the current directory, after root rewriting).
        num_frames: F, images in the folder (checked when the list is read).
        label: class index in edgefer's order (:data:`edgefer.labels.DFER_LABELS`: 0 Happy, 1 Sad, 2 Neutral,
            3 Angry, 4 Surprise, 5 Disgust, 6 Fear), or in the caller's own label set.
        source: where the record came from, ``"file:line"`` (or the folder it was found in), for messages.
    """

    frame_dir: Path
    num_frames: int
    label: int
    source: str = ""


class RecordList(list):
    """A ``list`` of records that also says what was dropped while reading it (with ``skip_bad=True``).

    The readers add records with ``append``, hand every bad entry to :meth:`drop`, and return :meth:`checked`.

    Attributes:
        problems: one line per dropped entry, the message the error would have had.
        skipped: how many entries were dropped (``len(problems)``).
    """

    def __init__(self, items=(), problems: list[str] | None = None) -> None:
        super().__init__(items)
        self.problems = list(problems or [])

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def drop(self, exc: DatasetError, skip_bad: bool) -> None:
        """A bad entry: without ``skip_bad``, raise ``exc`` (its one-line message names file and line); with it,
        keep the message in :attr:`problems`."""
        if not skip_bad:
            raise exc
        self.problems.append(str(exc))

    def checked(self, source: object, what: str) -> "RecordList":
        """``self``, unless nothing usable was read.

        Raises:
            DatasetError: the list is empty, e.g. "train.txt lists no usable clip (3 bad entries skipped, first:
                ...)"; ``what`` is the middle of that sentence.
        """
        if not self:
            raise DatasetError(f"{source} {what}" + (f" ({self.skipped} bad entries skipped, first: "
                                                    f"{self.problems[0]})" if self.problems else ""))
        return self


def _natural_key(name: str) -> list:
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def list_frames(frame_dir: str | Path) -> list[Path]:
    """The images of a frame folder, in natural file-name order (see the module docstring).

    Args:
        frame_dir: the folder.

    Returns:
        the image paths (other files and sub-folders are ignored); empty when there are none.

    Raises:
        DatasetError: ``frame_dir`` does not exist or is not a folder.
    """
    folder = Path(frame_dir)
    if not folder.is_dir():
        raise DatasetError(f"frame folder {folder} does not exist" if not folder.exists()
                           else f"{folder} is not a frame folder (it is a file)")
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(images, key=lambda p: _natural_key(p.name))


def first_gap(frames: list[Path]) -> int | None:
    """The first missing number in a folder of numbered frames (``1.png 2.png 4.png`` -> 3), or None.

    Only names made of a common prefix and a number are considered; anything else returns None.
    """
    numbers = []
    for p in frames:
        match = re.fullmatch(r"(.*?)(\d+)", p.stem)
        if match is None:
            return None
        numbers.append(int(match.group(2)))
    for a, b in zip(numbers, numbers[1:]):
        if b != a + 1:
            return a + 1 if b > a + 1 else None
    return None
