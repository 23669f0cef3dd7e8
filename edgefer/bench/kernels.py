"""CPU benchmark of edgefer's two kernels: ``edgefer bench kernels`` (``--device cuda`` runs
:mod:`edgefer.bench.gpu` instead).

One table, one run, so that every ratio compares like with like on one machine:

- Fused temporal attention on the MSSTNet shape (B in {1, 8}, T=16, N=16, D=512, 8 heads) and the STT shape
  (N=49), float32. Rows: edgefer's C++ kernel through its torch op (``edgefer.ops.cpp``, output allocation
  included) and through ``edgefer._C`` on numpy with a preallocated output; PyTorch's
  ``F.scaled_dot_product_attention`` on the (B, N, H, T, d_h) permuted views of qkv, including the copy back to
  (B, T, N, D) (the permute copies SDPA needs are counted, as the op must return that layout); the reference op
  (:func:`edgefer.ops.reference.temporal_attention`); ONNX Runtime running the standard-op graph that
  ``torch.onnx.export`` makes of the reference op, and ONNX Runtime running one ``edgefer`` custom node
  (``libedgefer_ortops``). The ratio column is SDPA's time / the row's time.
- The multi-scale embedding at MSSTNet's three scales (C3 128x14x14 P=4, C4 256x7x7 P=2, C5 512x4x4 P=1;
  D=512, G=4, T=16, B in {1, 8}, with the residual): the C++ kernel through its torch op (which packs the
  weight on every call), the reference (``F.pad`` + ``F.conv2d`` + adds), ONNX Runtime on the reference's graph,
  and ONNX Runtime on one custom node whose weight is an initializer (packed once, when the session loads, as in
  an exported model). The ratio column is the reference's time / the row's time.

Time = median wall-clock milliseconds of ``repeats`` calls per implementation after warm-up calls, the
implementations of one shape timed round-robin (:func:`interleaved_ms`); every implementation gets the same
thread count (torch, edgefer._C and ONNX Runtime intra-op threads).
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

import numpy as np

from ..errors import BackendUnavailableError

#: (label, B, T, N, D, heads) of the attention rows.
ATTENTION_SHAPES = (("MSSTNet", 1, 16, 16, 512, 8), ("MSSTNet", 8, 16, 16, 512, 8),
                    ("STT", 1, 16, 49, 512, 8), ("STT", 8, 16, 49, 512, 8))
#: (label, B, T, C, H=W, P, D) of the embedding rows (MSSTNet's scales, G = 4).
EMBEDDING_SHAPES = tuple((f"MSSTNet {name}", B, 16, C, S, P, 512)
                         for B in (1, 8) for name, C, S, P in (("C3", 128, 14, 4), ("C4", 256, 7, 2), ("C5", 512, 4, 1)))


#: Blocks of timed calls per implementation, and the least warm-up time before each (see :func:`interleaved_ms`).
ROUNDS = 3
WARMUP_S = 0.05


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
    """{'cpu': model name and vector ISA, 'cores': CPUs this process may use, 'isa': edgefer._C's instruction set
    or None, 'python', 'torch', 'onnxruntime': versions}."""
    from .machine import cpu_isa, cpu_model, cpus_available

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
    return {"cpu": f"{cpu_model()} ({cpu_isa()})", "cores": cpus_available(), "isa": isa,
            "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort}


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2,
                   rounds: int = ROUNDS, warmup_s: float = WARMUP_S) -> dict[str, float | str]:
    """Median wall-clock ms of each implementation over ``repeats`` calls, timed in interleaved blocks.

    The calls are split into ``rounds`` blocks per implementation, taken a, b, c, a, b, c, ...: drifting load
    from other processes hits every implementation alike. Each block starts with untimed calls, at least
    ``warmup`` of them and for at least ``warmup_s`` seconds, which absorb what the implementation before left
    behind (worker threads still spinning: torch's OpenMP threads spin for milliseconds after a parallel region;
    caches full of its data), so that each block times the implementation in its own steady state, as a kernel
    is called inside a model.

    Returns:
        name -> median ms, or the first line of the error for an implementation that raised (the others still
        run), in the order of ``fns``.
    """
    result: dict[str, float | str] = {}
    live = dict(fns)
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = max(1, min(rounds, repeats))
    for r in range(rounds):
        block = repeats // rounds + (1 if r < repeats % rounds else 0)
        for name, fn in list(live.items()):
            try:
                start, calls = time.perf_counter(), 0
                while calls < warmup or time.perf_counter() - start < warmup_s:
                    fn()
                    calls += 1
                for _ in range(block):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            except Exception as exc:  # one failing implementation must not hide the others' numbers
                result[name] = _first_line(exc)
                del live[name]
    for name in live:
        result[name] = statistics.median(times[name]) * 1e3
    return {name: result[name] for name in fns}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:80]


def _rows(op: str, shape: str, impls: dict[str, Callable[[], object] | str], repeats: int, baseline: str) -> list[Row]:
    """Times ``impls`` (a str value: the reason it cannot run) and makes their rows, ratio = baseline ms / ms."""
    runnable = {name: fn for name, fn in impls.items() if not isinstance(fn, str)}
    timed = interleaved_ms(runnable, repeats)
    rows = []
    for name, fn in impls.items():
        value = fn if isinstance(fn, str) else timed[name]
        rows.append(Row(op, shape, name, value if isinstance(value, float) else None,
                        note="" if isinstance(value, float) else value))
    base = next((r.ms for r in rows if r.impl == baseline), None)
    for row in rows:
        if row.ms and base:
            row.ratio = base / row.ms
    return rows


def _add_ort_rows(impls: dict, makers: dict[str, Callable[[], object]], feed: dict) -> None:
    """For each name -> session factory: a call running that session on ``feed``, or why it cannot be made."""
    for name, make in makers.items():
        try:
            session = make()
            impls[name] = lambda session=session: session.run(None, feed)
        except Exception as exc:  # a missing custom-op library, an export failure: the row says so
            impls[name] = _first_line(exc)


def bench_attention(threads: int, repeats: int, shapes=ATTENTION_SHAPES) -> list[Row]:
    """Rows of the attention table (see the module docstring); ratio = SDPA's ms / the row's ms."""
    import torch
    import torch.nn.functional as F

    from ..ops import reference
    from . import ort_graphs

    rows: list[Row] = []
    for label, B, T, N, D, H in shapes:
        shape = f"{label} B={B} T={T} N={N} D={D} H={H}"
        gen = torch.Generator().manual_seed(0)
        qkv = torch.randn(B, T, N, 3 * D, generator=gen)
        qkv_np = qkv.numpy()
        impls: dict[str, Callable[[], object] | str] = {}
        try:
            from .. import _C
            from ..ops import cpp
            out_np = np.empty((B, T, N, D), np.float32)
            impls["edgefer cpp (torch op)"] = lambda: cpp.temporal_attention(qkv, H)
            impls["edgefer _C (numpy, out=)"] = lambda: _C.temporal_attention(qkv_np, H, out=out_np)
        except ImportError as exc:
            impls["edgefer cpp"] = _first_line(exc)

        def sdpa():
            with torch.inference_mode():
                q, k, v = (x.permute(0, 2, 3, 1, 4) for x in qkv.unflatten(-1, (3, H, D // H)).unbind(-3))
                return F.scaled_dot_product_attention(q, k, v).permute(0, 3, 1, 2, 4).reshape(B, T, N, D)

        def ref():
            with torch.inference_mode():
                return reference.temporal_attention(qkv, H)

        impls["torch SDPA (+ permute copies)"] = sdpa
        impls["reference op (torch)"] = ref

        class Attention(torch.nn.Module):
            def forward(self, x):
                return reference.temporal_attention(x, H)

        _add_ort_rows(impls, {
            "ONNX Runtime (standard ops)": lambda: ort_graphs.standard_session(Attention(), (qkv,), ["qkv"], threads),
            "ONNX Runtime (edgefer custom op)": lambda: ort_graphs.custom_op_session(
                "TemporalAttention", ["qkv"], {}, threads, num_heads=H)}, {"qkv": qkv_np})
        rows += _rows("attention", shape, impls, repeats, baseline="torch SDPA (+ permute copies)")
    return rows


def bench_embedding(threads: int, repeats: int, shapes=EMBEDDING_SHAPES, grid: int = 4) -> list[Row]:
    """Rows of the embedding table (see the module docstring); ratio = the reference's ms / the row's ms."""
    import torch

    from ..ops import reference
    from . import ort_graphs

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
        impls: dict[str, Callable[[], object] | str] = {}
        try:
            from ..ops import cpp
            impls["edgefer cpp (torch op)"] = lambda: cpp.multiscale_embedding(*args)
        except ImportError as exc:
            impls["edgefer cpp"] = _first_line(exc)

        def ref():
            with torch.inference_mode():
                return reference.multiscale_embedding(*args)

        impls["reference op (pad+conv2d)"] = ref

        class Embedding(torch.nn.Module):
            def __init__(self):
                super().__init__()
                for name, t in (("weight", weight), ("bias", bias), ("pos_t", pos_t), ("pos_s", pos_s)):
                    self.register_buffer(name, t)

            def forward(self, x, res):
                return reference.multiscale_embedding(x, self.weight, self.bias, self.pos_t, self.pos_s, res, grid)

        constants = {"weight": weight.numpy(), "bias": bias.numpy(), "pos_t": pos_t.numpy(), "pos_s": pos_s.numpy()}
        _add_ort_rows(impls, {
            "ONNX Runtime (standard ops)": lambda: ort_graphs.standard_session(
                Embedding(), (feat, residual), ["feat", "residual"], threads),
            "ONNX Runtime (edgefer custom op)": lambda: ort_graphs.custom_op_session(
                "MultiScaleEmbedding", ["feat", "weight", "bias", "pos_t", "pos_s", "residual"], constants, threads,
                grid=grid)}, {"feat": feat.numpy(), "residual": residual.numpy()})
        rows += _rows("embedding", shape, impls, repeats, baseline="reference op (pad+conv2d)")
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
