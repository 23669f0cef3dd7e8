"""Every CLI error is one line, found before the work starts (issue 10, part 6).

Run as a user would (``python -m edgefer ...`` in a subprocess): a usage error exits 2 through argparse, an
expected error prints one ``edgefer: error:`` line and exits 1, a traceback appears only with ``--debug``, output
paths are checked before any work, and a video cut short is read with a one-line warning. The rule for
exceptions edgefer does not expect is checked in-process.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from cli_support import assert_one_line_error, assert_usage_error, run_cli

from edgefer.models import build_model
from edgefer.models.checkpoint import save_checkpoint

SMALL = dict(dim=64, num_heads=4, mlp_hidden=128)


@pytest.fixture(scope="module")
def checkpoint_payload(tmp_path_factory) -> dict:
    """The payload of a small MSSTNet checkpoint, to save altered copies of."""
    path = save_checkpoint(build_model("msstnet", **SMALL), tmp_path_factory.mktemp("ckpt") / "m.pt", trained=False)
    return torch.load(path, weights_only=True)


# --- usage errors: exit 2 through argparse, before anything is opened --------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["predict", "v.mp4", "--model", "m.onnx", "--stride", "-3"], "argument --stride: must be >= 1, got -3"),
    (["predict", "v.mp4", "--model", "m.onnx", "--stride", "0"], "argument --stride: must be >= 1, got 0"),
    (["predict", "v.mp4", "--model", "m.onnx", "--window", "0"], "argument --window: must be >= 1, got 0"),
    (["predict", "v.mp4", "--model", "m.onnx", "--stride", "two"], "argument --stride: not an integer: 'two'"),
    (["spot", "v.mp4", "--model", "m.onnx", "--stride", "0"], "argument --stride: must be >= 1, got 0"),
    (["spot", "v.mp4", "--model", "m.onnx", "--gap", "-1"], "argument --gap: must be >= 0, got -1"),
    (["export", "fesnet", "--untrained", "--out", "x.onnx", "--config", "bogus"],
     "argument --config: expects FIELD=VALUE, got 'bogus'"),
    (["export", "fesnet", "--untrained", "--out", "x.onnx", "--opset", "-1"], "argument --opset: must be >= 1"),
    (["bench", "kernels", "--repeats", "0"], "argument --repeats: must be >= 1, got 0"),
])
def test_bad_flag_values_are_usage_errors(args, needle):
    assert_usage_error(run_cli(*args), needle)


# --- expected errors: one line, exit 1 ---------------------------------------------------------------------------

def test_stride_longer_than_the_video(msstnet_export, sample_video):
    # single_face.mp4 has 72 frames: a 100-frame window and stride cannot fit; known only once the video is open
    proc = run_cli("predict", sample_video("single_face.mp4"), "--model", msstnet_export[1], "--window", "100",
                   "--stride", "100")
    assert_one_line_error(proc, "100")
    assert proc.stdout == ""


def test_unknown_model_name(tmp_path):
    proc = run_cli("export", "nosuch", "--untrained", "--out", tmp_path / "x.onnx")
    assert_one_line_error(proc, "unknown model 'nosuch'; choose one of msstnet, stt, fesnet")


def test_unknown_config_field(tmp_path):
    proc = run_cli("export", "fesnet", "--untrained", "--config", "bogus=1", "--out", tmp_path / "x.onnx")
    assert_one_line_error(proc, "fesnet config has no field 'bogus'")
    assert "clip_length" in proc.stderr and "supervise_proposals" in proc.stderr  # the valid fields
    assert not (tmp_path / "x.onnx").exists()


def test_config_value_of_the_wrong_kind(tmp_path):
    proc = run_cli("export", "msstnet", "--untrained", "--config", "dim=abc", "--out", tmp_path / "x.onnx")
    assert_one_line_error(proc, "msstnet config field 'dim' takes an integer, got 'abc'")


def test_checkpoint_with_an_unknown_config_field(checkpoint_payload, tmp_path):
    torch.save({**checkpoint_payload, "config": {**checkpoint_payload["config"], "depth": 3}}, tmp_path / "c.pt")
    proc = run_cli("export", "msstnet", "--weights", tmp_path / "c.pt", "--out", tmp_path / "x.onnx")
    assert_one_line_error(proc, "config field 'depth'")
    assert "num_heads" in proc.stderr  # the model's fields


def test_checkpoint_without_its_model_entry(checkpoint_payload, tmp_path):
    torch.save({k: v for k, v in checkpoint_payload.items() if k != "model"}, tmp_path / "c.pt")
    # `info` loads a .pt without a model name: the file must say which model it holds
    assert_one_line_error(run_cli("info", tmp_path / "c.pt"), "no 'model' entry")


class _RunsCode:
    """Pickles as a call of os.mkdir: unpickling it would create ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": "edgefer-checkpoint", "payload": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    proc = run_cli("export", "msstnet", "--weights", tmp_path / "evil.pt", "--out", tmp_path / "x.onnx")
    assert_one_line_error(proc, "holds Python objects (posix.mkdir) that a safe load (torch.load weights_only=True) "
                                "refuses; edgefer never unpickles code")
    assert "weights_only=False" not in proc.stderr and "truncated" not in proc.stderr
    assert not marker.exists()  # nothing ran


