"""VideoReader and count_frames: real frames, real counts, clear VideoErrors for bad files, and a warning for a
file cut short."""

from __future__ import annotations

import itertools
import warnings

import cv2
import numpy as np
import pytest

from edgefer.errors import VideoError
from edgefer.video.reader import DEFAULT_FPS, TruncatedVideoWarning, VideoReader, count_frames, usable_fps


def _write_avi(path, frames, fps=12.0):
    h, w = frames[0].shape[:2] if frames else (48, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_reads_synthetic_video_frames_in_order(tmp_path):
    # each frame's brightness encodes its index, so order and count can be checked after MJPEG compression
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    path = _write_avi(tmp_path / "ramp.avi", frames, fps=12.0)
    with VideoReader(path) as reader:
        assert reader.fps == pytest.approx(12.0) and reader.fps_reported
        assert (reader.width, reader.height) == (64, 48)
        got = list(reader)
        assert reader.frames_read == 20
    assert len(got) == 20
    assert all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in got)
    means = [float(f.mean()) for f in got]
    assert np.allclose(means, [10 * i for i in range(20)], atol=3)
    assert count_frames(path) == 20


def test_iterates_once(tmp_path):
    path = _write_avi(tmp_path / "a.avi", [np.zeros((48, 64, 3), np.uint8)] * 3)
    reader = VideoReader(path)
    assert len(list(reader)) == 3
    with pytest.raises(VideoError, match="once"):
        iter(reader)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found") as info:
        VideoReader(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(info.value)


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="cannot open") as info:
        VideoReader(path)
    assert "notes.mp4" in str(info.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        VideoReader(path)


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(VideoError, match="folder"):
        VideoReader(tmp_path)


def test_video_with_zero_frames(tmp_path):
    path = _write_avi(tmp_path / "zero.avi", [])  # a valid AVI container holding no frame
    assert cv2.VideoCapture(str(path)).isOpened()  # OpenCV opens it: the reader must notice there is no frame
    with pytest.raises(VideoError, match="no decodable frame"):
        VideoReader(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="file path or a camera index"):
        VideoReader(3.5)
    with pytest.raises(ValueError, match="fps_fallback"):
        VideoReader(tmp_path / "x.mp4", fps_fallback=0)


def test_unknown_camera_index():
    with pytest.raises(VideoError, match="camera 97"):
        VideoReader(97)


def test_real_video_frame_count_is_decoded_not_claimed(sample_video):
    path = sample_video("no_face.mp4")
    with VideoReader(path) as reader:
        claimed = reader.reported_frame_count
        decoded = sum(1 for _ in reader)
        assert reader.fps_reported and 20 < reader.fps < 30 and reader.fps != DEFAULT_FPS
    assert claimed == 98  # the container's claim is wrong ...
    assert decoded == count_frames(path) == 95  # ... only 95 frames decode


def test_fps_fallback_when_the_source_reports_none():
    assert usable_fps(29.97) == (29.97, True)
    for broken in (0.0, -1.0, float("nan"), float("inf"), 90000.0):
        assert usable_fps(broken) == (DEFAULT_FPS, False)
    assert usable_fps(0.0, fallback=30.0) == (30.0, False)


def test_video_cut_short_warns_how_many_frames_were_read(sample_video, tmp_path):
    data = sample_video("WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # an interrupted copy: the container still promises 472 frames
    with VideoReader(cut) as reader:
        assert reader.reported_frame_count == 472
        with pytest.warns(TruncatedVideoWarning) as record:
            decoded = sum(1 for _ in reader)
    assert 0 < decoded < 472 // 2 + 50 and decoded == count_frames(cut)
    assert [str(w.message) for w in record] == [
        f"{cut}: read {decoded} of the 472 frames the container promises (the file is cut short?)"]


def test_no_warning_for_a_whole_video_or_a_count_a_few_frames_off(sample_video):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)
        for name in ("WolfgangLanger_Pexels.mp4", "no_face.mp4"):  # 472 of 472; 95 of the 98 claimed
            with VideoReader(sample_video(name)) as reader:
                assert sum(1 for _ in reader) == reader.frames_read >= reader.reported_frame_count - 3


def test_no_warning_when_the_caller_stops_early(sample_video, tmp_path):
    data = sample_video("WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)
        with VideoReader(cut) as reader:
            assert len(list(itertools.islice(reader, 100))) == 100
