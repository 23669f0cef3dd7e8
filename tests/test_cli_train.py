"""``edgefer train`` on bad data and bad arguments: one-line errors naming the file and line, usage errors."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("yaml")

from cli_support import assert_one_line_error, assert_usage_error, run_cli  # noqa: E402


@pytest.fixture()
def dataset(tmp_path):
    from edgefer.data.synthetic import write_dfer_dataset

    return write_dfer_dataset(tmp_path / "data", clips_per_class=3, frames=12, size=32, seed=0)


def _train(data, out, *extra):
    return run_cli("train", "--config", "tiny", "--train", data["train_list"], "--test", data["test_list"],
                   "--out", out, "--no-progress", "--epochs", "1", *extra)


def _line(list_path, n):
    return list_path.read_text().splitlines()[n - 1].split()


def test_missing_frame_names_file_and_line(dataset, tmp_path):
    listed = dataset["train_list"]
    folder = listed.parent / _line(listed, 2)[0]
    sorted(folder.iterdir())[3].unlink()
    assert_one_line_error(_train(dataset, tmp_path / "run"), f"{listed}:2")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_wrong_num_frames_names_file_and_line(dataset, tmp_path):
    listed = dataset["train_list"]
    lines = listed.read_text().splitlines()
    fields = lines[0].split()
    lines[0] = f"{fields[0]} 99 {fields[2]}"
    listed.write_text("\n".join(lines) + "\n")
    proc = _train(dataset, tmp_path / "run")
    assert_one_line_error(proc, f"{listed}:1")
    assert "99" in proc.stderr


def test_bad_label_names_file_and_line_and_skip_bad_counts_it(dataset, tmp_path):
    listed = dataset["test_list"]
    lines = listed.read_text().splitlines()
    fields = lines[-1].split()
    lines[-1] = f"{fields[0]} {fields[1]} 9"
    listed.write_text("\n".join(lines) + "\n")
    proc = _train(dataset, tmp_path / "run")
    assert_one_line_error(proc, f"{listed}:{len(lines)}")
    assert "label 9" in proc.stderr
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
    ok = _train(dataset, tmp_path / "run", "--skip-bad")
    assert ok.returncode == 0, ok.stderr
    assert "skipped 1 bad entries" in ok.stdout
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "metrics.csv").is_file()
    assert (tmp_path / "run" / "config.yaml").read_text().count("skip_bad: true") == 1


def test_bad_arguments(dataset, tmp_path):
    assert_usage_error(run_cli("train", "--config", "tiny", "--out", tmp_path / "r", "--epochs", "0"), "--epochs")
    assert_one_line_error(run_cli("train", "--config", "nosuch", "--out", tmp_path / "r"), "no such file")
    assert_one_line_error(_train(dataset, tmp_path / "r", "--set", "optim.lrr=1"), "unknown key optim.lrr")
    assert_one_line_error(_train(dataset, tmp_path / "r", "--amp", "on", "--device", "cpu"), "CUDA")
    assert_one_line_error(_train(dataset, tmp_path / "r", "--resume"), "no last.pt")
    assert_one_line_error(_train(dataset, tmp_path / "r", "--folds", "1-2"), "needs '{fold}'")


def test_unreadable_image_in_a_worker_names_the_list_line(dataset, tmp_path):
    """The image is only decoded when its clip loads, in a DataLoader worker: the one line still names it."""
    listed = dataset["train_list"]
    folder = listed.parent / _line(listed, 1)[0]
    image = sorted(folder.iterdir())[0]
    image.write_bytes(b"not a png")
    proc = _train(dataset, tmp_path / "run", "--workers", "1", "--set", "data.selection_fraction=0.5")
    assert_one_line_error(proc, image.name)
    assert "DataLoader worker" not in proc.stderr


def test_folds_print_a_per_fold_and_mean_table(dataset, tmp_path):
    annotation = dataset["train_list"].parent
    for name in ("train", "test"):  # fold 2: the same clips, listed under DFEW's fold naming
        (annotation / f"set_2_{name}.txt").write_text((annotation / f"set_1_{name}.txt").read_text())
    proc = run_cli("train", "--config", "tiny", "--train", annotation / "set_{fold}_train.txt", "--test",
                   annotation / "set_{fold}_test.txt", "--folds", "1-2", "--epochs", "1", "--out", tmp_path / "dfew",
                   "--no-progress", "--set", "data.selection_fraction=0.5")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("fold   epoch"):].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["1", "2", "mean"]
    assert "WAR" in table[0] and "UAR" in table[0]
    assert (tmp_path / "dfew" / "fold_2" / "best.pt").is_file()
    war = [float(line.split()[2].rstrip("%")) for line in table[1:3]]
    assert float(table[3].split()[1].rstrip("%")) == pytest.approx(sum(war) / 2, abs=0.01)


def test_stt_trains_with_its_compact_loss_and_the_checkpoint_exports(dataset, tmp_path):
    """STT through the same trainer (its compact softmax loss, models.md), then ``edgefer export --weights`` on the
    selected checkpoint: the parity gate passes and the artefact says it is trained."""
    import json

    import numpy as np

    config = '{"frame_size": 32, "dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0, "dropout": 0.0}'
    out = tmp_path / "stt"
    proc = run_cli("train", "--config", "stt", "--train", dataset["train_list"], "--test", dataset["test_list"],
                   "--out", out, "--no-progress", "--epochs", "1", "--batch-size", "8", "--set",
                   f"model_config={config}", "--set", "data.num_workers=0")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["test"]["war"] <= 1.0
    losses = np.loadtxt(out / "steps.csv", delimiter=",", skiprows=1, usecols=-1, ndmin=1)
    assert len(losses) >= 1 and np.isfinite(losses).all()
    onnx_path = tmp_path / "stt.onnx"
    proc = run_cli("export", "stt", "--weights", out / "best.pt", "--out", onnx_path)
    assert proc.returncode == 0, proc.stderr
    assert "trained weights" in proc.stdout and onnx_path.stat().st_size > 0
