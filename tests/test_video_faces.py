"""Face boxes, the Haar detector on real frames, crop_face at and beyond the border, and the one-face tracker."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.errors import BackendUnavailableError
from edgefer.video.faces import FaceBox, FaceDetector, HaarFaceDetector, box_iou, crop_face
from edgefer.video.reader import VideoReader
from edgefer.video.track import FaceTracker, TrackedBox


def _image(h=100, w=120):
    """uint8 (h, w, 3) whose pixel (y, x) is (y, x, 7): every crop can be checked against the coordinates."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, 7)], axis=-1).astype(np.uint8)


def test_box_iou():
    a = FaceBox(0, 0, 10, 10)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, FaceBox(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou(a, FaceBox(20, 20, 5, 5)) == 0.0


def test_crop_inside_is_the_enlarged_square():
    img = _image()
    crop = crop_face(img, FaceBox(40, 30, 20, 20), margin=0.25)  # side 20 * 1.5 = 30, centre (50, 40)
    assert crop.shape == (30, 30, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop, img[25:55, 35:65])
    # a non-square box gives a square crop on its larger side, centred
    crop = crop_face(img, FaceBox(40, 30, 10, 20), margin=0.0)
    assert crop.shape == (20, 20, 3) and np.array_equal(crop, img[30:50, 35:55])


def test_crop_at_the_border_pads_with_zeros():
    img = _image()
    crop = crop_face(img, FaceBox(-10, -5, 30, 30), margin=0.0)  # square (-10..20) x (-5..25)
    assert crop.shape == (30, 30, 3)
    assert np.all(crop[:5] == 0) and np.all(crop[:, :10] == 0)
    assert np.array_equal(crop[5:, 10:], img[0:25, 0:20])


def test_crop_at_the_border_edge_mode_repeats_pixels():
    img = _image()
    crop = crop_face(img, FaceBox(100, 90, 30, 30), margin=0.0, pad="edge")  # square (100..130) x (90..120)
    assert crop.shape == (30, 30, 3)
    assert np.array_equal(crop[:10, :20], img[90:100, 100:120])
    assert np.all(crop[10:, :, 0] == 99) and np.all(crop[:, 20:, 1] == 119)  # last row / column repeated


def test_crop_wholly_outside_and_bad_arguments():
    img = _image()
    assert not crop_face(img, FaceBox(500, 500, 10, 10), margin=0.0).any()
    with pytest.raises(ValueError, match="margin"):
        crop_face(img, FaceBox(0, 0, 10, 10), margin=-0.1)
    with pytest.raises(ValueError, match="pad"):
        crop_face(img, FaceBox(0, 0, 10, 10), pad="mirror")
    with pytest.raises(ValueError, match="positive size"):
        crop_face(img, FaceBox(0, 0, 0, 10))


def test_haar_detector_is_a_face_detector_and_checks_input():
    det = HaarFaceDetector()
    assert isinstance(det, FaceDetector)
    assert det.detect(np.zeros((240, 320, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        det.detect(np.zeros((240, 320, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        det.detect(np.zeros((240, 320, 4), np.uint8))
    with pytest.raises(BackendUnavailableError, match="cascade"):
        HaarFaceDetector(cascade="no_such_cascade.xml")


def test_haar_detector_finds_the_face_in_full_frame_pixels(sample_video):
    with VideoReader(sample_video("single_face.mp4")) as reader:
        frame = next(iter(reader))
    boxes = HaarFaceDetector().detect(frame)
    assert len(boxes) == 1
    (box,) = boxes
    h, w = frame.shape[:2]  # 360 x 640: boxes must be mapped back from the 320-wide detection copy
    assert 0 <= box.x and box.x + box.w <= w and 0 <= box.y and box.y + box.h <= h
    assert 0.2 * h < box.h < 0.9 * h and box.score >= 5
    crop = crop_face(frame, box, margin=0.2)
    assert crop.shape[0] == crop.shape[1] == round(box.w * 1.4)


def test_tracker_starts_on_largest_and_ignores_other_faces():
    tr = FaceTracker(smoothing=1.0)
    big, small = FaceBox(100, 100, 80, 80, 9), FaceBox(10, 10, 30, 30, 20)
    assert tr.update([small, big]) == [TrackedBox(0, big, True, new_track=True)]
    moved = FaceBox(106, 102, 80, 80, 9)
    # a larger face elsewhere does not steal the track
    assert tr.update([FaceBox(300, 10, 90, 90, 30), moved]) == [TrackedBox(1, moved, True)]


def test_tracker_smooths_jitter():
    tr = FaceTracker(smoothing=0.5)
    tr.update([FaceBox(100, 100, 80, 80)])
    (step,) = tr.update([FaceBox(110, 100, 80, 80)])
    assert step.box.x == pytest.approx(105.0) and tr.box == step.box


def test_tracker_bridges_short_gaps_by_interpolation():
    tr = FaceTracker(max_gap=3, smoothing=1.0)
    tr.update([FaceBox(100, 100, 80, 80)])
    for _ in range(3):  # missed up to max_gap frames: pending, decided later; the search box is held
        assert tr.update([]) == [] and tr.box == FaceBox(100, 100, 80, 80)
    decided = tr.update([FaceBox(140, 100, 80, 80)])  # the same face again: frames 1-3 bridged, then frame 4
    assert [(s.index, s.detected, s.new_track) for s in decided] == [(1, False, False), (2, False, False),
                                                                     (3, False, False), (4, True, False)]
    assert [s.box.x for s in decided] == pytest.approx([110.0, 120.0, 130.0, 140.0])


def test_tracker_drops_lost_faces_and_ends_pending_frames_face_less():
    tr = FaceTracker(max_gap=3, smoothing=1.0)
    face = FaceBox(100, 100, 80, 80)
    tr.update([face])
    assert [tr.update([]) for _ in range(3)] == [[], [], []]
    # the 4th miss: the face has gone; frames 1-4 are face-less, and a new face starts a new track
    assert tr.update([]) == [TrackedBox(i, None, False) for i in (1, 2, 3, 4)] and tr.box is None
    (step,) = tr.update([FaceBox(400, 50, 60, 60)])
    assert step.index == 5 and step.new_track and step.box.x == 400
    # another face while the tracked one is missed: it starts a new track only once the old one is lost
    other = FaceBox(10, 10, 60, 60)
    assert [tr.update([other]) for _ in range(3)] == [[], [], []]
    decided = tr.update([other])
    assert [(s.index, s.box) for s in decided] == [(6, None), (7, None), (8, None), (9, other)]
    assert decided[-1].new_track
    # the video ends inside a dropout: finish() decides the pending frames face-less
    assert tr.update([]) == [] and tr.finish() == [TrackedBox(10, None, False)] and tr.box is None


def test_tracker_without_gap_bridging_and_bad_parameters():
    tr = FaceTracker(max_gap=0, smoothing=1.0)
    tr.update([FaceBox(100, 100, 80, 80)])
    assert tr.update([]) == [TrackedBox(1, None, False)]
    for bad in ({"max_gap": -1}, {"max_gap": 1.5}, {"min_iou": 0}, {"max_centre_shift": -1}, {"smoothing": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FaceTracker(**bad)


def test_detect_near_finds_the_same_face_as_the_full_search(sample_video):
    det = HaarFaceDetector()
    with VideoReader(sample_video("single_face.mp4")) as reader:
        frames = [f for i, f in enumerate(reader) if i in (0, 40)]
    (full,) = det.detect(frames[0])
    near = det.detect_near(frames[1], full)  # 40 frames later, searching around the first frame's box
    assert len(near) == 1 and box_iou(near[0], det.detect(frames[1])[0]) > 0.7
    # a small box in the empty top-left corner: faces 0.6x..1.6x its size near it -> none
    assert det.detect_near(frames[0], FaceBox(0, 0, 40, 40)) == []
