"""`edgefer predict` end to end on a real video, and its expected errors (issue 2)."""

import json

import pytest
from cli_support import assert_one_line_error, run_cli
from video_support import FaceEverywhere, NeverCalled, short_video


@pytest.mark.slow
def test_predict_on_the_real_sample_video(msstnet_export, sample_video, tmp_path):
    video = sample_video("WolfgangLanger_Pexels.mp4")
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}.json"
        proc = run_cli("predict", video, "--model", msstnet_export[1], "--json", out)
        assert proc.returncode == 0, proc.stderr
        assert "UNTRAINED" in proc.stdout
        runs.append(json.loads(out.read_text()))
    first = runs[0]
    assert runs[0] == runs[1]  # deterministic
    assert first["num_frames"] == 472 and first["fps"] > 0
    assert first["face_fraction"] >= 0.95
    windows = first["windows"]
    covered = set()
    for w in windows:
        covered.update(range(w["start_frame"], w["end_frame"] + 1))
        assert w["end_frame"] - w["start_frame"] + 1 == 16
        assert w["start_s"] == pytest.approx(w["start_frame"] / first["fps"], abs=1e-3)
        if w["face_found"]:
            assert abs(sum(w["probabilities"].values()) - 1) < 1e-4
            assert w["label"] == max(w["probabilities"], key=w["probabilities"].get)
        else:
            assert w["label"] is None
    assert covered == set(range(472))
    assert sum(w["face_found"] for w in windows) >= 0.9 * len(windows)
    rows = proc.stdout.strip().splitlines()
    assert len(rows) == len(windows) + 3  # header, column names, one row a window, "wrote OUT"
    assert rows[-1] == f"wrote {out}"


def test_missing_video(msstnet_export, tmp_path):
    assert_one_line_error(run_cli("predict", tmp_path / "nope.mp4", "--model", msstnet_export[1]), "nope.mp4")


def test_file_that_is_not_a_video(msstnet_export, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 100)
    assert_one_line_error(run_cli("predict", fake, "--model", msstnet_export[1]), "notes.mp4")


def test_video_with_no_face(msstnet_export, sample_video):
    proc = run_cli("predict", sample_video("no_face.mp4"), "--model", msstnet_export[1])
    assert_one_line_error(proc, "no_face.mp4")
    assert "face" in proc.stderr


def test_truncated_model_file(msstnet_export, sample_video, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(msstnet_export[1].read_bytes()[:5000])
    assert_one_line_error(run_cli("predict", sample_video("single_face.mp4"), "--model", cut), "cut.onnx")


def test_model_without_metadata(msstnet_export, sample_video, tmp_path):
    import onnx

    proto = onnx.load(str(msstnet_export[1]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    assert_one_line_error(run_cli("predict", sample_video("single_face.mp4"), "--model", tmp_path / "bare.onnx"),
                           "no edgefer metadata")


def test_window_and_stride_rules(msstnet_export, tmp_path):
    import warnings

    import edgefer
    from edgefer.errors import ArgumentError
    from edgefer.pipeline import predict_video

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", edgefer.errors.UntrainedWeightsWarning)
        model = edgefer.load(msstnet_export[1])
    missing = tmp_path / "never-read.mp4"  # argument errors come before the video is opened
    for kwargs, message in [({"window": 0}, "^window must be >= 1, got 0$"),  # 0 is refused, not the default
                            ({"stride": 0}, "^stride must be >= 1, got 0$"),
                            ({"stride": -3}, "^stride must be >= 1, got -3$"),
                            ({"stride": 20}, r"^stride 20 is larger than the window \(16 frames\)"),
                            ({"min_face_fraction": 1.5}, r"min_face_fraction must be a fraction in \[0, 1\]")]:
        with pytest.raises(ArgumentError, match=message):
            predict_video(model, missing, **kwargs)
    with pytest.raises(TypeError, match="window must be an int"):
        predict_video(model, missing, window=8.0)
    video = short_video(tmp_path / "short.avi", 10)
    detector = FaceEverywhere()
    with pytest.raises(ArgumentError, match=r"^window 12 is larger than the video \(10 frames\)$"):
        predict_video(model, video, window=12, detector=NeverCalled())  # found before any frame is tracked
    with pytest.raises(ArgumentError, match=r"^stride 12 is larger than the video \(10 frames\)$"):
        predict_video(model, video, stride=12, detector=detector)
    # the default window (16 frames) on a 10-frame video: one window over all of it, sampled by the DFEW protocol
    result = predict_video(model, video, detector=detector)
    assert [(w.start_frame, w.end_frame, w.face_found) for w in result.windows] == [(0, 9, True)]
    assert abs(float(result.windows[0].prediction.probabilities.sum()) - 1) < 1e-5
