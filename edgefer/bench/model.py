"""MSSTNet end to end on the CPU, one table: PyTorch eager, ONNX Runtime fp32, custom ops, int8 QDQ, against the
machine's measured GEMM peak.

``edgefer bench model`` runs :func:`run`. One process builds one MSSTNet (default config unless ``config``
overrides it, untrained, seed ``seed``), exports it with :func:`export.onnx_export.export_onnx` with standard ops
and with ``edgefer`` custom ops, quantizes the standard-op graph with :func:`export.int8.quantize_int8` (QDQ,
per-channel weights, the CPU's types from :func:`export.int8.quant_types_for_cpu`, the default fp32 exclusions;
calibrated on random clips: the calibration sets the scales, not the speed, and the agreement the int8 export
reports on real clips is not measured here), and times every row on the same clips at each batch size.

Rows: ``eager`` (``torch.no_grad``, ``torch.set_num_threads(threads)``), ``ort fp32``, ``ort custom ops``,
``ort int8`` and ``int8 + custom ops``; the last is listed as unavailable: ONNX Runtime's calibration session
(``quantize_static``) cannot load a custom-op library, and ORT's QDQ fusions know only its own ops, so an
``edgefer`` node would sit between a DequantizeLinear and a QuantizeLinear and run in fp32 anyway.

Timing: each repeat calls every row once in turn (alternating, so drifting load from other processes hits all
rows alike), after a ``settle_s`` pause that lets the previous row's spinning threads go idle; the figure is the
median wall-clock time of one call of a batch of B clips. Columns: ms per clip (= median / B), clips/s, achieved
GFLOP/s (the model's FLOPs per clip counted by ``torch.utils.flop_counter.FlopCounterMode``, one multiply-add = 2
FLOP, x clips/s), the ratio to eager (eager ms / row ms), and the fraction of the machine's peak measured in the
same run: the fp32 rows against an ONNX Runtime ``MatMul`` (fp32, N x N x N), the int8 row against
``MatMulInteger`` with the int8 types the quantization used (same N); both GEMMs are called in the same
alternation as the rows, and the peak is the fastest of those calls.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from ..errors import ArgumentError, BackendUnavailableError

#: Rows, in table order.
ROWS = ("eager", "ort fp32", "ort custom ops", "ort int8", "int8 + custom ops")
INT8_CUSTOM_UNAVAILABLE = ("not available: quantize_static's calibration session cannot load the edgefer custom-op "
                           "library, and ORT's QDQ fusions do not know custom ops (they would run fp32 between DQ/Q)")


@dataclass
class Row:
    """One row at one batch size: median ms of a call, FLOPs per clip, the peak it is compared against."""

    name: str
    batch: int
    ms: float
    gflop_per_clip: float
    peak_gflops: float
    eager_ms: float
    note: str = ""

    @property
    def ms_per_clip(self) -> float:
        return self.ms / self.batch

    @property
    def clips_per_s(self) -> float:
        return self.batch / (self.ms / 1e3)

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s: counted FLOPs per clip x clips per second."""
        return self.gflop_per_clip * self.clips_per_s

    @property
    def vs_eager(self) -> float:
        """eager ms / this row's ms (> 1: faster than PyTorch eager)."""
        return self.eager_ms / self.ms

    @property
    def peak_fraction(self) -> float:
        return self.gflops / self.peak_gflops


@dataclass
class Report:
    """Everything one run measured."""

    machine: str
    threads: int
    repeats: int
    gflop_per_clip: float
    peaks: dict[str, float]
    int8_types: str
    rows: list[Row] = field(default_factory=list)
    max_abs_diff: dict[str, float] = field(default_factory=dict)


