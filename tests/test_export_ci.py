"""``python -m edgefer.export.ci_export``: every model exported with the parity gate, one summary, an honest exit code.

The models are small (``--config`` overrides) so that a run takes seconds. Where TensorRT is installed the same
run also builds and checks the fp16 engines, and the engine test checks them; here it skips.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::edgefer.errors.UntrainedWeightsWarning")
REPO = Path(__file__).resolve().parents[1]
SMALL = ["--config", "msstnet:dim=64", "--config", "msstnet:num_heads=4", "--config", "msstnet:mlp_hidden=128",
         "--config", "stt:dim=64", "--config", "stt:depth=1", "--config", "stt:num_heads=4",
         "--config", "fesnet:clip_length=16", "--config", "fesnet:refine_stages=1"]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def _ci(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgefer.export.ci_export", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=900)


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def test_ci_export_writes_a_passing_summary(tmp_path):
    import onnx

    import edgefer
    from edgefer.bench.machine import describe

    out = tmp_path / "ci"  # created by the script
    proc = _ci("--out", out, "--untrained", "--seed", "3", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = _summary(out / "summary.json")
    assert proc.stdout.strip().splitlines()[-1] == f"wrote {out / 'summary.json'}"
    assert summary["passed"] is True and summary["failed"] == []
    assert summary["machine"] == describe() and summary["opset"] == 17 and summary["atol"] == 1e-4
    assert [m["model"] for m in summary["models"]] == ["msstnet", "stt", "fesnet"]
    if not HAS_TENSORRT:
        assert summary["tensorrt"] == "skipped (not installed)"
        assert "tensorrt: skipped (not installed)" in proc.stdout
    for entry in summary["models"]:
        path = Path(entry["path"])
        assert path == out / f"{entry['model']}.onnx" and path.is_file()
        assert entry["passed"] is True and entry["error"] is None and entry["trained"] is False
        assert entry["weights"] == "untrained (seed 3)" and entry["seconds"] > 0
        assert entry["max_abs_diff"] == max(entry["max_abs_diff_by_set"].values())
        assert 0 <= entry["max_abs_diff"] <= 1e-4
        proto = onnx.load(str(path))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [entry["opset"]] == [17]
        assert edgefer.load(path).metadata.model == entry["model"]  # the runtime reads what CI wrote
        if not HAS_TENSORRT:
            assert entry["engine"] == "skipped (not installed)"
    small = edgefer.load(out / "stt.onnx").metadata.extra
    assert json.loads(small["config"])["depth"] == 1  # the model's own --config override reached it


def test_ci_export_names_the_model_that_fails(tmp_path):
    broken = tmp_path / "stt.pt"
    broken.write_bytes(b"this is not a checkpoint")
    out = tmp_path / "ci"
    proc = _ci("--out", out, "--models", "msstnet", "stt", "--untrained", "--weights", f"stt={broken}", *SMALL)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ci_export: error: failed: stt (ModelFileError: ") and "msstnet" not in last, proc.stderr
    summary = _summary(out / "summary.json")  # written all the same, covering every model
    assert summary["passed"] is False and summary["failed"] == ["stt"]
    ok, bad = summary["models"]
    assert ok["model"] == "msstnet" and ok["passed"] is True and (out / "msstnet.onnx").is_file()
    assert bad["model"] == "stt" and bad["passed"] is False and bad["path"] is None and bad["weights"] == str(broken)
    assert bad["error"].startswith("ModelFileError: ") and str(broken) in bad["error"]
    assert not (out / "stt.onnx").exists()


def test_ci_export_parity_gate_failure_is_a_failure(tmp_path):
    out = tmp_path / "ci"
    proc = _ci("--out", out, "--models", "fesnet", "--untrained", "--atol", "0", *SMALL)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ci_export: error: failed: fesnet (ExportError: ONNX Runtime disagrees with PyTorch"), last
    entry = _summary(out / "summary.json")["models"][0]
    assert entry["passed"] is False and entry["atol"] == 0 and "max abs output difference" in entry["error"]
    assert not (out / "fesnet.onnx").exists()  # the gate refused to write it


@pytest.mark.parametrize("args, needle", [
    (["--config", "resnet:dim=64"], "unknown model 'resnet'"),
    (["--weights", "stt"], "expects MODEL=CKPT"),
    (["--atol", "-1"], "--atol"),
    (["--models", "vit"], "invalid choice"),
])
def test_ci_export_usage_errors(tmp_path, args, needle):
    proc = _ci("--out", tmp_path / "ci", "--untrained", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert ": error: " in last and needle in last, proc.stderr
    assert not (tmp_path / "ci").exists()


def test_ci_export_needs_weights_or_untrained(tmp_path):
    proc = _ci("--out", tmp_path / "ci", "--weights", "msstnet=m.pt")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("ci_export: error: no weights for stt, fesnet: give --weights MODEL=CKPT or "
                                   "--untrained")
    assert not (tmp_path / "ci").exists()


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_ci_export_engine_step_without_tensorrt(tmp_path):
    """Here: no engines are attempted (not a failure); the engine step itself records the builder's refusal."""
    import torch

    from edgefer.export.ci_export import TENSORRT_SKIPPED, build_fp16_engine, engine_support
    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    assert engine_support() == (None, TENSORRT_SKIPPED)
    torch.manual_seed(0)
    model = build_model("stt", dim=64, depth=1, num_heads=4).eval()
    meta = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    onnx_path = export_onnx(model, tmp_path / "stt.onnx", meta, random_batches=(1,)).path
    entry = build_fp16_engine(onnx_path, tmp_path / "stt_fp16.engine", None)
    assert entry["passed"] is False and entry["path"] is None and entry["seconds"] >= 0
    assert entry["error"].startswith("BackendUnavailableError: TensorRT is not installed"), entry["error"]
    assert not (tmp_path / "stt_fp16.engine").exists()


def test_ci_export_builds_and_checks_fp16_engines(tmp_path, sample_video):
    """With TensorRT: every fp16 engine is built, checked against ONNX Runtime on real clips, and recorded."""
    pytest.importorskip("tensorrt", reason="no TensorRT on this machine: the fp16 engines are not built here")
    out = tmp_path / "ci"
    proc = _ci("--out", out, "--untrained", "--check-video", sample_video("single_face.mp4"), *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = _summary(out / "summary.json")
    import tensorrt

    assert summary["tensorrt"] == tensorrt.__version__
    for entry in summary["models"]:
        engine = entry["engine"]
        assert isinstance(engine, dict) and engine["passed"] is True and engine["error"] is None
        assert Path(engine["path"]) == out / f"{entry['model']}_fp16.engine" and Path(engine["path"]).is_file()
        assert "real" in entry["max_abs_diff_by_set"]
