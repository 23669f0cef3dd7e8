"""A confusion matrix as a PNG with the class names (matplotlib, imported when drawn: ``edgefer[plots]``).

Rows are the target classes, columns the predicted ones; each cell shows the count and is shaded by the row's
fraction (the per-class recall on the diagonal). Written through :func:`edgefer.outputs.write_atomically`. (The
pictures' home is :mod:`edgefer.plots`; this function could move there.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ArgumentError


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], out: str | Path, *, title: str = "") -> Path:
    """Draw ``confusion`` (C, C) int counts (rows = targets) labelled with ``labels`` into the PNG ``out``.

    Raises:
        ArgumentError: the matrix is not (len(labels), len(labels)).
        BackendUnavailableError: matplotlib is not installed.
        OutputPathError: ``out`` cannot be written.
    """
    from ..plots import _pyplot, _save

    cm = np.asarray(confusion, dtype=np.int64)
    n = len(labels)
    if cm.shape != (n, n):
        raise ArgumentError(f"confusion matrix of shape {cm.shape} for {n} labels")
    plt = _pyplot()
    rows = cm.sum(axis=1, keepdims=True)
    fraction = np.divide(cm, np.maximum(rows, 1))
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("target")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if fraction[i, j] > 0.5 else "black", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, plt, out, "confusion matrix")
