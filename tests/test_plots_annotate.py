"""Pictures (issue 13): `predict --plot / --annotate` and `spot --plot` on real video write valid files of the
expected size and frame count."""

import json

import cv2
import numpy as np
import pytest
from cli_support import assert_one_line_error, run_cli
from video_support import read_frames

pytest.importorskip("matplotlib")


def _png_size(path):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    return image.shape[1], image.shape[0]


@pytest.mark.slow
def test_predict_with_no_model_uses_the_trained_zoo_model_and_draws(sample_video, tmp_path):
    video = sample_video("single_face.mp4")  # 72 frames, 640 x 360
    plot, annotated, out = tmp_path / "p.png", tmp_path / "a.mp4", tmp_path / "r.json"
    proc = run_cli("predict", video, "--plot", plot, "--annotate", annotated, "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "fer-minixception" in proc.stdout and "UNTRAINED" not in proc.stdout
    result = json.loads(out.read_text())
    assert result["trained"] and result["model"] == "fer-minixception"
    assert _png_size(plot) == (1000, 400)
    frames = read_frames(annotated)
    assert len(frames) == 72 and frames[0].shape == (360, 640, 3)
    original = cv2.VideoCapture(str(video)).read()[1]
    assert np.abs(frames[10].astype(int) - original.astype(int)).mean() > 1  # something was drawn


@pytest.mark.slow
def test_spot_plot_on_real_video(sample_video, tmp_path):
    import torch

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("fesnet", kernels="reference").eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    onnx_path = export_onnx(model, tmp_path / "fesnet.onnx", metadata).path
    plot = tmp_path / "s.png"
    proc = run_cli("spot", sample_video("single_face.mp4"), "--model", onnx_path, "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    assert _png_size(plot) == (1000, 400)


def test_a_bad_plot_path_fails_before_the_run(tmp_path):
    proc = run_cli("predict", "missing.mp4", "--plot", tmp_path / "no" / "p.png")
    assert_one_line_error(proc, "--plot output")
    proc = run_cli("predict", "missing.mp4", "--annotate", tmp_path)
    assert_one_line_error(proc, "it is a directory")
