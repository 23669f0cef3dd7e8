"""`edgefer spot` end to end on real videos, and the spotting pipeline's face masking (issue 5).

A FESNet (default config, untrained, seed 0) is exported once per module; its intervals are meaningless, so the
tests check what must hold whatever the weights: frames and fps of the video, intervals inside the video and
consistent with the frame-wise scores, face-less frames never in an interval, and the expected errors.
"""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_support import assert_one_line_error, run_cli
from video_support import FaceEverywhere, short_video

ROW = re.compile(r"^\s*(\d+)-(\d+)\s+([\d.]+)-([\d.]+)\s+(macro|micro)\s+([\d.]+)\s*$")


@pytest.fixture(scope="module")
def fesnet_onnx(tmp_path_factory) -> Path:
    import torch

    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256
    from edgefer.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("fesnet").eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp("fesnet") / "fesnet.onnx"
    export_onnx(model, path, metadata, random_batches=(1,))
    return path


def _container_fps(video: Path) -> float:
    capture = cv2.VideoCapture(str(video))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()


def _face_runs(face_found):
    from edgefer.spotting import label_runs

    return label_runs(np.asarray(face_found, dtype=np.int8), 1)


@pytest.mark.slow
def test_spot_on_the_real_sample_video(fesnet_onnx, sample_video, tmp_path):
    from edgefer.spotting import scores_to_intervals

    video = sample_video("single_face.mp4")
    out = tmp_path / "spot.json"
    proc = run_cli("spot", video, "--model", fesnet_onnx, "--json", out)
    assert proc.returncode == 0, proc.stderr
    fps = _container_fps(video)
    assert fps == pytest.approx(30.0, abs=0.1)
    header = proc.stdout.splitlines()[0]
    assert f"72 frames at {fps:.2f} fps" in header
    assert "UNTRAINED" in header
    result = json.loads(out.read_text())
    assert result["num_frames"] == 72 and result["fps"] == pytest.approx(fps, abs=1e-6)
    assert result["trained"] is False and result["model"] == "fesnet"
    assert result["window"] == 64 and result["stride"] == 32 and result["num_windows"] == 2  # starts 0 and 8
    assert f"face in {100 * result['face_fraction']:.1f}% of frames" in header
    assert result["face_fraction"] >= 0.9
    probs = np.asarray(result["probabilities"])
    assert probs.shape == (72, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert len(result["face_found"]) == 72

    # the table and the JSON list the same intervals, each inside the video, seconds from the container's fps
    rows = [ROW.match(line) for line in proc.stdout.splitlines()[1:]]
    rows = [m.groups() for m in rows if m]
    intervals = result["intervals"]
    if not intervals:
        assert "no intervals found" in proc.stdout
    assert len(rows) == len(intervals)
    for row, i in zip(rows, intervals):
        assert 0 <= i["start_frame"] <= i["end_frame"] <= 71
        assert i["label"] in ("macro", "micro") and 0 <= i["score"] <= 1
        assert i["start_s"] == pytest.approx(i["start_frame"] / fps, abs=1e-3)
        assert i["end_s"] == pytest.approx((i["end_frame"] + 1) / fps, abs=1e-3)
        assert (int(row[0]), int(row[1]), row[4]) == (i["start_frame"], i["end_frame"], i["label"])
        assert float(row[2]) == pytest.approx(i["start_s"], abs=0.006)
        assert float(row[3]) == pytest.approx(i["end_s"], abs=0.006)
        assert float(row[5]) == pytest.approx(i["score"], abs=6e-4)
        assert all(result["face_found"][i["start_frame"]:i["end_frame"] + 1])

    # the intervals are the post-processing of the reported frame-wise scores, per run of face frames
    expected = []
    for first, last in _face_runs(result["face_found"]):
        expected += [(i.start_frame + first, i.end_frame + first, i.label, i.score)
                     for i in scores_to_intervals(probs[first:last + 1], fps)]
    expected.sort(key=lambda t: (t[0], t[2]))
    assert [(i["start_frame"], i["end_frame"], i["label"]) for i in intervals] == [e[:3] for e in expected]
    assert [i["score"] for i in intervals] == pytest.approx([e[3] for e in expected], abs=1e-3)


@pytest.mark.slow
def test_face_less_frames_are_masked_and_never_in_an_interval(fesnet_onnx, sample_video):
    """face_noface.mov: a face for about the first 72 frames, then none (169 frames, five windows)."""
    import warnings

    import edgefer
    from edgefer.spotting.video import spot_video

    video = sample_video("face_noface.mov")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", edgefer.errors.UntrainedWeightsWarning)
        model = edgefer.load(fesnet_onnx)
    result = spot_video(model, video, gap=40)  # a wide gap: would bridge face-less frames if runs were not split
    assert result.num_frames == 169 and result.fps == pytest.approx(_container_fps(video), abs=1e-6)
    assert result.num_windows == 5  # starts 0, 32, 64, 96, 105
    found = result.face_found
    assert found.dtype == bool and found.shape == (169,)
    assert 40 <= found.sum() <= 130 and not found[-20:].any()
    assert np.array_equal(result.probabilities[~found], np.tile([1.0, 0.0, 0.0], (int((~found).sum()), 1)))
    assert np.allclose(result.probabilities.sum(axis=1), 1)
    assert not np.allclose(result.probabilities[found], [1.0, 0.0, 0.0])  # face frames keep the model's scores
    for i in result.intervals:
        assert found[i.start_frame:i.end_frame + 1].all(), i
    as_dict = result.as_dict()
    assert as_dict["num_frames"] == 169 and len(as_dict["intervals"]) == len(result.intervals)


def test_video_with_no_face(fesnet_onnx, sample_video):
    proc = run_cli("spot", sample_video("no_face.mp4"), "--model", fesnet_onnx)
    assert_one_line_error(proc, "no_face.mp4")
    assert "no face" in proc.stderr


def test_a_dfer_model_is_refused(msstnet_export, sample_video):
    assert_one_line_error(run_cli("spot", sample_video("single_face.mp4"), "--model", msstnet_export[1]),
                          "not an expression-spotting model: use `edgefer predict VIDEO --model")


def test_predict_on_a_spotting_model_points_to_spot(fesnet_onnx, sample_video):
    assert_one_line_error(run_cli("predict", sample_video("single_face.mp4"), "--model", fesnet_onnx),
                          f"is an expression-spotting model (task 'spotting', fesnet): use `edgefer spot VIDEO "
                          f"--model {fesnet_onnx}` or model.spot_frames(...), not predict")


def test_a_spotting_graph_labelled_dfer_is_refused_at_load(fesnet_onnx, sample_video, tmp_path):
    """FESNet's frame-wise output (batch, frames, 3) contradicts a metadata that calls it a DFER model."""
    import onnx

    proto = onnx.load(str(fesnet_onnx))
    for prop in proto.metadata_props:
        if prop.key == "edgefer.task":
            prop.value = "dfer"
    onnx.save(proto, str(tmp_path / "dfer.onnx"))
    assert_one_line_error(run_cli("spot", sample_video("single_face.mp4"), "--model", tmp_path / "dfer.onnx"),
                          ", 3) in the graph, but its metadata (task 'dfer', 3 labels) needs (batch, labels=3)")


def test_spot_video_argument_rules(fesnet_onnx, tmp_path):
    import warnings

    import edgefer
    from edgefer.errors import ArgumentError
    from edgefer.spotting.video import spot_video

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", edgefer.errors.UntrainedWeightsWarning)
        model = edgefer.load(fesnet_onnx)
    missing = tmp_path / "never-read.mp4"  # argument errors come before the video is opened
    with pytest.raises(ArgumentError, match="^stride must be >= 1, got 0$"):
        spot_video(model, missing, stride=0)
    with pytest.raises(ArgumentError, match=r"^stride 65 is larger than the window \(64 frames\)"):
        spot_video(model, missing, stride=65)
    with pytest.raises(ArgumentError, match="gap must be >= 0"):
        spot_video(model, missing, gap=-1)
    video = short_video(tmp_path / "short.avi", 40)
    with pytest.raises(ArgumentError, match=r"^stride 50 is larger than the video \(40 frames\)$"):
        spot_video(model, video, stride=50, detector=FaceEverywhere())
    # the default stride (K / 2 = 32) on a video shorter than K: one padded window
    result = spot_video(model, video, detector=FaceEverywhere())
    assert (result.num_windows, result.stride, result.num_frames) == (1, 32, 40)
    assert result.probabilities.shape == (40, 3) and np.allclose(result.probabilities.sum(axis=1), 1)


def test_stride_outside_the_window(fesnet_onnx, sample_video):
    # the window K is the model's: a stride beyond it is the library's one-line error, found before the video is read
    proc = run_cli("spot", sample_video("single_face.mp4"), "--model", fesnet_onnx, "--stride", "65")
    assert_one_line_error(proc, "stride 65 is larger than the window (64 frames)")


def test_face_intervals_split_at_face_less_frames():
    """Hand-made scores: a macro run broken by 3 face-less frames is two intervals, never one across them."""
    from edgefer.spotting.video import face_intervals

    neutral, macro, micro = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]
    probs = np.array([neutral] * 5 + [macro] * 20 + [macro] * 3 + [macro] * 20 + [micro] * 10 + [neutral] * 5)
    found = np.ones(len(probs), dtype=bool)
    found[25:28] = False  # the 3 middle macro frames have no face
    masked, intervals = face_intervals(probs, found, 30.0, gap=5)
    assert np.array_equal(masked[25:28], [[1, 0, 0]] * 3) and np.array_equal(masked[found], probs[found])
    assert [(i.start_frame, i.end_frame, i.label) for i in intervals] == [
        (5, 24, "macro"), (28, 47, "macro"), (48, 57, "micro")]
    assert intervals[0].score == pytest.approx(0.8)
    # with every frame a face, the same gap merges the macro run into one 43-frame interval
    _, whole = face_intervals(probs, np.ones(len(probs), dtype=bool), 30.0, gap=5)
    assert [(i.start_frame, i.end_frame, i.label) for i in whole] == [(5, 47, "macro"), (48, 57, "micro")]
    # at 60 fps the length ranges double (micro 14..33, macro >= 34 frames): the 10-frame micro run and the two
    # 20-frame macro runs are too short; only the unbroken 43-frame macro run survives
    _, fast = face_intervals(probs, found, 60.0, gap=5)
    assert fast == []
    _, fast_whole = face_intervals(probs, np.ones(len(probs), dtype=bool), 60.0, gap=5)
    assert [(i.start_frame, i.end_frame, i.label) for i in fast_whole] == [(5, 47, "macro")]
    with pytest.raises(ValueError, match="face_found"):
        face_intervals(probs, found[:-1], 30.0)
