"""Generated data: no single frame tells the class, time does; shuffle_frames keeps each clip's frames."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edgefer.data import read_annotation_list, read_spotting_dataset, write_dfer_dataset, write_spotting_dataset
from edgefer.data.images import read_image
from edgefer.data.records import list_frames
from edgefer.data.synthetic import PATTERNS, RANGES, clip_parameters, generate_clip, level_order
from edgefer.errors import ArgumentError


def test_every_class_holds_the_same_frames_in_another_order():
    """For the same random draws, every class's clip has the same multiset of (x, y, r, b) frames -- only the
    order differs, and it differs between every two classes."""
    for seed in range(20):
        params = [clip_parameters(label, 24, np.random.default_rng(seed)) for label in range(len(PATTERNS))]
        frames = [np.stack([p[k] for k in ("x", "y", "r", "b")], axis=1) for p in params]
        reference = frames[0][np.lexsort(frames[0].T)]
        for label, f in enumerate(frames):
            np.testing.assert_allclose(f[np.lexsort(f.T)], reference, err_msg=PATTERNS[label])
            for name, (lo, hi) in RANGES.items():
                assert lo <= f[:, "xyrb".index(name[0])].min() and f[:, "xyrb".index(name[0])].max() <= hi
    orders = {tuple(level_order(label, 24)) for label in range(len(PATTERNS))}
    assert len(orders) == len(PATTERNS)
    assert all(sorted(order) == list(range(24)) for order in orders)


def test_pooled_single_frame_distribution_is_the_same():
    """A frame at a random index: its brightness level is uniform on [0, 1) in every class (KS distance)."""
    draws = 1500
    for label in range(len(PATTERNS)):
        rng = np.random.default_rng(label)
        lo, hi = RANGES["b"]
        u = np.sort([(clip_parameters(label, 24, rng)["b"][rng.integers(24)] - lo) / (hi - lo)
                     for _ in range(draws)])
        assert np.max(np.abs(u - np.arange(1, draws + 1) / draws)) < 0.05, PATTERNS[label]


def _frames_and_diffs(per_class: int, seed: int):
    frames, diffs, labels = [], [], []
    for label in range(len(PATTERNS)):
        for k in range(per_class):
            rng = np.random.default_rng([seed, label, k])
            clip = generate_clip(label, 24, 32, rng).astype(np.float32) / 255
            t = int(rng.integers(0, 20))
            frames.append(clip[t].ravel())
            diffs.append(clip.mean(axis=(1, 2, 3)))  # the brightness over time: a temporal feature, for contrast
            labels.append(label)
    return np.array(frames), np.array(diffs), np.array(labels)


def _nearest_centroid_accuracy(train_x, train_y, test_x, test_y):
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(len(PATTERNS))])
    pred = np.argmin(((test_x[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((pred == test_y).mean())


def test_one_frame_does_not_tell_the_class_but_time_does():
    """Per-class mean images agree, and a nearest-centroid classifier on single frames stays at chance (1/7),
    while the same classifier on the clip's brightness over time (which sees order) is far above it."""
    train_f, train_d, train_y = _frames_and_diffs(120, 0)
    test_f, test_d, test_y = _frames_and_diffs(60, 1)
    means = np.stack([train_f[train_y == c].mean(0) for c in range(len(PATTERNS))])
    assert np.abs(means - means.mean(0)).max() < 0.1
    per_frame_brightness = [train_f[train_y == c].mean() for c in range(len(PATTERNS))]
    assert np.ptp(per_frame_brightness) < 0.03
    frame_acc = _nearest_centroid_accuracy(train_f, train_y, test_f, test_y)
    time_acc = _nearest_centroid_accuracy(train_d, train_y, test_d, test_y)
    assert frame_acc < 0.26, frame_acc  # chance = 0.143; 420 test frames
    assert time_acc > 0.8, time_acc


