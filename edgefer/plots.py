"""Pictures of a video's results as PNG files (matplotlib, imported when a plot is drawn: ``pip install
'edgefer[plots]'``).

- :func:`plot_predictions`: a DFER result (:class:`edgefer.pipeline.VideoPrediction`) -- the probability of each
  of the 7 classes over time (one point per window, at its centre), the window starts marked along the bottom,
  the face-less spans shaded grey;
- :func:`plot_spotting`: a spotting result (:class:`edgefer.spotting.video.SpottingVideoResult`) -- the
  frame-wise macro and micro scores, the spotted intervals as bars on a timeline below them, face-less spans
  shaded;
- :func:`plot_confusion`: a confusion matrix with the class names (``edgefer train`` draws the test fold's).

Both write through :func:`edgefer.outputs.write_atomically` (check the path first with
:func:`edgefer.outputs.check_output_path`) and return the path.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ArgumentError, BackendUnavailableError
from .outputs import write_atomically

#: Colours of the DFER classes (by label) and spotting classes.
COLOURS = {"Happy": "#e6a100", "Sad": "#1f5fbf", "Neutral": "#7f7f7f", "Angry": "#d62728", "Surprise": "#9467bd",
           "Disgust": "#2ca02c", "Fear": "#17becf", "macro": "#d62728", "micro": "#1f5fbf"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendUnavailableError("plots need matplotlib: pip install 'edgefer[plots]'") from None
    return plt


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of True in a bool array."""
    mask = np.asarray(mask, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _save(fig, plt, out: str | Path, what: str) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return write_atomically(out, buffer.getvalue(), what)


def plot_predictions(result, out: str | Path, *, size: tuple[float, float] = (10.0, 4.0)) -> Path:
    """Draw a video's window probabilities over time into the PNG ``out``.

    Args:
        result: a :class:`edgefer.pipeline.VideoPrediction`.
        out: the PNG to write (replaced atomically).
        size: figure size in inches (100 dpi: 1000 x 400 pixels by default).

    Returns:
        ``out`` as a Path.

    Raises:
        BackendUnavailableError: matplotlib is not installed. OutputPathError: ``out`` cannot be written.
    """
    plt = _pyplot()
    fps = result.fps or 1.0
    fig, ax = plt.subplots(figsize=size)
    labels = next((w.prediction.labels for w in result.windows if w.prediction), ())
    centres = np.array([(w.start_s + w.end_s) / 2 for w in result.windows])
    for k, label in enumerate(labels):
        values = np.array([w.prediction.probabilities[k] if w.prediction else np.nan for w in result.windows])
        ax.plot(centres, values, marker="o", markersize=3, linewidth=1.6, label=label, color=COLOURS.get(label))
    for k, (start, stop) in enumerate(_spans(~np.asarray(result.face_found, dtype=bool))):
        ax.axvspan(start / fps, stop / fps, color="0.85", zorder=0, label="no face" if k == 0 else None)
    for w in result.windows:
        ax.axvline(w.start_s, ymin=0, ymax=0.03, color="black", linewidth=0.8)
    ax.set_xlim(0, result.num_frames / fps)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    title = f"{Path(result.path).name}: {result.model}, {len(result.windows)} windows (ticks: window starts)"
    ax.set_title(title if result.trained else title + " - UNTRAINED weights")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, out, "--plot output")


def plot_spotting(result, out: str | Path, *, size: tuple[float, float] = (10.0, 4.0)) -> Path:
    """Draw a spotting result into the PNG ``out``: frame-wise macro / micro scores and the intervals below.

    Args:
        result: a :class:`edgefer.spotting.video.SpottingVideoResult`.
        out: the PNG to write (replaced atomically).
        size: figure size in inches (100 dpi).

    Returns:
        ``out`` as a Path.

    Raises:
        BackendUnavailableError: matplotlib is not installed. OutputPathError: ``out`` cannot be written.
    """
    plt = _pyplot()
    fig, (ax, line) = plt.subplots(2, 1, figsize=size, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    frames = np.arange(result.num_frames)
    for k, name in enumerate(result.classes):
        if name == "neutral":
            continue
        ax.plot(frames, result.probabilities[:, k], linewidth=1.2, label=f"{name} score", color=COLOURS.get(name))
    faceless = _spans(~np.asarray(result.face_found, dtype=bool))
    for axis in (ax, line):
        for start, stop in faceless:
            axis.axvspan(start - 0.5, stop - 0.5, color="0.85", zorder=0)
    rows = {"macro": 1, "micro": 0}
    for interval in result.intervals:
        row = rows.get(interval.label, 0)
        line.broken_barh([(interval.start_frame - 0.5, interval.end_frame - interval.start_frame + 1)], (row - 0.35, 0.7),
                         color=COLOURS.get(interval.label))
    line.set_yticks([0, 1], ["micro", "macro"])
    line.set_ylim(-0.6, 1.6)
    line.set_xlabel(f"frame ({result.fps:.2f} fps)")
    line.set_xlim(-0.5, result.num_frames - 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    n = {c: sum(i.label == c for i in result.intervals) for c in ("macro", "micro")}
    title = (f"{Path(result.path).name}: {result.model}, {n['macro']} macro, {n['micro']} micro intervals "
             f"(grey: no face)")
    ax.set_title(title if getattr(result, "trained", True) else title + " - UNTRAINED weights")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, out, "--plot output")


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], out: str | Path, *, title: str = "") -> Path:
    """Draw ``confusion`` (C, C) int counts (rows = targets, columns = predictions) labelled with ``labels`` into
    the PNG ``out``; each cell shows the count, shaded by the row's fraction (per-class recall on the diagonal).

    Raises:
        ArgumentError: the matrix is not (len(labels), len(labels)).
        BackendUnavailableError: matplotlib is not installed.
        OutputPathError: ``out`` cannot be written.
    """
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
