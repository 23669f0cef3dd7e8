"""Annotation formats of edgefer.data: Former-DFER lists (root rewriting), DFEW's split CSV, class folders, and
every bad-data case as one line naming the file and line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.data import (ClipRecord, DatasetError, parse_root, read_annotation_list, read_dfew_split,
                          scan_class_folders, write_annotation_list)
from edgefer.errors import EdgeferError


def make_folder(path: Path, frames: int, start: int = 1, size: int = 8) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + frames):
        cv2.imwrite(str(path / f"{i:05d}.png"), np.full((size, size, 3), 10 * i % 256, np.uint8))
    return path


def one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, EdgeferError) and isinstance(exc.value, ValueError)
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture()
def dataset(tmp_path):
    make_folder(tmp_path / "clips" / "a", 5)
    make_folder(tmp_path / "clips" / "b", 3)
    lst = tmp_path / "annotation" / "train.txt"
    lst.parent.mkdir()
    lst.write_text("# a comment\n../clips/a 5 0\n\n../clips/b 3 6\n")
    return tmp_path, lst


def test_list_relative_to_its_folder(dataset):
    root, lst = dataset
    records = read_annotation_list(lst)
    assert [(r.frame_dir, r.num_frames, r.label) for r in records] == [(root / "clips" / "a", 5, 0),
                                                                          (root / "clips" / "b", 3, 6)]
    assert records[0].source == f"{lst}:2" and records[1].source == f"{lst}:4" and records.skipped == 0


def test_root_folder_and_prefix_rewrite(dataset, tmp_path):
    root, _ = dataset
    rel = tmp_path / "rel.txt"
    rel.write_text("clips/a 5 1\n")
    assert read_annotation_list(rel, root=root)[0].frame_dir == root / "clips" / "a"
    shipped = tmp_path / "shipped.txt"  # a list with its author's absolute paths, as DFER codebases ship them
    shipped.write_text("/home/author/DFEW/clips/b 3 2\n")
    with pytest.raises(DatasetError):
        read_annotation_list(shipped)
    records = read_annotation_list(shipped, root=parse_root(f"/home/author/DFEW={root}"))
    assert records[0].frame_dir == root / "clips" / "b"
    assert parse_root("/data") == Path("/data") and parse_root("/a=/b") == ("/a", "/b")


@pytest.mark.parametrize("line, needles", [
    ("../clips/missing 5 0", ["train.txt:2", "missing", "does not exist"]),
    ("../clips/a 6 0", ["train.txt:2", "holds 5 images, the list says 6"]),
    ("../clips/a 5 7", ["train.txt:2", "label 7 is out of range 0..6"]),
    ("../clips/a 5 -1", ["train.txt:2", "label -1"]),
    ("../clips/a five 0", ["train.txt:2", "num_frames 'five'"]),
    ("../clips/a 5", ["train.txt:2", "expected 'frame_dir num_frames label'"]),
])
def test_bad_lines_name_file_and_line(dataset, line, needles):
    _, lst = dataset
    lst.write_text("../clips/b 3 0\n" + line + "\n")
    with pytest.raises(DatasetError) as exc:
        read_annotation_list(lst)
    one_line(exc, *needles)


def test_missing_frame_is_named(tmp_path):
    folder = make_folder(tmp_path / "c", 3)
    make_folder(folder, 2, start=5)  # 1 2 3 5 6: frame 4 is missing
    lst = tmp_path / "l.txt"
    lst.write_text("c 6 0\n")
    with pytest.raises(DatasetError) as exc:
        read_annotation_list(lst)
    one_line(exc, "l.txt:1", "holds 5 images, the list says 6", "frame 4 is missing")


def test_unreadable_image_named_with_line(dataset):
    root, lst = dataset
    (root / "clips" / "b" / "00002.png").write_bytes(b"not a png")
    records = read_annotation_list(lst)  # decoding is deferred by default ...
    with pytest.raises(DatasetError) as exc:
        read_annotation_list(lst, check_images=True)  # ... or done up front
    one_line(exc, "train.txt:4", "00002.png", "not a readable image")
    from edgefer.data import DferClipDataset

    with pytest.raises(DatasetError) as exc:
        DferClipDataset(records, train=False, frame_size=8)[1]  # ... and when the clip is loaded
    one_line(exc, "train.txt:4", "00002.png")


def test_skip_bad_counts(dataset):
    root, lst = dataset
    lst.write_text("../clips/a 5 0\n../clips/gone 5 0\n../clips/b 4 0\n../clips/b 3 9\n../clips/b 3 1\n")
    records = read_annotation_list(lst, skip_bad=True)
    assert [r.source for r in records] == [f"{lst}:1", f"{lst}:5"]
    assert records.skipped == 3 and len(records.problems) == 3 and "train.txt:2" in records.problems[0]
    lst.write_text("../clips/gone 5 0\n")
    with pytest.raises(DatasetError) as exc:
        read_annotation_list(lst, skip_bad=True)
    one_line(exc, "no usable clip", "1 bad entries skipped")


def test_missing_and_empty_list(tmp_path):
    with pytest.raises(DatasetError) as exc:
        read_annotation_list(tmp_path / "nope.txt")
    one_line(exc, "nope.txt", "does not exist")


def test_dfew_split_one_based(tmp_path):
    frames = tmp_path / "clip_224x224"
    make_folder(frames / "00001", 4)
    make_folder(frames / "00012", 6)
    csv = tmp_path / "set_1.csv"
    csv.write_text("video_name,label\n1,1\n12,7\n")
    records = read_dfew_split(csv, frames)
    assert [(r.frame_dir.name, r.num_frames, r.label) for r in records] == [("00001", 4, 0), ("00012", 6, 6)]
    assert records[1].source == f"{csv}:3"
    csv.write_text("video_name,label\n1,0\n")
    with pytest.raises(DatasetError) as exc:
        read_dfew_split(csv, frames)
    one_line(exc, "set_1.csv:2", "label 0 is out of range 1..7")
    csv.write_text("video_name,label\n1,3\n5,3\n")
    with pytest.raises(DatasetError) as exc:
        read_dfew_split(csv, frames)
    one_line(exc, "set_1.csv:3", "00005", "does not exist")
    assert read_dfew_split(csv, frames, skip_bad=True).skipped == 1
    csv.write_text("name,emotion\n1,3\n")
    with pytest.raises(DatasetError) as exc:
        read_dfew_split(csv, frames)
    one_line(exc, "set_1.csv:1", "video_name,label")


def test_class_folders(tmp_path):
    make_folder(tmp_path / "happy" / "clip10", 3)
    make_folder(tmp_path / "happy" / "clip2", 2)
    make_folder(tmp_path / "FEAR" / "x", 4)
    records = scan_class_folders(tmp_path)
    assert [(r.frame_dir.name, r.label, r.num_frames) for r in records] == [("clip2", 0, 2), ("clip10", 0, 3),
                                                                              ("x", 6, 4)]
    make_folder(tmp_path / "happy" / "clip3.part", 1)  # an interrupted `edgefer prepare` video: not a clip
    assert len(scan_class_folders(tmp_path)) == 3
    (tmp_path / "Sad").mkdir()
    (tmp_path / "Sad" / "v.mp4").write_bytes(b"")
    with pytest.raises(DatasetError) as exc:
        scan_class_folders(tmp_path)
    one_line(exc, "holds videos", "edgefer prepare")
    (tmp_path / "Sad" / "v.mp4").unlink()
    (tmp_path / "bored").mkdir()
    with pytest.raises(DatasetError) as exc:
        scan_class_folders(tmp_path)
    one_line(exc, "'bored' is not a class")


def test_write_then_read_round_trip(dataset, tmp_path):
    root, lst = dataset
    records = read_annotation_list(lst)
    (tmp_path / "copy").mkdir()
    out = write_annotation_list(tmp_path / "copy" / "list.txt", records)
    again = read_annotation_list(out)
    assert [(r.frame_dir, r.num_frames, r.label) for r in again] == [(r.frame_dir, r.num_frames, r.label)
                                                                      for r in records]
    assert "clips/a 5 0" in out.read_text() and not out.read_text().startswith("/")
    bad = [ClipRecord(root / "with space", 1, 0)]
    with pytest.raises(DatasetError):
        write_annotation_list(tmp_path / "x.txt", bad)
