"""Output files: checked before any work starts, written atomically.

A command that runs for minutes and then cannot write its result loses that result, so every file edgefer
writes for the user (``predict --json``, ``spot --json``, ``export --out``, ``eval-spotting --json``) is checked
with :func:`check_output_path` before the work, and written with :func:`write_atomically`: the data goes to a
temporary file in the destination's folder, which then replaces the destination in one ``os.replace``. A reader
never sees a half-written file, and a failed write leaves the old file (if any) as it was; a folder artefact
is written the same way with :func:`folder_written_atomically`. Torch-free.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputPathError


def check_output_path(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Check that a file can be written at ``path``, before the work that produces it.

    Args:
        path: the file to write; its folder must exist (nothing is created).
        what: what the file is, for the message (e.g. ``"--json output"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is a directory or another non-regular file (a device, a pipe), its folder does
            not exist or is not a directory, or the folder is not writable. The message is one line naming
            ``path``.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise OutputPathError(f"cannot write {what} {path}: it is a directory")
    if path.exists() and not path.is_file():
        raise OutputPathError(f"cannot write {what} {path}: it exists and is not a regular file")
    if not folder.exists():
        raise OutputPathError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {path}: folder {folder} is not writable")
    return path


def write_atomically(path: str | os.PathLike[str], data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically.

    The data is written to a hidden temporary file next to ``path`` (same folder, so same file system) and moved
    onto ``path`` with ``os.replace``; on any failure the temporary file is removed and ``path`` is untouched.
    A symbolic link at ``path`` is written through (its target is replaced), not replaced by a file. The new
    file gets the usual permissions (0o666 less the umask).

    Args:
        path: the destination file.
        data: the whole content.
        what: what the file is, for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: the file cannot be written (as :func:`check_output_path` says, or the write itself
            fails: disk full, permissions); one line naming ``path``.
    """
    path = Path(path)
    check_output_path(path, what)
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    payload = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputPathError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def folder_written_atomically(out: str | os.PathLike[str], prefix: str = ".edgefer-") -> Iterator[Path]:
    """A fresh folder beside ``out`` to write a folder artefact into (a split model: ``encoder.onnx`` +
    ``head.onnx``); when the ``with`` block ends without an error it replaces ``out`` (an existing folder there is
    removed first), and on an error it is removed and ``out`` is left as it was.

    Raises:
        OSError: the folder cannot be created beside ``out``.
    """
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        yield tmp
        if out.is_dir():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
