"""`edgefer stream` and `edgefer export --split` from the command line (issue 13)."""

import json

import pytest
from cli_support import assert_one_line_error, assert_usage_error, run_cli


@pytest.mark.slow
def test_stream_a_real_video_with_the_default_trained_model(sample_video, tmp_path):
    out = tmp_path / "s.json"
    proc = run_cli("stream", sample_video("single_face.mp4"), "--stride", "8", "--max-frames", "40", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "fer-minixception" in proc.stdout and "UNTRAINED" not in proc.stdout
    results = json.loads(out.read_text())["results"]
    assert [r["start_frame"] for r in results] == [0, 8, 16, 24]
    assert all(r["face"] == "tracked" and r["label"] for r in results)


def test_export_split_refuses_models_without_a_split_and_files(tmp_path):
    assert_one_line_error(run_cli("export", "fesnet", "--untrained", "--split", "--out", tmp_path / "f.split"),
                          "fesnet has no encoder/head split")
    target = tmp_path / "file.onnx"
    target.write_text("x")
    assert_one_line_error(run_cli("export", "msstnet", "--untrained", "--split", "--out", target),
                          "--split writes a folder")


def test_stream_usage_and_source_errors(tmp_path):
    assert_usage_error(run_cli("stream", "0", "--stride", "0"), "--stride")
    assert_one_line_error(run_cli("stream", tmp_path / "missing.mp4"), "video file not found")
