"""`edgefer predict` end to end on a real video, and its expected errors (issue 2)."""

import json

import pytest
from cli_support import assert_one_line_error, run_cli


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
