"""Round trip: a training checkpoint exports with ``edgefer export --weights`` (parity gate) and ``edgefer
evaluate`` gives the ONNX file the checkpoint's WAR/UAR on the same list."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("yaml")
pytest.importorskip("onnx")

from cli_support import REPO, assert_one_line_error, run_cli  # noqa: E402


def test_checkpoint_exports_and_the_artefact_scores_the_same(tmp_path):
    from edgefer.data.synthetic import write_dfer_dataset

    data = write_dfer_dataset(tmp_path / "data", clips_per_class=3, frames=16, size=32, seed=2)
    run = tmp_path / "run"
    proc = run_cli("train", "--config", "tiny", "--train", data["train_list"], "--test", data["test_list"],
                   "--out", run, "--no-progress", "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert (run / "confusion_test.png").stat().st_size > 1000
    results = json.loads((run / "results.json").read_text())
    onnx_path = tmp_path / "best.onnx"
    proc = run_cli("export", "msstnet", "--weights", run / "best.pt", "--out", onnx_path)
    assert proc.returncode == 0, proc.stderr  # the checkpoint carries its config; the parity gate passed
    assert "trained weights" in proc.stdout
    out_json = tmp_path / "eval.json"
    proc = run_cli("evaluate", run / "best.pt", onnx_path, "--dataset", data["test_list"], "--json", out_json)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out_json.read_text())
    assert [r["kind"].split()[0] for r in rows] == ["checkpoint", "artefact"]
    assert rows[0]["confusion"] == rows[1]["confusion"]
    assert rows[0]["war"] == rows[1]["war"] and rows[0]["uar"] == rows[1]["uar"]
    assert rows[0]["war"] == pytest.approx(results["test"]["war"])  # the trainer's own test score
    assert "+0.00" in proc.stdout
    # the artefact's row needs no torch: the same command with torch made unimportable
    code = ("import sys; sys.modules['torch'] = None; from edgefer.cli import main; "
            f"sys.exit(main(['evaluate', {str(onnx_path)!r}, '--dataset', {str(data['test_list'])!r}]))")
    blocked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert blocked.returncode == 0, blocked.stderr
    assert f"{100 * rows[1]['war']:.2f}%" in blocked.stdout


def test_evaluate_bad_list(tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("nowhere 16 0\n")
    assert_one_line_error(run_cli("evaluate", tmp_path / "x.onnx", "--dataset", listed), f"{listed}:1")
