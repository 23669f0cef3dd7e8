"""Several folds as one command (DFEW's 5 folds, ``--folds 1-5``): one run per fold, a per-fold and mean table.

Each fold's data paths are the config's with ``{fold}`` replaced (``annotation/set_{fold}_train.txt``), and its
run goes to ``OUT/fold_<k>/``. The papers report DFEW as the mean of the 5 folds' WAR and UAR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import TrainConfig, for_fold
from .trainer import TrainResult, train


def train_folds(config: TrainConfig, folds: list[int], out_dir: str | Path, *, resume: bool = False,
                progress: bool = True, log: Callable[[str], Any] = print) -> dict[int, TrainResult]:
    """Train every fold of ``folds`` (:func:`edgefer.train.trainer.train`), fold k into ``out_dir/fold_k``.

    Raises:
        ArgumentError: the data paths have no ``{fold}`` placeholder; otherwise as :func:`train`.
    """
    from .distributed import setup, teardown

    configs = {k: for_fold(config, k) for k in folds}  # every fold's paths checked before the first run
    ctx = setup(config.device)  # one process group for all folds (under torchrun)
    say = log if ctx.is_main else (lambda _m: None)
    results = {}
    try:
        for k, fold_config in configs.items():
            say(f"fold {k}: train {fold_config.data.train}, test {fold_config.data.test}")
            results[k] = train(fold_config, Path(out_dir) / f"fold_{k}", resume=resume and
                               (Path(out_dir) / f"fold_{k}" / "last.pt").is_file(), progress=progress, log=log)
    finally:
        teardown(ctx)
    return results


def fold_table(results: dict[int, TrainResult]) -> str:
    """A text table: one row per fold (test WAR/UAR, or F1, of the selected epoch) and the mean row."""
    keys = ("war", "uar") if all(r.test and "war" in r.test for r in results.values()) else ("f1",)
    lines = [f"{'fold':<6} {'epoch':>5} " + " ".join(f"{k.upper():>8}" for k in keys)]
    values = {k: [] for k in keys}
    for fold, r in sorted(results.items()):
        cells = []
        for k in keys:
            v = r.test[k] if r.test else float("nan")
            values[k].append(v)
            cells.append(f"{100 * v:>7.2f}%")
        lines.append(f"{fold:<6} {r.best_epoch:>5} " + " ".join(cells))
    lines.append(f"{'mean':<6} {'':>5} " + " ".join(f"{100 * float(np.mean(values[k])):>7.2f}%" for k in keys))
    return "\n".join(lines)
