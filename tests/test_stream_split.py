"""The per-frame feature cache (issue 13): the split export (encoder + temporal head) against the whole model."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgefer.errors import ExportError, MetadataError, ModelFileError  # noqa: E402



def _model(name):
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model(name, kernels="reference", dim=64, num_heads=4, depth=2).eval()
    return model, artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))


@pytest.mark.slow
def test_msstnet_split_matches_the_whole_model_on_real_clips(split_msstnet):
    _, _, folder, report = split_msstnet
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.onnx", "head.onnx"]
    assert report.max_abs_diff["real"] <= 1e-4 and report.max_abs_diff["random"] <= 1e-4
    assert report.features == (3, 16, 64)  # scales C3, C4, C5; 4 x 4 patches; D = 64
    extra = report.metadata.extra
    assert extra["split.part"] == "head" and json.loads(extra["split.features"]) == [3, 16, 64]


@pytest.mark.slow
def test_the_split_folder_loads_as_one_model_and_predicts_like_the_whole_export(split_msstnet, sample_video):
    import edgefer
    from edgefer.video import read_face_track

    _, whole_path, folder, _ = split_msstnet
    split, whole = edgefer.load(folder), edgefer.load(whole_path)
    assert split.has_split and split.feature_shape == (3, 16, 64) and split.labels == whole.labels
    track = read_face_track(sample_video("single_face.mp4"), crop_size=112, max_frames=20)
    clip = np.stack(track.crops[:16])
    a, b = split.predict(clip), whole.predict(clip)
    assert np.max(np.abs(a.logits - b.logits)) <= 1e-4


def test_stt_split_matches_the_whole_model(tmp_path):
    from edgefer.export.split import export_split

    model, metadata = _model("stt")
    report = export_split(model, tmp_path / "stt.split", metadata)
    assert report.max_abs_diff["random"] <= 1e-4 and report.features == (49, 64)


def test_a_model_without_a_split_is_refused_before_writing(tmp_path):
    from edgefer.export.split import export_split
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata

    model = build_model("fesnet").eval()
    with pytest.raises(ExportError, match="fesnet has no encoder/head split"):
        export_split(model, tmp_path / "f.split", artefact_metadata(model, trained=False, weights_sha256=""))
    assert not (tmp_path / "f.split").exists()


def test_a_broken_split_folder_says_what_is_wrong(split_msstnet, tmp_path):
    import shutil

    import edgefer

    _, _, folder, _ = split_msstnet
    broken = tmp_path / "broken.split"
    shutil.copytree(folder, broken)
    (broken / "encoder.onnx").unlink()
    with pytest.raises(ModelFileError, match="the encoder its head names \\('encoder.onnx'\\) is missing"):
        edgefer.load(broken)
    shutil.copy(folder / "head.onnx", broken / "encoder.onnx")  # the head where the encoder should be
    with pytest.raises(MetadataError, match="are not parts of one model"):
        edgefer.load(broken)
