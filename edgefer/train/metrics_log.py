"""The training log: one CSV row per epoch always, TensorBoard scalars when ``tensorboard`` is installed.

``metrics.csv`` is rewritten whole (atomically, :func:`edgefer.outputs.write_atomically`) after every epoch from
the run's history, so a resumed run continues the same file and a reader never sees half a row. TensorBoard
(``torch.utils.tensorboard.SummaryWriter``, event files under ``tensorboard/``) is used when the package
imports; without it the CSV is the log. Only rank 0 creates a :class:`MetricsLog`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..outputs import write_atomically


class MetricsLog:
    """Epoch metrics of one run, written to ``out_dir/metrics.csv`` (and TensorBoard when installed).

    Args:
        out_dir: the run's folder.
        history: rows already logged (a resumed run's), each a dict of column -> value.
        tensorboard: try TensorBoard (False: CSV only).
    """

    def __init__(self, out_dir: str | Path, history: list[dict] | None = None, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / "metrics.csv"
        self.rows: list[dict] = list(history or [])
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the CSV is the log
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def log(self, row: dict) -> None:
        """Add one epoch's row (it must hold ``epoch``) and rewrite the CSV."""
        self.rows.append(dict(row))
        columns: list[str] = []
        for r in self.rows:
            columns.extend(k for k in r if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: _cell(v) for k, v in r.items()})
        write_atomically(self.path, buffer.getvalue(), "metrics log")
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _cell(value):
    return f"{value:.6g}" if isinstance(value, float) else value