def run(batches: Sequence[int] = (1, 8), threads: int | None = None, repeats: int | None = None,
        out: TextIO | None = None, *, batch: Sequence[int] | None = None, seed: int = 0,
        config: Mapping[str, object] | None = None, gemm_size: int = 1024, settle_s: float = 0.05,
        custom_ops: bool = True) -> Report:
    """Time MSSTNet on every row and print one table.

    Args:
        batches: batch sizes B (clips per call); ``batch`` is accepted as an alias.
        threads: intra-op threads of ONNX Runtime (the custom ops run on them too) and torch's thread count
            (default: the CPUs this process may use).
        repeats: timed calls per row and batch size (default 5).
        out: where the table goes (default: stdout).
        seed: seed of the weights and the clips.
        config: MSSTNet config overrides (e.g. ``{"dim": 64}`` for a quick check).
        gemm_size: N of the N x N x N GEMMs that measure the peaks.
        settle_s: pause before each timed call, in seconds.
        custom_ops: include the custom-op row (needs the compiled ops and the ORT custom-op library).

    Returns:
        A :class:`Report`.

    Raises:
        BackendUnavailableError: onnxruntime, torch, or (with ``custom_ops``) the compiled ops or the custom-op
            library is missing.
        ArgumentError: a batch size, thread count, repeat count or GEMM size below 1.
    """
    if batch is not None:
        batches = batch
    batches = [int(b) for b in batches]
    repeats = 5 if repeats is None else int(repeats)
    if not batches or min(batches) < 1 or repeats < 1 or gemm_size < 1 or (threads is not None and threads < 1):
        raise ArgumentError(f"batch sizes, threads, repeats and the GEMM size must be >= 1 (batches {batches}, "
                            f"threads {threads}, repeats {repeats}, gemm {gemm_size})")
    out = out or sys.stdout
    ort, np, torch = _imports(custom_ops)
    from edgefer.export.int8 import CalibrationSet, quant_types_for_cpu, quantize_int8

    from .machine import describe

    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(threads)
    types = quant_types_for_cpu()
    with tempfile.TemporaryDirectory(prefix="edgefer-bench-") as tmp:
        model, metadata, paths = _export(Path(tmp), seed, torch, dict(config or {}), custom_ops)
        shape = (metadata.clip_length, metadata.channels, *metadata.frame_size)
        gflop = _count_gflop(torch, model, shape)
        rng = np.random.default_rng(seed)
        calib = CalibrationSet(rng.random((4, *shape), dtype=np.float32), rng.random((2, *shape), dtype=np.float32),
                               "random clips (speed only)")
        paths["ort int8"] = Path(tmp, "int8.onnx")
        quantize_int8(paths["ort fp32"], paths["ort int8"], metadata, calib, types=types, min_agreement=0.0)
        sessions = {name: _session(ort, path, threads, custom=name == "ort custom ops") for name, path in paths.items()}
        gemms = gemm_calls(ort, np, gemm_size, threads, types.activations)
        report = Report(describe(), threads, repeats, gflop, {"fp32": 0.0, "int8": 0.0}, types.name)
        for b in batches:
            _time_batch(report, np, torch, model, sessions, gemms, b, shape, repeats, seed, settle_s)
        for row in report.rows:
            row.peak_gflops = report.peaks["int8" if "int8" in row.name else "fp32"]
    _print(out, ort, torch, report)
    return report


def _imports(custom_ops: bool):
    try:
        import numpy as np
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"`edgefer bench model` needs torch and onnxruntime ({exc})") from None
    if custom_ops:
        try:
            import edgefer.ops.cpp  # noqa: F401  the torch ops the custom-op export traces
        except ImportError as exc:
            raise BackendUnavailableError(f"edgefer's compiled kernels are not built ({exc})") from None
        from .. import ortops

        ortops.library_path()  # raises BackendUnavailableError with the reason when it is missing
    return ort, np, torch


def _export(tmp: Path, seed: int, torch, config: dict, custom_ops: bool):
    from edgefer.export.onnx_export import export_onnx

    from ..models import build_model
    from ..models.checkpoint import artefact_metadata

    torch.manual_seed(seed)
    model = build_model("msstnet", kernels="reference", **config).eval()
    paths, metadata = {}, None
    for name, custom in (("ort fp32", False), ("ort custom ops", True)):
        if custom and not custom_ops:
            continue
        meta = artefact_metadata(model, trained=False, weights_sha256="", custom_ops=custom)
        metadata = metadata or meta
        path = tmp / f"msstnet_{'custom' if custom else 'standard'}.onnx"
        export_onnx(model, path, meta, custom_ops=custom, random_batches=(1,), seed=seed)
        paths[name] = path
    model.kernels = "reference"
    return model, metadata, paths


def _count_gflop(torch, model, shape) -> float:
    """GFLOP of one clip by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() / 1e9


def _session(ort, path: Path, threads: int, custom: bool = False, profile: str | None = None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    if custom:
        from .. import ortops

        ortops.register(options)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def gemm_calls(ort, np, n: int, threads: int, activations: str = "uint8") -> dict[str, tuple[object, float]]:
    """The GEMMs that measure the machine's peak with ONNX Runtime: ``MatMul`` fp32 and ``MatMulInteger`` (A
    ``activations``: int8 or uint8, B int8), N x N x N, B held as an initializer as a model's weight is.

    Returns:
        ``{"fp32": (call, ops), "int8": (call, ops)}``: a no-argument callable running one GEMM, and its
        operation count 2 N^3 (a multiply-add = 2). The peak is ops / the fastest call (GFLOP/s, int8: GOP/s).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a_int = (np.int8, TensorProto.INT8) if activations == "int8" else (np.uint8, TensorProto.UINT8)
    specs = {"fp32": ("MatMul", rng.random((n, n), dtype=np.float32), TensorProto.FLOAT, np.float32,
                      TensorProto.FLOAT),
             "int8": ("MatMulInteger", rng.integers(0, 100, (n, n)).astype(a_int[0]), a_int[1], np.int8,
                      TensorProto.INT32)}
    calls = {}
    for name, (op, a, a_proto, b_type, out_proto) in specs.items():
        b = rng.integers(-100, 100, (n, n)).astype(b_type)
        graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["y"])], name,
                                  [helper.make_tensor_value_info("a", a_proto, [n, n])],
                                  [helper.make_tensor_value_info("y", out_proto, [n, n])],
                                  initializer=[numpy_helper.from_array(b, "b")])
        model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        calls[name] = ((lambda session=session, a=a: session.run(None, {"a": a})), 2.0 * n ** 3)
    return calls