def _digests(folder):
    return [hashlib.sha256(read_image(p).tobytes()).hexdigest() for p in list_frames(folder)]


def test_dataset_layout_and_shuffled_baseline(tmp_path):
    plain = write_dfer_dataset(tmp_path / "plain", clips_per_class=4, frames=10, size=16, seed=5)
    shuffled = write_dfer_dataset(tmp_path / "shuffled", clips_per_class=4, frames=10, size=16, seed=5,
                                  shuffle_frames=True)
    train, test = read_annotation_list(plain["train_list"]), read_annotation_list(plain["test_list"])
    assert (len(train), len(test)) == (plain["num_train"], plain["num_test"]) == (21, 7)
    assert sorted({r.label for r in test}) == list(range(7)) and all(r.num_frames == 10 for r in train)
    reordered = 0
    for a, b in zip(train + test, read_annotation_list(shuffled["train_list"]) +
                    read_annotation_list(shuffled["test_list"])):
        assert a.label == b.label and a.frame_dir.name == b.frame_dir.name
        da, db = _digests(a.frame_dir), _digests(b.frame_dir)
        assert sorted(da) == sorted(db)  # the same frames ...
        reordered += da != db  # ... in another order
    assert reordered >= 26
    again = write_dfer_dataset(tmp_path / "again", clips_per_class=4, frames=10, size=16, seed=5)
    assert _digests(read_annotation_list(again["test_list"])[3].frame_dir) == _digests(test[3].frame_dir)


def test_dataset_arguments(tmp_path):
    with pytest.raises(ArgumentError):
        write_dfer_dataset(tmp_path, clips_per_class=1)
    with pytest.raises(ArgumentError):
        write_dfer_dataset(tmp_path, clips_per_class=2, num_classes=8)
    with pytest.raises(ArgumentError):
        write_spotting_dataset(tmp_path, videos=2, frames_per_video=40, macro_per_video=2)


def test_spotting_dataset(tmp_path):
    info = write_spotting_dataset(tmp_path, videos=4, frames_per_video=120, size=16, seed=2, micro_per_video=2)
    videos = read_spotting_dataset(info["gt_file"], info["frames_root"], videos_file=info["videos_file"])
    assert len(videos) == 4 and {v.subject for v in videos} == {"s01", "s02"} and info["subjects"] == 2
    for v in videos:
        assert v.num_frames == 120 and sorted(i[2] for i in v.intervals) == ["macro", "micro", "micro"]
        spans = sorted((a, b) for a, b, _ in v.intervals)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))  # no overlap
        for a, b, kind in v.intervals:
            length = b - a + 1
            assert (7 <= length <= 16) if kind == "micro" else length >= 17
    import cv2

    info = write_spotting_dataset(tmp_path / "s32", videos=1, frames_per_video=120, size=32, seed=2)
    video = read_spotting_dataset(info["gt_file"], info["frames_root"])[0]
    frames = np.stack([cv2.GaussianBlur(read_image(p), (3, 3), 0)  # takes the pixel noise down
                       for p in list_frames(video.frame_dir)]).astype(float)
    event = np.zeros(120, bool)
    for a, b, _ in video.intervals:
        event[a - 1:b] = True
    change = np.abs(frames - np.median(frames, axis=0)).max(axis=(1, 2, 3))  # largest local change of a frame
    assert np.percentile(change[event], 10) > np.percentile(change[~event], 90)  # the events are visible


def test_default_length_lets_both_samplers_see_the_whole_shape():
    """With the default F (25) the training sampler reaches the last frame, as the test sampler does (the class
    is a shape over the whole clip)."""
    import inspect

    from edgefer.sampling import dfew_test_indices, dfew_train_indices

    frames = inspect.signature(write_dfer_dataset).parameters["frames"].default
    reach = max(dfew_train_indices(frames, np.random.default_rng(i)).max() for i in range(100))
    assert reach == frames - 1 and dfew_test_indices(frames).max() >= frames - 2
