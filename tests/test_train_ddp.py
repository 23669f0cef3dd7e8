"""DDP equivalence and resume: ``torchrun`` with 2 CPU processes (gloo) against 1 process with the same global
batch, and a run stopped after epoch k and resumed against the uninterrupted run."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")

from cli_support import REPO, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from edgefer.data.synthetic import write_dfer_dataset

    return write_dfer_dataset(tmp_path_factory.mktemp("ddp_data"), clips_per_class=4, frames=16, size=32, seed=1)


def _args(data, out, *extra):
    return ["train", "--config", "tiny", "--train", data["train_list"], "--test", data["test_list"], "--out", out,
            "--no-progress", "--batch-size", "4", "--set", "schedule.name=constant", *extra]


def _steps(out):
    with open(out / "steps.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_two_gloo_processes_match_one_process(small_dataset, tmp_path):
    """Same global batch (4 clips: 2 per rank), same shuffle (DistributedSampler, seed + epoch), per-index
    augmentation, dropout 0, BatchNorm frozen (freeze_bn: SyncBatchNorm needs CUDA, and unsynchronised BN would
    normalise each rank's half batch differently): the loss curve and the final weights agree to float rounding
    (DDP's gradient all-reduce sums in another order; with AdamW the weights differ by ~5e-4, see below)."""
    single, double = tmp_path / "one", tmp_path / "two"
    # SGD: its update is linear in the gradient, so the all-reduce's rounding stays at rounding size (Adam divides
    # by sqrt(v): on parameters whose gradient is ~0 it turns rounding noise into full-size steps)
    extra = ("--epochs", "2", "--set", "freeze_bn=true", "--set", "optim.name=sgd", "--set", "optim.lr=0.01")
    proc = run_cli(*_args(small_dataset, single, *extra))
    assert proc.returncode == 0, proc.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "edgefer",
           *map(str, _args(small_dataset, double, *extra))]
    proc2 = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert "2 process(es)" in proc2.stdout and proc2.stdout.count("epoch 2/2") == 1  # only rank 0 prints
    a, b = _steps(single), _steps(double)
    assert len(a) == len(b) > 4
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4, (a, b)
    wa, wb = _weights(single / "last.pt"), _weights(double / "last.pt")
    diff = max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa if wa[k].is_floating_point())
    print(f"DDP 2 x gloo vs 1 process: max loss diff {max(abs(x - y) for x, y in zip(a, b)):.2e}, "
          f"max weight diff {diff:.2e}")
    assert diff < 1e-4
    assert a[0] != a[-1]  # it trained


def test_resume_gives_the_uninterrupted_run(small_dataset, tmp_path):
    """Dropout on and augmentation on: RNG states, optimizer, scheduler and sampler epoch all come back."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    extra = ("--model-config", "dropout=0.2", "--set", "schedule.name=step", "--set", "schedule.step_size=1",
             "--set", "optim.name=sgd")
    proc = run_cli(*_args(small_dataset, whole, "--epochs", "3", *extra))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(*_args(small_dataset, parts, "--epochs", "2", *extra))
    assert proc.returncode == 0, proc.stderr
    again = run_cli(*_args(small_dataset, parts, "--epochs", "2", *extra))
    assert again.returncode == 1 and "already holds a run" in again.stderr
    proc = run_cli(*_args(small_dataset, parts, "--epochs", "3", "--resume", *extra))
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stdout and "epoch 3/3" in proc.stdout and "epoch 1/3" not in proc.stdout
    wa, wb = _weights(whole / "last.pt"), _weights(parts / "last.pt")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _steps(whole) == _steps(parts)
    changed = run_cli(*_args(small_dataset, parts, "--epochs", "4", "--resume", *extra[:-2]))
    assert changed.returncode == 1 and "differs" in changed.stderr and "optim" in changed.stderr
