import pytest
import torch

from edgefer.errors import ModelFileError
from edgefer.models import build_model
from edgefer.models.checkpoint import load_checkpoint, save_checkpoint, weights_sha256

SMALL = dict(dim=64, num_heads=4, mlp_hidden=128)


def test_round_trip_with_weights_only(tmp_path):
    model = build_model("msstnet", **SMALL)
    path = save_checkpoint(model, tmp_path / "m.pt", trained=True)
    payload = torch.load(path, weights_only=True)
    assert payload["model"] == "msstnet" and payload["labels"][0] == "Happy"
    loaded = load_checkpoint(path)
    assert loaded.trained is True
    assert loaded.model.config == model.config
    assert loaded.weights_sha256 == weights_sha256(model.state_dict())
    clip = torch.rand(1, 16, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(loaded.model(clip), model.eval()(clip))


def test_bare_state_dict_needs_the_model_name(tmp_path):
    model = build_model("msstnet", **SMALL)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ModelFileError, match="bare state dict"):
        load_checkpoint(tmp_path / "bare.pt")
    loaded = load_checkpoint(tmp_path / "bare.pt", "msstnet", **SMALL)
    assert loaded.weights_sha256 == weights_sha256(model.state_dict())


def test_weights_that_do_not_fit_are_reported(tmp_path):
    torch.save(build_model("msstnet", **SMALL).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ModelFileError, match="do not fit"):
        load_checkpoint(tmp_path / "bare.pt", "msstnet")  # default dim 512


def test_truncated_and_missing_files(tmp_path):
    path = save_checkpoint(build_model("msstnet", **SMALL), tmp_path / "m.pt", trained=False)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_hash_changes_with_weights():
    model = build_model("msstnet", **SMALL)
    before = weights_sha256(model.state_dict())
    with torch.no_grad():
        model.head.bias[0] += 1e-3
    assert weights_sha256(model.state_dict()) != before
