"""CPU benchmark of edgefer's two kernels: ``edgefer bench kernels`` (``--device cuda`` runs
:mod:`edgefer.bench.gpu` instead).

One table, one run, so that every ratio compares like with like on one machine:

- Fused temporal attention on the MSSTNet shape (B in {1, 8}, T=16, N=16, D=512, 8 heads) and the STT shape
  (N=49), float32. Rows: edgefer's C++ kernel through its torch op (``edgefer.ops.cpp``, output allocation
  included) and through ``edgefer._C`` on numpy with a preallocated output; PyTorch's
  ``F.scaled_dot_product_attention`` on the (B, N, H, T, d_h) permuted views of qkv, including the copy back to
  (B, T, N, D) (the permute copies SDPA needs are counted, as the op must return that layout); the reference op
  (:func:`edgefer.ops.reference.temporal_attention`); ONNX Runtime running the standard-op graph that
  ``torch.onnx.export`` makes of the reference op. The ratio column is SDPA's time / the row's time.
- The multi-scale embedding at MSSTNet's three scales (C3 128x14x14 P=4, C4 256x7x7 P=2, C5 512x4x4 P=1;
  D=512, G=4, T=16, B in {1, 8}, with the residual): the C++ kernel, the reference (``F.pad`` + ``F.conv2d`` +
  adds) and ONNX Runtime on the reference's graph. The ratio column is the reference's time / the row's time.

Time = median wall-clock milliseconds of ``repeats`` calls after warm-up calls; every implementation gets the
same thread count (torch, edgefer._C and ONNX Runtime intra-op threads).
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, TextIO

from ..errors import BackendUnavailableError

#: (label, B, T, N, D, heads) of the attention rows.
ATTENTION_SHAPES = (("MSSTNet", 1, 16, 16, 512, 8), ("MSSTNet", 8, 16, 16, 512, 8),
                    ("STT", 1, 16, 49, 512, 8), ("STT", 8, 16, 49, 512, 8))
#: (label, B, T, C, H=W, P, D) of the embedding rows (MSSTNet's scales, G = 4).
EMBEDDING_SHAPES = tuple((f"MSSTNet {name}", B, 16, C, S, P, 512)
                         for B in (1, 8) for name, C, S, P in (("C3", 128, 14, 4), ("C4", 256, 7, 2), ("C5", 512, 4, 1)))


@dataclass
class Row:
    """One measured implementation on one shape: ``ms`` is None when it could not run (``note`` says why)."""

    op: str
    shape: str
    impl: str
    ms: float | None
    ratio: float | None = None
    note: str = ""


def machine() -> dict:
    """{'cpu': model name, 'cores': CPUs this process may use, 'isa': edgefer._C's instruction set or None,
    'python', 'torch', 'onnxruntime': versions}."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        from .. import _C
        isa = _C.cpu_features()["isa"]
    except ImportError:
        isa = None
    import torch
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    return {"cpu": cpu, "cores": cores, "isa": isa, "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": ort}


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median wall-clock time of ``fn()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:80]


def _ort_session(module, inputs: tuple, names: list[str], threads: int):
    """An ONNX Runtime CPU session of ``module`` exported (standard ops, TorchScript exporter) on ``inputs``."""
    import onnxruntime as ort
    import torch

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, inputs, buf, input_names=names, output_names=["out"], opset_version=17,
                          dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])


def _measure(rows: list[Row], op: str, shape: str, impl: str, fn: Callable[[], object], repeats: int) -> None:
    try:
        rows.append(Row(op, shape, impl, median_ms(fn, repeats)))
    except Exception as exc:  # one failing implementation must not hide the others' numbers
        rows.append(Row(op, shape, impl, None, note=_first_line(exc)))


