import pytest
import torch

from edgefer.errors import ArgumentError, ModelFileError
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


def _payload(tmp_path) -> dict:
    path = save_checkpoint(build_model("msstnet", **SMALL), tmp_path / "m.pt", trained=True)
    return torch.load(path, weights_only=True)


def test_truncated_file_and_folder_in_one_line(tmp_path):
    data = save_checkpoint(build_model("msstnet", **SMALL), tmp_path / "m.pt", trained=False).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as info:
        load_checkpoint(tmp_path / "cut.pt")
    message = str(info.value)
    assert "\n" not in message and "cut.pt" in message and "PytorchStreamReader" in message  # torch's reason
    with pytest.raises(ModelFileError, match="is a directory, not a checkpoint file"):
        load_checkpoint(tmp_path)


class _RunsCode:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return os.mkdir, (self.path,)


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_file_that_would_run_code_is_refused_without_running_it(tmp_path, zip_format):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _RunsCode(str(marker))}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(ModelFileError) as info:
        load_checkpoint(path, "msstnet")
    message = str(info.value)
    assert not marker.exists()
    assert message.startswith(f"{path} holds Python objects")
    assert "a safe load (torch.load weights_only=True) refuses; edgefer never unpickles code" in message
    assert "\n" not in message and "weights_only=False" not in message and "truncated" not in message
    if zip_format:  # torch can list the globals of a zip-format file without unpickling it
        assert "(posix.mkdir)" in message or "(nt.mkdir)" in message


def test_unknown_config_field_in_the_file(tmp_path):
    payload = _payload(tmp_path)
    payload["config"]["depth"] = 12
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(ModelFileError, match=r"records msstnet config field 'depth', which .* its fields are "
                                             r"clip_length, frame_size"):
        load_checkpoint(tmp_path / "c.pt")


def test_unknown_override_field(tmp_path):
    payload = _payload(tmp_path)
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(ArgumentError, match="msstnet config has no field 'depth'; its fields are clip_length"):
        load_checkpoint(tmp_path / "c.pt", depth=12)


def test_missing_model_entry(tmp_path):
    payload = _payload(tmp_path)
    del payload["model"]
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(ModelFileError, match="no 'model' entry: say which model it is"):
        load_checkpoint(tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", "msstnet").model.config.dim == SMALL["dim"]  # the name, given


def test_missing_state_dict_entry(tmp_path):
    payload = _payload(tmp_path)
    del payload["state_dict"]
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(ModelFileError, match="without its 'state_dict' entry"):
        load_checkpoint(tmp_path / "c.pt")


def test_model_name_disagreeing_with_the_file(tmp_path):
    torch.save(_payload(tmp_path), tmp_path / "c.pt")
    with pytest.raises(ArgumentError, match="holds a 'msstnet' model, not 'stt'"):
        load_checkpoint(tmp_path / "c.pt", "stt")
