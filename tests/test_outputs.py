"""edgefer.outputs: output paths checked before the work, files written atomically."""

from __future__ import annotations

import os

import pytest

from edgefer.errors import OutputPathError
from edgefer.outputs import check_output_path, folder_written_atomically, write_atomically


def test_a_writable_path_is_accepted(tmp_path):
    assert check_output_path(tmp_path / "new.json") == tmp_path / "new.json"
    (tmp_path / "old.json").write_text("x")
    assert check_output_path(str(tmp_path / "old.json")) == tmp_path / "old.json"


@pytest.mark.parametrize("case", ["missing folder", "a directory", "folder is a file", "a device"])
def test_unwritable_paths_are_one_line_errors(tmp_path, case):
    (tmp_path / "file").write_text("x")
    path, needle = {
        "missing folder": (tmp_path / "nope" / "out.json", f"folder {tmp_path / 'nope'} does not exist"),
        "a directory": (tmp_path, f"{tmp_path}: it is a directory"),
        "folder is a file": (tmp_path / "file" / "out.json", f"{tmp_path / 'file'} is not a folder"),
        "a device": ("/dev/null", "/dev/null: it exists and is not a regular file"),
    }[case]
    with pytest.raises(OutputPathError) as info:
        check_output_path(path, "--json output")
    message = str(info.value)
    assert message.startswith("cannot write --json output ") and "\n" not in message
    assert needle in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(OutputPathError, match="is not writable"):
        check_output_path(folder / "out.json")


def test_write_replaces_the_file_whole_and_leaves_nothing_else(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("old content, longer than the new one")
    assert write_atomically(out, "new") == out
    assert out.read_text() == "new"
    write_atomically(out, b"\x00bytes")
    assert out.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not a temp file's 0600


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "out.json"
    out.write_text("old")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OutputPathError, match=f"cannot write output {out}: No space left on device"):
        write_atomically(out, "new")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # the temporary file is removed


def test_write_checks_the_path_first(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        write_atomically(tmp_path / "nope" / "out.json", "x")


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomically(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_a_folder_replaces_the_old_one_only_when_written(tmp_path):
    out = tmp_path / "m.split"
    out.mkdir()
    (out / "old.onnx").write_text("old")
    with pytest.raises(RuntimeError):
        with folder_written_atomically(out) as tmp:
            (tmp / "new.onnx").write_text("half")
            raise RuntimeError("the check failed")
    assert [p.name for p in out.iterdir()] == ["old.onnx"] and sorted(p.name for p in tmp_path.iterdir()) == ["m.split"]
    with folder_written_atomically(out) as tmp:
        (tmp / "new.onnx").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.onnx"] and sorted(p.name for p in tmp_path.iterdir()) == ["m.split"]