def bench_attention(threads: int, repeats: int, shapes=ATTENTION_SHAPES) -> list[Row]:
    """Rows of the attention table (see the module docstring); ratio = SDPA's ms / the row's ms."""
    import torch
    import torch.nn.functional as F

    from ..ops import reference

    rows: list[Row] = []
    for label, B, T, N, D, H in shapes:
        shape = f"{label} B={B} T={T} N={N} D={D} H={H}"
        gen = torch.Generator().manual_seed(0)
        qkv = torch.randn(B, T, N, 3 * D, generator=gen)
        start = len(rows)
        try:
            from ..ops import cpp
            from .. import _C
            out_np = torch.empty(B, T, N, D).numpy()
            qkv_np = qkv.numpy()
            _measure(rows, "attention", shape, "edgefer cpp (torch op)", lambda: cpp.temporal_attention(qkv, H), repeats)
            _measure(rows, "attention", shape, "edgefer _C (numpy, out=)",
                     lambda: _C.temporal_attention(qkv_np, H, out=out_np), repeats)
        except ImportError as exc:
            rows.append(Row("attention", shape, "edgefer cpp", None, note=_first_line(exc)))

        def sdpa():
            q, k, v = (x.permute(0, 2, 3, 1, 4) for x in qkv.unflatten(-1, (3, H, D // H)).unbind(-3))
            return F.scaled_dot_product_attention(q, k, v).permute(0, 3, 1, 2, 4).reshape(B, T, N, D)

        with torch.inference_mode():
            _measure(rows, "attention", shape, "torch SDPA (+ permute copies)", sdpa, repeats)
            sdpa_ms = rows[-1].ms
            _measure(rows, "attention", shape, "reference op (torch)", lambda: reference.temporal_attention(qkv, H),
                     repeats)
        try:
            class Attention(torch.nn.Module):
                def forward(self, x):
                    return reference.temporal_attention(x, H)

            sess = _ort_session(Attention(), (qkv,), ["qkv"], threads)
            feed = {"qkv": qkv.numpy()}
            _measure(rows, "attention", shape, "ONNX Runtime (standard ops)", lambda: sess.run(None, feed), repeats)
        except Exception as exc:
            rows.append(Row("attention", shape, "ONNX Runtime (standard ops)", None, note=_first_line(exc)))
        for row in rows[start:]:
            if row.ms and sdpa_ms:
                row.ratio = sdpa_ms / row.ms
    return rows


def bench_embedding(threads: int, repeats: int, shapes=EMBEDDING_SHAPES, grid: int = 4) -> list[Row]:
    """Rows of the embedding table (see the module docstring); ratio = the reference's ms / the row's ms."""
    import torch

    from ..ops import reference

    rows: list[Row] = []
    for label, B, T, C, S, P, D in shapes:
        shape = f"{label} B={B} T={T} {C}x{S}x{S} P={P} D={D}"
        gen = torch.Generator().manual_seed(0)
        feat = torch.randn(B * T, C, S, S, generator=gen)
        weight = torch.randn(D, C, P, P, generator=gen) / (C * P * P) ** 0.5
        bias, pos_t, pos_s = torch.randn(D, generator=gen), torch.randn(T, D, generator=gen), torch.randn(
            grid * grid, D, generator=gen)
        residual = torch.randn(B, T, grid * grid, D, generator=gen)
        args = (feat, weight, bias, pos_t, pos_s, residual, grid)
        start = len(rows)
        try:
            from ..ops import cpp
            _measure(rows, "embedding", shape, "edgefer cpp (torch op)", lambda: cpp.multiscale_embedding(*args),
                     repeats)
        except ImportError as exc:
            rows.append(Row("embedding", shape, "edgefer cpp", None, note=_first_line(exc)))
        with torch.inference_mode():
            _measure(rows, "embedding", shape, "reference op (pad+conv2d)", lambda: reference.multiscale_embedding(*args),
                     repeats)
        ref_ms = rows[-1].ms
        try:
            class Embedding(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    for name, t in (("weight", weight), ("bias", bias), ("pos_t", pos_t), ("pos_s", pos_s)):
                        self.register_buffer(name, t)

                def forward(self, x, res):
                    return reference.multiscale_embedding(x, self.weight, self.bias, self.pos_t, self.pos_s, res, grid)

            sess = _ort_session(Embedding(), (feat, residual), ["feat", "residual"], threads)
            feed = {"feat": feat.numpy(), "residual": residual.numpy()}
            _measure(rows, "embedding", shape, "ONNX Runtime (standard ops)", lambda: sess.run(None, feed), repeats)
        except Exception as exc:
            rows.append(Row("embedding", shape, "ONNX Runtime (standard ops)", None, note=_first_line(exc)))
        for row in rows[start:]:
            if row.ms and ref_ms:
                row.ratio = ref_ms / row.ms
    return rows


def format_table(rows: list[Row], info: dict, threads: int) -> str:
    """The table ``edgefer bench kernels`` prints."""
    head = (f"edgefer CPU kernel benchmark - {info['cpu']}, {info['cores']} cores, edgefer ISA {info['isa']}, "
            f"{threads} threads; torch {info['torch']}, onnxruntime {info['onnxruntime']}; median ms")
    lines = [head, ""]
    widths = (10, max(len(r.shape) for r in rows), max(len(r.impl) for r in rows))
    lines.append(f"{'op':<{widths[0]}}  {'shape':<{widths[1]}}  {'implementation':<{widths[2]}}  {'ms':>9}  "
                 f"{'speedup':>8}  note")
    lines.append("-" * (sum(widths) + 40))
    last = None
    for r in rows:
        if last is not None and (r.op, r.shape) != last:
            lines.append("")
        last = (r.op, r.shape)
        ms = f"{r.ms:9.3f}" if r.ms is not None else f"{'-':>9}"
        ratio = f"{r.ratio:7.2f}x" if r.ratio is not None else f"{'':>8}"
        lines.append(f"{r.op:<{widths[0]}}  {r.shape:<{widths[1]}}  {r.impl:<{widths[2]}}  {ms}  {ratio}  {r.note}")
    lines.append("")
    lines.append("speedup: attention rows vs torch SDPA, embedding rows vs the reference op (higher is faster)")
    return "\n".join(lines)


def run(device: str = "cpu", *, threads: int | None = None, repeats: int = 15, out: TextIO | None = None) -> dict:
    """Run the kernel benchmark and print its table.

    Args:
        device: "cpu" (this module) or "cuda" (delegates to :func:`edgefer.bench.gpu.run`).
        threads: threads for every implementation (default: the CPUs this process may use).
        repeats: timed calls per row (the median is reported).
        out: where to print (default: stdout).

    Returns:
        {"machine": :func:`machine`, "threads": int, "rows": [Row, ...]} for the CPU; gpu.run's result for CUDA.

    Raises:
        ValueError: unknown device, threads < 1 or repeats < 1.
        edgefer.errors.BackendUnavailableError: ``device="cuda"`` and the GPU benchmark (edgefer.bench.gpu) is
            not part of this installation.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        try:
            from . import gpu
        except ImportError as exc:
            raise BackendUnavailableError(f"the GPU benchmark (edgefer.bench.gpu) is unavailable: {exc}") from None
        return gpu.run("cuda", out=out)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    import torch

    info = machine()
    threads = threads if threads is not None else info["cores"]
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    out = out or sys.stdout
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from .. import _C
        _C.set_num_threads(threads)
    except ImportError:
        pass
    try:
        rows = bench_attention(threads, repeats) + bench_embedding(threads, repeats)
    finally:
        torch.set_num_threads(previous)
    print(format_table(rows, info, threads), file=out, flush=True)
    return {"machine": info, "threads": threads, "rows": rows}