def test_truncated_checkpoint(checkpoint_payload, tmp_path):
    torch.save(checkpoint_payload, tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_cli("info", tmp_path / "cut.pt"), "truncated or corrupt")


def test_directory_as_model(tmp_path):
    (tmp_path / "models.onnx").mkdir()
    for folder in (tmp_path, tmp_path / "models.onnx"):
        proc = run_cli("predict", "v.mp4", "--model", folder)
        assert_one_line_error(proc, f"model path {folder} is a directory, not a model file")


# --- output paths: checked before any work ------------------------------------------------------------------------

def test_json_into_a_missing_folder_fails_before_the_run(msstnet_export, sample_video, tmp_path):
    out = tmp_path / "nope" / "result.json"
    proc = run_cli("predict", sample_video("single_face.mp4"), "--model", msstnet_export[1], "--json", out)
    assert_one_line_error(proc, f"cannot write --json output {out}: folder {out.parent} does not exist")
    assert proc.stdout == ""  # no header, no window rows: the video was never read


@pytest.mark.parametrize("command", [
    ["predict", "missing.mp4", "--model", "missing.onnx", "--json"],
    ["spot", "missing.mp4", "--model", "missing.onnx", "--json"],
    ["eval-spotting", "--ground-truth", "missing.txt", "--predictions", "missing", "--dataset", "casme2", "--json"],
    ["export", "msstnet", "--weights", "missing.pt", "--out"],
])
def test_every_output_is_checked_before_the_inputs_are_opened(command, tmp_path):
    # the inputs are missing too: an error about the output shows it was checked first
    assert_one_line_error(run_cli(*command, tmp_path / "nope" / "out"), "nope does not exist")
    assert_one_line_error(run_cli(*command, tmp_path), f"{tmp_path}: it is a directory")


def test_json_written_atomically(msstnet_export, sample_video, tmp_path):
    out = tmp_path / "result.json"
    out.write_text("old")
    proc = run_cli("predict", sample_video("single_face.mp4"), "--model", msstnet_export[1], "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["num_frames"] == 72
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary file left behind
    assert proc.stdout.strip().splitlines()[-1] == f"wrote {out}"


# --- a video cut short: one warning line ---------------------------------------------------------------------------

def test_video_cut_short_warns_with_the_frames_read(msstnet_export, sample_video, tmp_path):
    from edgefer.video.reader import count_frames

    data = sample_video("WolfgangLanger_Pexels.mp4").read_bytes()  # 472 frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 10])
    read = count_frames(cut)
    assert 0 < read < 472 - 100
    proc = run_cli("predict", cut, "--model", msstnet_export[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"edgefer: warning: {cut}: read {read} of the 472 frames the container promises (the file is cut short?)"]
    assert f"{read} frames at" in proc.stdout


# --- --debug and the errors edgefer does not expect ---------------------------------------------------------------

@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    args = ["predict", "v.mp4", "--model", tmp_path]
    proc = run_cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert proc.stderr.strip().splitlines()[-1] == (
        f"edgefer.errors.ModelFileError: model path {tmp_path} is a directory, not a model file")


def _failing_info(exc: BaseException):
    def run(args):
        raise exc
    return run


def test_unexpected_exception_is_one_line_unless_debug(monkeypatch, capsys):
    import edgefer.cli.info
    from edgefer.cli import main

    monkeypatch.setattr(edgefer.cli.info, "run", _failing_info(RuntimeError("something broke\n  detail")))
    assert main(["info", "x.onnx"]) == 1
    assert capsys.readouterr().err == ("edgefer: internal error: RuntimeError: something broke (rerun with --debug "
                                       "for the traceback)\n")
    with pytest.raises(RuntimeError, match="something broke"):
        main(["--debug", "info", "x.onnx"])


def test_multi_line_messages_are_collapsed(monkeypatch, capsys):
    import edgefer.cli.info
    from edgefer.cli import main
    from edgefer.errors import ModelFileError

    monkeypatch.setattr(edgefer.cli.info, "run", _failing_info(ModelFileError("\nthe weights do not fit:\n"
                                                                              "\tsize mismatch for head\n\tmore")))
    assert main(["info", "x.onnx"]) == 1
    assert capsys.readouterr().err == "edgefer: error: the weights do not fit: size mismatch for head\n"


def test_a_closed_output_pipe_ends_quietly(msstnet_export):
    # `edgefer info F | head -0`: the reader is gone before the output; no "internal error", exit 128 + SIGPIPE
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "edgefer", "info", str(msstnet_export[1])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, stderr
    assert "error" not in stderr and "Traceback" not in stderr, stderr


def test_default_detector_offline_says_how_to_prepare(msstnet_export, sample_video, tmp_path):
    # an embedded device without network and without the converted detector in its cache: one line naming the
    # fixes (fetch it once beforehand, or use Haar), before any frame is read
    import subprocess
    import sys

    video = sample_video("single_face.mp4")
    env = dict(os.environ, EDGEFER_CACHE=str(tmp_path / "cache"), PIP_CONFIG_FILE=os.devnull,
               PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_FIND_LINKS="", PIP_EXTRA_INDEX_URL="")
    proc = subprocess.run([sys.executable, "-m", "edgefer", "predict", str(video), "--model", str(msstnet_export[1])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert_one_line_error(proc, "edgefer zoo fetch blazeface-short")
    assert "--detector haar" in proc.stderr
