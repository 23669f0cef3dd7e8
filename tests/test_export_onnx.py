"""Export to ONNX and the ONNX Runtime path (issue 2)."""

import numpy as np
import onnx
import pytest
import torch

import edgefer
from edgefer.errors import ClipError, ExportError, MetadataError, ModelFileError
from edgefer.models import build_model
from edgefer.models.checkpoint import artefact_metadata, weights_sha256
from edgefer.export.onnx_export import export_onnx


def test_onnx_matches_pytorch_on_a_real_clip(msstnet_export, sample_video):
    from edgefer.pipeline import reference_clips

    model, path, report = msstnet_export
    assert report.max_abs_diff["random"] <= 1e-4
    clips = reference_clips(sample_video("WolfgangLanger_Pexels.mp4"), report.metadata, count=1)
    assert clips.shape == (1, 16, 3, 112, 112) and clips.dtype == np.float32
    assert 0.0 <= clips.min() and clips.max() <= 1.0 and clips.std() > 0.05  # real pixels, scaled to [0, 1]
    with torch.no_grad():
        expected = model(torch.from_numpy(clips)).numpy()
    got = edgefer.load(path)._forward(clips)
    assert np.abs(got - expected).max() <= 1e-4


def test_metadata_is_embedded(msstnet_export):
    _, path, report = msstnet_export
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    for key in ("model", "labels", "clip_length", "frame_size", "colour_order", "mean", "std", "sampling",
                "edgefer_version", "weights_sha256", "trained"):
        assert f"edgefer.{key}" in props
    assert props["edgefer.model"] == "msstnet" and props["edgefer.trained"] == "false"
    assert props["edgefer.sampling"] == "dfew-test"
    loaded = edgefer.load(path)
    assert loaded.metadata == report.metadata
    assert loaded.labels == edgefer.DFER_LABELS


def test_dynamic_batch_and_predict_api(msstnet_export):
    _, path, _ = msstnet_export
    model = edgefer.load(path)
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (16, 90, 80, 3), dtype=np.uint8)
    one = model.predict(clip)
    assert one.label in model.labels and one.probabilities.dtype == np.float32
    assert abs(float(one.probabilities.sum()) - 1.0) < 1e-5
    assert np.allclose(one.probabilities, np.exp(one.logits) / np.exp(one.logits).sum(), atol=1e-6)
    same = model.predict(list(clip))
    assert np.array_equal(same.logits, one.logits)
    batch = model.predict(np.stack([clip, clip[::-1]]))
    assert len(batch) == 2 and np.allclose(batch[0].logits, one.logits, atol=1e-5)
    short = model.predict(clip[:5])  # DFEW protocol repeats frames of short clips
    assert short.probabilities.shape == (7,)


@pytest.mark.parametrize("bad,needle", [
    (np.zeros((16, 112, 112, 3), np.float32), "uint8"),
    (np.zeros((16, 112, 112), np.uint8), "shape"),
    (np.zeros((16, 112, 112, 4), np.uint8), "BGR"),
    (np.zeros((0, 112, 112, 3), np.uint8), "no frames"),
    ("clip.mp4", "numpy array"),
])
def test_wrong_clip_raises_value_error(msstnet_export, bad, needle):
    model = edgefer.load(msstnet_export[1])
    with pytest.raises(ValueError, match=needle) as info:
        model.predict(bad)
    assert isinstance(info.value, ClipError)


def test_truncated_onnx_is_a_model_file_error(msstnet_export, tmp_path):
    data = msstnet_export[1].read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        edgefer.load(cut)


def test_onnx_without_edgefer_metadata(msstnet_export, tmp_path):
    proto = onnx.load(str(msstnet_export[1]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(MetadataError, match="no edgefer metadata"):
        edgefer.load(tmp_path / "bare.onnx")


def test_metadata_contradicting_the_graph(msstnet_export, tmp_path):
    proto = onnx.load(str(msstnet_export[1]))
    for prop in proto.metadata_props:
        if prop.key == "edgefer.frame_size":
            prop.value = "[224, 224]"
    onnx.save(proto, str(tmp_path / "liar.onnx"))
    with pytest.raises(MetadataError, match="graph's input"):
        edgefer.load(tmp_path / "liar.onnx")


def test_unsupported_files(tmp_path):
    (tmp_path / "m.engine").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="TensorRT"):
        edgefer.load(tmp_path / "m.engine")
    with pytest.raises(ModelFileError, match="does not exist"):
        edgefer.load(tmp_path / "missing.onnx")


def test_untrained_weights_warn_once(msstnet_export, tmp_path):
    import shutil

    copy = tmp_path / "again.onnx"
    shutil.copy(msstnet_export[1], copy)
    with pytest.warns(edgefer.errors.UntrainedWeightsWarning, match="untrained"):
        edgefer.load(copy)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        edgefer.load(copy)  # a second load of the same file stays quiet


def test_parity_failure_writes_nothing(tmp_path):
    from edgefer.models.msstnet import Model

    class Drifting(Model):
        """Traces to a graph whose logits are 1e-3 off PyTorch's: the export must refuse it."""

        def forward(self, clip):
            out = super().forward(clip)
            return out + 1e-3 if torch.onnx.is_in_onnx_export() else out

    torch.manual_seed(0)
    model = Drifting(build_model("msstnet", dim=64, num_heads=4, mlp_hidden=128).config).eval()
    meta = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="disagrees"):
        export_onnx(model, out, meta, random_batches=(1,))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_pt_checkpoint_loads_on_the_torch_backend(tmp_path):
    from edgefer.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("msstnet", dim=64, num_heads=4, mlp_hidden=128)
    path = save_checkpoint(model, tmp_path / "m.pt", trained=True)
    loaded = edgefer.load(path)
    assert loaded.backend == "pytorch" and loaded.metadata.trained
    clip = np.random.default_rng(1).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8)
    assert abs(float(loaded.predict(clip).probabilities.sum()) - 1) < 1e-5


def test_export_records_how_the_training_crops_were_cut(tmp_path):
    from cli_support import assert_usage_error, run_cli

    from edgefer.runtime.onnx_metadata import read_metadata_props

    out = tmp_path / "aligned.onnx"
    small = ["--config", "dim=64", "--config", "num_heads=4", "--config", "mlp_hidden=128"]
    proc = run_cli("export", "msstnet", "--untrained", *small, "--face-align", "--face-margin", "0.3", "--out", out)
    assert proc.returncode == 0, proc.stderr
    props = read_metadata_props(out)
    assert props["edgefer.face_align"] == "true" and float(props["edgefer.face_margin"]) == 0.3
    assert_usage_error(run_cli("export", "msstnet", "--untrained", "--face-margin", "-1", "--out", out),
                       "--face-margin")