def _time_batch(report: Report, np, torch, model, sessions: dict, gemms: dict, batch: int, shape, repeats: int,
                seed: int, settle_s: float) -> None:
    clips = np.random.default_rng(seed + batch).random((batch, *shape), dtype=np.float32)
    tensor = torch.from_numpy(clips)

    def eager():
        with torch.no_grad():
            return model(tensor).numpy()

    calls = {"eager": eager}
    for name, s in sessions.items():
        feed = {s.get_inputs()[0].name: clips}
        calls[name] = (lambda s=s, feed=feed: s.run(None, feed)[0])
    reference = calls["eager"]()
    for name, call in calls.items():  # warm-up, and parity
        got = call()
        report.max_abs_diff[f"{name} B={batch}"] = float(np.max(np.abs(got - reference)))
    for name, (call, _) in gemms.items():
        call()
        calls[f"gemm {name}"] = call
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():  # alternate, so drifting background load hits every row alike
            time.sleep(settle_s)
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    eager_ms = statistics.median(times["eager"]) * 1e3
    for name, (_, ops) in gemms.items():  # the peak: the fastest GEMM call of the whole run
        report.peaks[name] = max(report.peaks[name], ops / min(times[f"gemm {name}"]) / 1e9)
    for name in ROWS:
        if name == "int8 + custom ops":
            report.rows.append(Row(name, batch, float("nan"), report.gflop_per_clip, float("nan"), eager_ms,
                                   INT8_CUSTOM_UNAVAILABLE))
        elif name in times:  # peak_gflops is set once every batch ran
            report.rows.append(Row(name, batch, statistics.median(times[name]) * 1e3, report.gflop_per_clip,
                                   float("nan"), eager_ms))


def _print(out: TextIO, ort, torch, report: Report) -> None:
    out.write(f"MSSTNet end to end on the CPU: PyTorch {torch.__version__} eager vs ONNX Runtime {ort.__version__} "
              f"(CPUExecutionProvider), {report.gflop_per_clip:.2f} GFLOP per clip (FlopCounterMode)\n")
    out.write(f"machine: {report.machine}, {report.threads} threads; int8 types {report.int8_types}\n")
    out.write(f"measured peak (ORT, fastest of the GEMM calls alternated with the rows): fp32 MatMul "
              f"{report.peaks['fp32']:.1f} GFLOP/s, int8 MatMulInteger ({report.int8_types[:2]} x S8) "
              f"{report.peaks['int8']:.1f} GOP/s\n")
    header = (f"{'B':>3} | {'row':<17} | {'ms/clip':>8} | {'clips/s':>8} | {'GFLOP/s':>8} | {'x eager':>7} | "
              f"{'of peak':>7}")
    out.write(header + "\n" + "-" * len(header) + "\n")
    for r in report.rows:
        if r.note:
            out.write(f"{r.batch:>3} | {r.name:<17} | {r.note}\n")
            continue
        out.write(f"{r.batch:>3} | {r.name:<17} | {r.ms_per_clip:>8.1f} | {r.clips_per_s:>8.2f} | {r.gflops:>8.1f} | "
                  f"{r.vs_eager:>6.2f}x | {r.peak_fraction:>6.1%}\n")
    worst = max((v for k, v in report.max_abs_diff.items() if "int8" not in k), default=0.0)
    int8 = max((v for k, v in report.max_abs_diff.items() if "int8" in k), default=float("nan"))
    out.write(f"medians of {report.repeats} alternating calls per row; x eager = eager ms / row ms; of peak = "
              f"GFLOP/s / the matching measured GEMM peak (int8 row: MatMulInteger); max |logit - eager|: fp32 rows "
              f"{worst:.1e}, int8 {int8:.1e}\n")
    out.flush()
