"""STT and FESNet through export_onnx and the ONNX Runtime path, on real face frames (issue 5).

Both models are exported once per module with their default configs (untrained, seed 0) and only batch 1 is
checked on random clips, to keep the module at about a minute on 2 shared cores. The real-frame parity goes
through ``edgefer.load(path).predict`` on raw uint8 face crops, so the runtime's own preprocessing
(``edgefer.preprocess``) is what feeds ONNX Runtime; PyTorch gets the same crops through ``prepare_clip``.
"""

import json

import numpy as np
import onnx
import pytest
import torch

import edgefer
from edgefer.errors import ArgumentError, ClipError
from edgefer.models import build_model
from edgefer.models.checkpoint import artefact_metadata, weights_sha256
from edgefer.preprocess import prepare_clip
from edgefer.export.onnx_export import export_onnx

ATOL = 1e-4


def _export(name, tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(name).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    report = export_onnx(model, path, metadata, random_batches=(1,))
    return model, path, report


@pytest.fixture(scope="module")
def stt_export(tmp_path_factory):
    return _export("stt", tmp_path_factory)


@pytest.fixture(scope="module")
def fesnet_export(tmp_path_factory):
    return _export("fesnet", tmp_path_factory)


@pytest.fixture(scope="module")
def face_crops(sample_video):
    """The first 64 frames of single_face.mp4 as 112 x 112 uint8 BGR face crops (64, 112, 112, 3)."""
    from edgefer.video import read_face_track

    track = read_face_track(sample_video("single_face.mp4"), margin=0.2, crop_size=112, max_frames=64)
    assert track.num_frames == 64 and track.face_found.all(), "single_face.mp4 should show a face in frames 0..63"
    return track.clip(np.arange(64))


def _check_real_pixels(x: np.ndarray) -> None:
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05


def test_stt_onnx_matches_pytorch_on_real_frames(stt_export, face_crops):
    model, path, report = stt_export
    assert report.max_abs_diff["random"] <= ATOL
    loaded = edgefer.load(path)
    crops = face_crops[:16]
    assert loaded.metadata.face_margin == 0.2 and loaded.metadata.frame_size == (112, 112)
    clip = prepare_clip(list(crops), loaded.metadata)  # the runtime's preprocessing: (16, 3, 112, 112)
    assert clip.shape == (16, 3, 112, 112)
    _check_real_pixels(clip)
    with torch.no_grad():
        expected = model(torch.from_numpy(clip[None])).numpy()[0]
    got = loaded.predict(crops)
    assert got.logits.shape == (7,) and got.label in edgefer.DFER_LABELS
    assert np.abs(got.logits - expected).max() <= ATOL
    assert abs(float(got.probabilities.sum()) - 1) < 1e-5


def test_stt_onnx_matches_reference_clips(stt_export, sample_video):
    """``edgefer.pipeline.reference_clips`` (what ``edgefer export --check-video`` uses) on another real video."""
    from edgefer.pipeline import reference_clips

    model, path, report = stt_export
    clips = reference_clips(sample_video("WolfgangLanger_Pexels.mp4"), report.metadata, count=1)
    assert clips.shape == (1, 16, 3, 112, 112)
    _check_real_pixels(clips)
    with torch.no_grad():
        expected = model(torch.from_numpy(clips)).numpy()
    assert np.abs(edgefer.load(path)._forward(clips) - expected).max() <= ATOL


def test_fesnet_onnx_matches_pytorch_on_real_frames(fesnet_export, face_crops):
    model, path, report = fesnet_export
    assert report.max_abs_diff["random"] <= ATOL
    loaded = edgefer.load(path)
    assert loaded.metadata.clip_length == 64
    clip = prepare_clip(list(face_crops), loaded.metadata)  # (64, 3, 112, 112), consecutive frames
    assert clip.shape == (64, 3, 112, 112)
    _check_real_pixels(clip)
    with torch.no_grad():
        expected = model(torch.from_numpy(clip[None])).numpy()
    (got,) = loaded.spot_frames(face_crops[None])  # spotting: frame-wise scores of each window of a batch
    assert isinstance(got, edgefer.runtime.FrameScores) and got.labels == ("neutral", "macro", "micro")
    assert got.logits.shape == got.probabilities.shape == (64, 3) and expected.shape == (1, 64, 3)
    assert np.abs(got.logits - expected[0]).max() <= ATOL
    assert np.allclose(got.probabilities.sum(axis=1), 1, atol=1e-5)
    assert np.ptp(got.logits, axis=0).max() > 0  # frame-wise: the frames' logits differ along the window
    single = loaded.spot_frames(list(face_crops))  # one window, as a list of frames
    assert np.array_equal(single.probabilities, got.probabilities)


def test_fesnet_reads_exactly_k_consecutive_frames(fesnet_export, face_crops):
    loaded = edgefer.load(fesnet_export[1])
    with pytest.raises(ClipError, match="64 consecutive frames"):
        loaded.spot_frames(face_crops[:40])


def test_each_task_has_its_own_call(stt_export, fesnet_export, face_crops):
    fesnet, stt = edgefer.load(fesnet_export[1]), edgefer.load(stt_export[1])
    with pytest.raises(ArgumentError, match=r"expression-spotting model \(task 'spotting', fesnet\): use "
                                            r"`edgefer spot VIDEO --model .*fesnet.onnx` or model.spot_frames"):
        fesnet.predict(face_crops)
    with pytest.raises(ArgumentError, match=r"dfer model \(stt\), not an expression-spotting model: use "
                                            r"`edgefer predict VIDEO --model .*stt.onnx`"):
        stt.spot_frames(face_crops[:16])


@pytest.mark.parametrize("which", ["stt", "fesnet"])
def test_metadata_round_trips(which, stt_export, fesnet_export):
    model, path, report = stt_export if which == "stt" else fesnet_export
    loaded = edgefer.load(path)
    assert loaded.metadata == report.metadata
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert props["edgefer.model"] == which and props["edgefer.trained"] == "false"
    assert props["edgefer.weights_sha256"] == weights_sha256(model.state_dict())
    config = json.loads(props["edgefer.config"])
    assert config["clip_length"] == model.config.clip_length
    if which == "stt":
        assert loaded.metadata.task == "dfer" and loaded.metadata.sampling == "dfew-test"
        assert loaded.labels == edgefer.DFER_LABELS and loaded.metadata.clip_length == 16
        assert config["depth"] == model.config.depth and config["dim"] == model.config.dim
    else:
        assert loaded.metadata.task == "spotting" and loaded.metadata.sampling == "consecutive"
        assert loaded.labels == ("neutral", "macro", "micro") and loaded.metadata.clip_length == 64
        assert config["temporal_kernels"] == list(model.config.temporal_kernels)
