"""``edgefer bench runtime``: one clip's latency, ONNX Runtime (CPU provider) against PyTorch eager, in one run.

Both run the same untrained model (seed 0) on the same (B, T, 3, H, W) float32 input after warm-up; the table
gives the median and the min over ``repeats`` runs, clips/s, and the ratio to PyTorch eager. Preprocessing is
excluded (it is the same numpy code for every backend).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def _time(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def machine() -> str:
    """A one-line description of this machine (:func:`edgefer.bench.machine.describe`)."""
    from .machine import describe

    return describe()


def run(model: str = "msstnet", batches: tuple[int, ...] = (1,), repeats: int = 10, threads: int | None = None) -> list[dict]:
    """Print and return the latency table for ``model`` at each batch size.

    Args:
        model: a registered model name.
        batches: batch sizes B.
        repeats: timed runs per row (after 2 warm-up runs).
        threads: intra-op threads for both backends (None: each backend's default).

    Returns:
        One dict a row: backend, batch, median_ms, min_ms, clips_per_s, ratio (PyTorch median / this median).
    """
    import numpy as np
    import torch

    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256
    from edgefer.runtime.onnx_backend import OnnxModel
    from edgefer.export.onnx_export import export_onnx

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model, kernels="reference").eval()
    meta = artefact_metadata(net, trained=False, weights_sha256=weights_sha256(net.state_dict()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(net, Path(tmp, f"{model}.onnx"), meta, random_batches=(1,)).path
        ort_model = OnnxModel(path, threads=threads)
        shape = (meta.clip_length, meta.channels, *meta.frame_size)
        print(f"edgefer bench runtime: {model}, input (B, {', '.join(map(str, shape))}) float32, "
              f"median of {repeats}; torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"machine: {machine()}")
        print(f"{'backend':<24} {'B':>3} {'median ms':>10} {'min ms':>8} {'clips/s':>8} {'vs eager':>9}")
        for batch in batches:
            x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
            xt = torch.from_numpy(x)

            def eager():
                with torch.no_grad():
                    net(xt)

            results = {"pytorch eager": _time(eager, repeats),
                       "onnxruntime cpu": _time(lambda: ort_model._forward(x), repeats)}
            base = statistics.median(results["pytorch eager"])
            for backend, times in results.items():
                med = statistics.median(times)
                row = dict(backend=backend, batch=batch, median_ms=1e3 * med, min_ms=1e3 * min(times),
                           clips_per_s=batch / med, ratio=base / med)
                rows.append(row)
                print(f"{backend:<24} {batch:>3} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f} "
                      f"{row['clips_per_s']:>8.2f} {row['ratio']:>8.2f}x")
    return rows
