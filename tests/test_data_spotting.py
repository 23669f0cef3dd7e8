"""Spotting data: MEGC ground truth -> videos, frame labels, leave-one-subject-out folds, K-frame windows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgefer.data import (IGNORE_INDEX, DatasetError, SpottingVideo, SpottingWindowDataset, frame_labels,
                          loso_folds, read_spotting_dataset)
from edgefer.sampling import window_bounds
from edgefer.spotting import MegcFormatError


def make_video(folder: Path, frames: int) -> None:
    folder.mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"img{i + 1}.png"), np.full((6, 6, 3), i % 256, np.uint8))


@pytest.fixture()
def dataset(tmp_path):
    frames = tmp_path / "frames"
    make_video(frames / "s15" / "0401", 40)
    make_video(frames / "s15" / "0402", 20)
    make_video(frames / "s16" / "0101", 30)
    gt = tmp_path / "gt.txt"  # the MEGC2020 format, integral floats as CAS(ME)^2's file writes them
    gt.write_text("s15 0401 macro-expression 5.0 9.0 24.0\n"
                  "s16 0101 micro-expression 3 5 10\n"
                  "s15 0401 micro-expression 20 22 27\n")
    videos = tmp_path / "videos.txt"
    videos.write_text("s15 0401\ns15 0402\ns16 0101\n")
    return tmp_path, gt, videos


def test_read_and_frame_labels(dataset):
    root, gt, videos_file = dataset
    videos = read_spotting_dataset(gt, root / "frames")
    assert [v.name for v in videos] == ["s15_0401", "s16_0101"]  # the ground truth lists event videos only
    v = videos[0]
    assert (v.subject, v.video, v.num_frames) == ("s15", "0401", 40)
    assert v.intervals == ((5, 24, "macro"), (20, 27, "micro"))
    labels = frame_labels(v)
    assert labels.dtype == np.int64 and labels.shape == (40,)
    expected = np.zeros(40, np.int64)
    expected[4:24] = 1  # gt frames 5..24 (1-based, inclusive) = images 4..23
    expected[19:27] = 2  # micro overrides the overlap 20..24
    np.testing.assert_array_equal(labels, expected)
    with_all = read_spotting_dataset(gt, root / "frames", videos_file=videos_file)
    assert [v.name for v in with_all] == ["s15_0401", "s15_0402", "s16_0101"] and with_all[1].intervals == ()


def test_bad_spotting_data(dataset):
    root, gt, videos_file = dataset
    gt.write_text("s15 0402 macro-expression 5 9 21\n")
    with pytest.raises(DatasetError, match=r"gt\.txt:1: interval 5\.\.21 passes the last frame .*20 images"):
        read_spotting_dataset(gt, root / "frames")
    gt.write_text("s15 0401 macro-expression 5 9 24\ns17 0101 macro-expression 5 9 24\n")
    with pytest.raises(DatasetError, match=r"gt\.txt:2: frame folder .*s17.*does not exist"):
        read_spotting_dataset(gt, root / "frames")
    kept = read_spotting_dataset(gt, root / "frames", skip_bad=True)
    assert len(kept) == 1 and kept.skipped == 1
    gt.write_text("s15 0401 happy 5 9 24\n")
    with pytest.raises(MegcFormatError, match=r"gt\.txt:1"):
        read_spotting_dataset(gt, root / "frames")


def test_pattern(dataset, tmp_path):
    root, gt, _ = dataset
    flat = tmp_path / "flat"
    make_video(flat / "s15_0401", 40)
    make_video(flat / "s16_0101", 30)
    assert [v.frame_dir for v in read_spotting_dataset(gt, flat, pattern="{name}")] == [flat / "s15_0401",
                                                                                      flat / "s16_0101"]


def test_loso_folds(dataset):
    root, gt, videos_file = dataset
    videos = read_spotting_dataset(gt, root / "frames", videos_file=videos_file)
    folds = loso_folds(videos)
    assert [s for s, _, _ in folds] == ["s15", "s16"]
    for subject, train, test in folds:
        assert {v.subject for v in test} == {subject} and subject not in {v.subject for v in train}
        assert len(train) + len(test) == len(videos)
    assert [v.name for v in folds[0][2]] == ["s15_0401", "s15_0402"]
    with pytest.raises(DatasetError, match="at least 2 subjects"):
        loso_folds(videos[:2])


def test_windows_and_labels(dataset):
    root, gt, videos_file = dataset
    videos = read_spotting_dataset(gt, root / "frames", videos_file=videos_file)
    ds = SpottingWindowDataset(videos, window=16, stride=8, frame_size=8)
    expected = [(v, start) for v, video in enumerate(videos)
                for start, _ in window_bounds(video.num_frames, 16, 8)]
    assert ds.windows == expected
    frames, labels = ds[2]  # the 40-frame video's window 16..31
    assert frames.dtype == torch.float32 and frames.shape == (16, 3, 8, 8)
    assert labels.dtype == torch.int64 and labels.shape == (16,)
    np.testing.assert_array_equal(labels.numpy(), frame_labels(videos[0])[16:32])
    assert torch.allclose(frames[:, 0, 0, 0], torch.arange(16, 32, dtype=torch.float32) / 255)  # frame order


def test_short_video_is_padded_and_ignored(tmp_path):
    make_video(tmp_path / "v", 10)
    video = SpottingVideo("s1", "1", tmp_path / "v", 10, ((2, 4, "micro"),))
    ds = SpottingWindowDataset([video], window=16, stride=8, frame_size=4)
    assert len(ds) == 1
    frames, labels = ds[0]
    assert labels.tolist() == [0, 2, 2, 2] + [0] * 6 + [IGNORE_INDEX] * 6
    assert torch.equal(frames[10:], frames[9:10].expand(6, -1, -1, -1))  # the last frame repeated
