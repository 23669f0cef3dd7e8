"""MSSTNet end to end on ONNX Runtime: the standard-op graph against the graph with edgefer's custom ops.

``edgefer bench model`` runs :func:`run`. One process builds one MSSTNet (default config, untrained, seed 0),
exports it twice with :func:`export.onnx_export.export_onnx` -- standard ops (``kernels="reference"``) and
``edgefer``-domain custom nodes (``custom_ops=True``, run by ``libedgefer_ortops``) -- and times both ONNX
Runtime CPU sessions on the same clips at each batch size. Calls alternate between the two sessions so that
load from other processes hits both alike. Time = median wall-clock ms of one ``session.run`` (a batch of B
clips of 16 x 3 x 112 x 112), each call after a 50 ms pause that lets the other session's spinning threads go
idle; clips/s = B / time; speedup = standard time / custom time.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from ..errors import BackendUnavailableError

#: Pause before each timed call, so that the other session's spinning worker threads have
#: gone idle: each call then sees the machine as a lone model would.
_SETTLE_S = 0.05


@dataclass
class Result:
    """One batch size: median and best ms per call of each graph, and the largest |logit| difference."""

    batch: int
    standard_ms: float
    custom_ms: float
    max_abs_diff: float
    standard_best_ms: float = float("nan")
    custom_best_ms: float = float("nan")
    repeats: int = 0
    #: median over the repeats of (standard call / the custom call right after it): each ratio compares two
    #: calls made a fraction of a second apart, so load that drifts over the run cancels out of it
    paired_speedup: float = float("nan")
    #: in how many of the pairs the custom call was the faster
    custom_wins: int = 0

    @property
    def speedup(self) -> float:
        """standard median / custom median (> 1: the custom ops are faster)."""
        return self.standard_ms / self.custom_ms

    @property
    def best_speedup(self) -> float:
        """standard best / custom best: less sensitive to other processes' load than the medians."""
        return self.standard_best_ms / self.custom_best_ms

    def clips_per_s(self, ms: float) -> float:
        """Clips per second at ``ms`` per batch."""
        return self.batch / (ms / 1e3)


def run(batches: Sequence[int] = (1, 8), threads: int | None = None, repeats: int | None = None,
        out: TextIO | None = None, *, batch: Sequence[int] | None = None, seed: int = 0) -> list[Result]:
    """Time MSSTNet on ONNX Runtime, standard ops vs custom ops, and print one table.

    Args:
        batches: batch sizes B (clips per ``session.run``); ``batch`` is accepted as an alias.
        threads: ONNX Runtime intra-op threads, which the custom ops run on too (default: the CPUs this process
            may use).
        repeats: timed calls per graph and batch size (default: 20 for B <= 2, else 8).
        out: where the table goes (default: stdout).
        seed: seed of the model weights and the clips.

    Returns:
        One :class:`Result` per batch size.

    Raises:
        BackendUnavailableError: onnxruntime, torch, the compiled torch ops (``edgefer._C``) or the ONNX
            Runtime custom-op library is missing.
        ValueError: a batch size or thread count below 1.
    """
    if batch is not None:
        batches = batch
    batches = [int(b) for b in batches]
    if not batches or min(batches) < 1:
        raise ValueError(f"batch sizes must be >= 1, got {batches}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    out = out or sys.stdout
    ort, np, torch = _imports()
    from .. import ortops

    ortops.library_path()  # raises BackendUnavailableError with the reason when it is missing
    from .kernels import machine

    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="edgefer-bench-") as tmp:
        standard_path, custom_path = _export_both(Path(tmp), seed, torch)
        sessions = {name: _session(ort, ortops, path, threads, custom=name == "custom")
                    for name, path in (("standard", standard_path), ("custom", custom_path))}
        results = [_time_batch(np, sessions, b, repeats or (20 if b <= 2 else 8), seed) for b in batches]
    _print(out, machine(), threads, results)
    return results


