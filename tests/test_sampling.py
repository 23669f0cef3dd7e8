"""DFEW clip sampling and window cutting (edgefer.sampling) against hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefer.errors import ArgumentError
from edgefer.sampling import (check_count, check_fits_video, check_windows, dfew_test_indices, dfew_train_indices,
                              window_bounds)


def _pairs(offsets, num_frames):
    """Expand hand-computed segment offsets into frames (o, o + 1), clamped to F - 1."""
    return [min(f, num_frames - 1) for o in offsets for f in (o, o + 1)]


# Offsets worked out by hand from tick = (F - 1) / 8, offset_i = int(tick / 2 + i * tick):
#   F = 10: tick 1.125  -> 0.5625, 1.6875, 2.8125, 3.9375, 5.0625, 6.1875, 7.3125, 8.4375
#   F = 16: tick 1.875  -> 0.9375, 2.8125, 4.6875, 6.5625, 8.4375, 10.3125, 12.1875, 14.0625
#   F = 100: tick 12.375 -> 6.1875, 18.5625, 30.9375, 43.3125, 55.6875, 68.0625, 80.4375, 92.8125
#   F = 472: tick 58.875 -> 29.4375, 88.3125, 147.1875, 206.0625, 264.9375, 323.8125, 382.6875, 441.5625
# F = 5 and F = 9 are not > 9: every offset is 0.
HAND = {
    5: [0, 1] * 8,
    9: [0, 1] * 8,
    10: [0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9],
    16: list(range(16)),
    100: _pairs([6, 18, 30, 43, 55, 68, 80, 92], 100),
    472: _pairs([29, 88, 147, 206, 264, 323, 382, 441], 472),
}


@pytest.mark.parametrize("num_frames", sorted(HAND))
def test_dfew_test_indices_hand_computed(num_frames):
    got = dfew_test_indices(num_frames)
    assert got.dtype == np.int64 and got.shape == (16,)
    assert got.tolist() == HAND[num_frames]


def test_dfew_test_one_frame_video_repeats_it():
    assert dfew_test_indices(1).tolist() == [0] * 16


def test_dfew_test_other_segment_counts():
    # 4 segments x 2 on F = 20: tick = 19 / 4 = 4.75 -> 2.375, 7.125, 11.875, 16.625
    assert dfew_test_indices(20, segments=4, frames_per_segment=2).tolist() == [2, 3, 7, 8, 11, 12, 16, 17]
    # 2 segments x 3 on F = 11: tick = (11 - 3 + 1) / 2 = 4.5 -> 2.25, 6.75
    assert dfew_test_indices(11, segments=2, frames_per_segment=3).tolist() == [2, 3, 4, 6, 7, 8]


@pytest.mark.parametrize("bad", [0, -3])
def test_dfew_bad_counts(bad):
    with pytest.raises(ValueError, match="num_frames"):
        dfew_test_indices(bad)
    with pytest.raises(ValueError, match="segments"):
        dfew_test_indices(10, segments=bad)
    with pytest.raises(TypeError):
        dfew_test_indices(10.0)


@settings(max_examples=200, deadline=None)
@given(num_frames=st.integers(1, 2000), seed=st.integers(0, 2**32 - 1))
def test_dfew_train_indices_properties(num_frames, seed):
    idx = dfew_train_indices(num_frames, np.random.default_rng(seed))
    assert idx.dtype == np.int64 and idx.shape == (16,)
    assert idx.min() >= 0 and idx.max() <= num_frames - 1
    starts, seconds = idx[0::2], idx[1::2]
    assert np.array_equal(seconds, np.minimum(starts + 1, num_frames - 1))
    avg = (num_frames - 1) // 8
    if avg > 0:  # segment i's first frame lies in [i * avg, (i + 1) * avg)
        assert np.all(starts >= np.arange(8) * avg) and np.all(starts < (np.arange(8) + 1) * avg)
        assert np.all(np.diff(idx) >= 0)
    elif num_frames > 8:  # sorted random offsets in [0, F - 1)
        assert np.all(np.diff(starts) >= 0) and starts.max() < num_frames - 1
    elif num_frames <= 8:
        assert starts.tolist() == [0] * 8


def test_dfew_train_indices_random_and_seeded():
    a = dfew_train_indices(472, np.random.default_rng(1))
    b = dfew_train_indices(472, np.random.default_rng(1))
    assert np.array_equal(a, b)
    draws = {tuple(dfew_train_indices(472, np.random.default_rng(s))) for s in range(20)}
    assert len(draws) > 15  # training sampling is random, not the test clip
    # F = 9: avg = 8 // 8 = 1, so offset_i = i exactly
    assert dfew_train_indices(9, 0).tolist() == _pairs(range(8), 9)
    with pytest.raises(TypeError, match="rng"):
        dfew_train_indices(100, rng="seed")


def test_window_bounds_examples():
    assert window_bounds(10, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert window_bounds(11, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]
    assert window_bounds(3, 64, 32) == [(0, 3)]
    assert window_bounds(64, 64, 32) == [(0, 64)]
    assert window_bounds(100, 64, 32) == [(0, 64), (32, 96), (36, 100)]


@settings(max_examples=300, deadline=None)
@given(num_frames=st.integers(1, 3000), window=st.integers(1, 200), data=st.data())
def test_window_bounds_cover_every_frame(num_frames, window, data):
    stride = data.draw(st.integers(1, window))
    bounds = window_bounds(num_frames, window, stride)
    covered = np.zeros(num_frames, dtype=int)
    for start, end in bounds:
        assert 0 <= start < end <= num_frames
        assert end - start == min(window, num_frames)
        covered[start:end] += 1
    assert covered.min() >= 1
    starts = [s for s, _ in bounds]
    assert starts == sorted(set(starts)) and starts[0] == 0 and bounds[-1][1] == num_frames
    # regular stride except possibly the end-aligned last window
    assert all(b - a == stride for a, b in zip(starts[:-2], starts[1:-1]))


def test_window_bounds_bad_arguments():
    with pytest.raises(ArgumentError, match=r"stride 9 is larger than the window \(8 frames\)"):
        window_bounds(100, 8, 9)
    with pytest.raises(ArgumentError, match="window must be >= 1, got 0"):
        window_bounds(100, 0, 1)
    with pytest.raises(ArgumentError, match="stride must be >= 1, got 0"):
        window_bounds(100, 8, 0)
    with pytest.raises(ArgumentError, match="num_frames"):
        window_bounds(0, 8, 4)
    with pytest.raises(TypeError):
        window_bounds(100, 8, 2.5)
    with pytest.raises(TypeError):
        window_bounds(100, True, 1)


def test_window_and_stride_rules():
    assert check_windows(16, 16) == (16, 16) and check_count("stride", np.int64(3)) == 3
    assert window_bounds(5, 8, 8) == [(0, 5)]  # a window longer than the video: one window over all of it
    check_fits_video("stride", 472, 472)
    with pytest.raises(ArgumentError, match=r"^stride 1000 is larger than the video \(472 frames\)$"):
        check_fits_video("stride", 1000, 472)
    with pytest.raises(ValueError, match="window 17"):  # ArgumentError is a ValueError
        check_fits_video("window", 17, 16)
