"""Spotting post-processing: frame probabilities -> intervals, and overlapping windows merged back."""

import numpy as np
import pytest

from edgefer.spotting import (Interval, label_runs, merge_gaps, merge_window_scores, scale_length_ranges,
                              scores_to_intervals, window_frame_indices)

NEUTRAL, MACRO, MICRO = 0, 1, 2


def make_scores(num_frames, segments, p=0.8):
    """(F, 3) probabilities: neutral everywhere, class ``c`` with probability ``p`` on ``[s, e]``."""
    scores = np.tile([p, (1 - p) / 2, (1 - p) / 2], (num_frames, 1))
    for start, end, cls, prob in segments:
        row = np.full(3, (1 - prob) / 2)
        row[cls] = prob
        scores[start:end + 1] = row
    return scores


def test_runs_and_gap_merging():
    labels = np.array([0, 1, 1, 0, 2, 2, 2, 0, 1])
    assert label_runs(labels, 1) == [(1, 2), (8, 8)]
    assert label_runs(labels, 2) == [(4, 6)]
    assert label_runs(labels, 0) == [(0, 0), (3, 3), (7, 7)]
    assert merge_gaps([(0, 4), (7, 9)], 2) == [(0, 9)]
    assert merge_gaps([(0, 4), (7, 9)], 1) == [(0, 4), (7, 9)]
    assert merge_gaps([(0, 1), (3, 4), (6, 7), (20, 21)], 1) == [(0, 7), (20, 21)]
    with pytest.raises(ValueError, match="gap"):
        merge_gaps([], -1)


def test_both_classes_gaps_and_short_runs():
    scores = make_scores(80, [
        (10, 19, MICRO, 0.7),   # 10 frames: a micro-expression (7..16)
        (25, 27, MICRO, 0.9),   # 3 frames: too short, dropped
        (30, 37, MACRO, 0.6),   # 8 + 10 frames of macro with a 2-frame gap (38, 39) -> one 20-frame run
        (40, 49, MACRO, 0.9),
        (55, 74, MICRO, 0.9),   # 20 frames: too long for a micro, dropped
    ])
    found = scores_to_intervals(scores, fps=30.0, gap=2)
    assert [(i.start_frame, i.end_frame, i.label) for i in found] == [(10, 19, "micro"), (30, 49, "macro")]
    assert found[0].score == pytest.approx(0.7)
    # The merged run's score averages the macro probability over all 20 frames, gap frames (0.1) included.
    assert found[1].score == pytest.approx((8 * 0.6 + 2 * 0.1 + 10 * 0.9) / 20)
    assert all(isinstance(i, Interval) for i in found)
    # Without gap merging both macro pieces are shorter than 17 frames and go.
    assert [(i.start_frame, i.label) for i in scores_to_intervals(scores, fps=30.0, gap=0)] == [(10, "micro")]


def test_length_ranges_scale_with_fps():
    assert scale_length_ranges({"micro": (7, 16), "macro": (17, None)}, 30.0) == {"micro": (7, 16),
                                                                                   "macro": (17, None)}
    assert scale_length_ranges({"micro": (7, 16), "macro": (17, None)}, 200.0) == {"micro": (47, 113),
                                                                                    "macro": (114, None)}
    assert scale_length_ranges({"micro": (7, 16)}, 60.0) == {"micro": (14, 33)}
    scores = make_scores(60, [(10, 19, MICRO, 0.8)])  # 10 frames
    assert len(scores_to_intervals(scores, fps=30.0)) == 1
    assert scores_to_intervals(scores, fps=60.0) == []  # 10 frames at 60 fps is 1/6 s: under a micro's 7/30 s
    assert len(scores_to_intervals(scores, fps=15.0)) == 0  # 2/3 s: over a micro's 17/30 s
    custom = scores_to_intervals(scores, fps=15.0, length_ranges={"micro": (1, 100)})
    assert [(i.start_frame, i.end_frame) for i in custom] == [(10, 19)]


def test_intervals_report_seconds():
    interval = scores_to_intervals(make_scores(40, [(30, 39, MICRO, 0.8)]), fps=30.0)[0]
    assert (interval.start_frame, interval.end_frame, interval.num_frames) == (30, 39, 10)
    assert interval.seconds(30.0) == pytest.approx((1.0, 40 / 30))


def test_all_neutral_and_empty_give_nothing():
    assert scores_to_intervals(make_scores(50, []), fps=30.0) == []
    assert scores_to_intervals(np.zeros((0, 3)), fps=30.0) == []


@pytest.mark.parametrize("scores, fps, message", [
    (np.zeros((5, 2)), 30.0, r"\(F, 3\)"),
    (np.full((5, 3), np.nan), 30.0, "NaN"),
    (np.zeros((5, 3)), 0.0, "frame rates"),
])
def test_bad_input_raises(scores, fps, message):
    with pytest.raises(ValueError, match=message):
        scores_to_intervals(scores, fps=fps)


def test_window_frame_indices_cover_the_video():
    def starts(num_frames, window, stride):
        return window_frame_indices(num_frames, window, stride)[:, 0].tolist()

    assert starts(64, 64, 32) == [0]
    assert starts(10, 64, 32) == [0]
    assert starts(128, 64, 32) == [0, 32, 64]
    assert starts(130, 64, 32) == [0, 32, 64, 66]  # last window aligned to the end
    assert starts(100, 64, 64) == [0, 36]
    idx = window_frame_indices(130, 64, 32)
    assert idx.shape == (4, 64) and (np.diff(idx, axis=1) == 1).all() and idx[-1, -1] == 129
    with pytest.raises(ValueError, match="stride 65 is larger than the window"):
        window_frame_indices(100, 64, 65)
    with pytest.raises(ValueError, match="num_frames"):
        window_frame_indices(0, 64, 32)
    idx = window_frame_indices(5, 8, 4)
    assert idx.shape == (1, 8) and idx.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]


def test_merge_averages_overlaps_and_ignores_padding():
    # Two windows of K = 4 frames, stride 2, over a 6-frame video; each window's frames all get one value.
    scores = np.stack([np.full((4, 3), 1.0), np.full((4, 3), 3.0)])
    merged = merge_window_scores(scores, [0, 2], num_frames=6)
    assert merged[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    # A 3-frame video fed as one padded window of 4: the padded position is ignored.
    padded = np.arange(12, dtype=float).reshape(1, 4, 3)
    assert merge_window_scores(padded, [0], 3).tolist() == padded[0, :3].tolist()
    with pytest.raises(ValueError, match="lie in no window"):
        merge_window_scores(scores, [0, 4], num_frames=10)
    with pytest.raises(ValueError, match="window starts"):
        merge_window_scores(scores, [0], num_frames=6)


def test_windows_to_intervals_end_to_end():
    # A 100-frame video at 30 fps with a micro-expression on frames 40..49, cut into windows of 32 (stride 16).
    truth = make_scores(100, [(40, 49, MICRO, 0.9)])
    starts = window_frame_indices(100, 32, 16)[:, 0]
    windows = np.stack([truth[s:s + 32] for s in starts])
    merged = merge_window_scores(windows, starts, 100)
    assert np.allclose(merged, truth)
    assert [(i.start_frame, i.end_frame, i.label) for i in scores_to_intervals(merged, 30.0)] == [(40, 49, "micro")]


def test_spotting_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys, edgefer.spotting, edgefer.cli.eval_spotting; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