def _imports():
    try:
        import numpy as np
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"`edgefer bench model` needs torch and onnxruntime ({exc})") from None
    try:
        import edgefer.ops.cpp  # noqa: F401  the torch ops the custom-op export traces
    except ImportError as exc:
        raise BackendUnavailableError(f"edgefer's compiled kernels are not built ({exc})") from None
    return ort, np, torch


def _export_both(tmp: Path, seed: int, torch) -> tuple[Path, Path]:
    from edgefer.export.onnx_export import export_onnx

    from ..models import build_model
    from ..models.checkpoint import artefact_metadata

    torch.manual_seed(seed)
    model = build_model("msstnet", kernels="reference").eval()
    paths = []
    for custom in (False, True):
        metadata = artefact_metadata(model, trained=False, weights_sha256="", custom_ops=custom)
        path = tmp / ("msstnet_custom.onnx" if custom else "msstnet_standard.onnx")
        export_onnx(model, path, metadata, custom_ops=custom, random_batches=(1,), seed=seed)
        paths.append(path)
    return paths[0], paths[1]


def _session(ort, ortops, path: Path, threads: int, custom: bool):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if custom:
        ortops.register(options)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _time_batch(np, sessions: dict, batch: int, repeats: int, seed: int) -> Result:
    clips = np.random.default_rng(seed + batch).random((batch, 16, 3, 112, 112), dtype=np.float32)
    feeds = {name: {s.get_inputs()[0].name: clips} for name, s in sessions.items()}
    outputs = {name: s.run(None, feeds[name])[0] for name, s in sessions.items()}  # warm-up, and parity
    for name, s in sessions.items():
        s.run(None, feeds[name])
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, s in sessions.items():  # alternate, so drifting background load hits both alike
            time.sleep(_SETTLE_S)
            t0 = time.perf_counter()
            s.run(None, feeds[name])
            times[name].append(time.perf_counter() - t0)
    diff = float(np.max(np.abs(outputs["standard"] - outputs["custom"])))
    ratios = [s / c for s, c in zip(times["standard"], times["custom"])]
    return Result(batch, statistics.median(times["standard"]) * 1e3, statistics.median(times["custom"]) * 1e3, diff,
                  min(times["standard"]) * 1e3, min(times["custom"]) * 1e3, repeats,
                  paired_speedup=statistics.median(ratios), custom_wins=sum(r > 1 for r in ratios))


def _print(out: TextIO, info: dict, threads: int, results: list[Result]) -> None:
    out.write(f"MSSTNet end to end on ONNX Runtime {info.get('onnxruntime')} (CPUExecutionProvider), "
              f"standard ops vs edgefer custom ops\n")
    out.write(f"machine: {info.get('cpu')}, {info.get('cores')} CPUs available, {threads} threads, "
              f"edgefer ISA {info.get('isa')}, torch {info.get('torch')}\n")
    header = f"{'B':>3} | {'standard ms':>11} | {'custom ms':>9} | {'standard clips/s':>16} | {'custom clips/s':>14} | " \
             f"{'speedup':>7} | {'paired':>7} | {'custom faster':>13} | {'best std/custom ms':>18} | " \
             f"{'best speedup':>12} | {'max |diff|':>10}"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for r in results:
        out.write(f"{r.batch:>3} | {r.standard_ms:>11.1f} | {r.custom_ms:>9.1f} | "
                  f"{r.clips_per_s(r.standard_ms):>16.2f} | {r.clips_per_s(r.custom_ms):>14.2f} | "
                  f"{r.speedup:>6.3f}x | {r.paired_speedup:>6.3f}x | {f'{r.custom_wins}/{r.repeats}':>13} | "
                  f"{r.standard_best_ms:>8.1f} / {r.custom_best_ms:<7.1f} | "
                  f"{r.best_speedup:>11.3f}x | {r.max_abs_diff:>10.2e}\n")
    out.write(f"speedup = standard ms / custom ms, medians of {'/'.join(str(r.repeats) for r in results)} "
              "alternating session.run calls per graph; paired = median of standard/custom over back-to-back call "
              "pairs; custom faster = pairs the custom graph won; best = fastest call\n")
    out.flush()
