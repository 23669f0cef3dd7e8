"""A model end to end on the CPU, one table: PyTorch eager, ONNX Runtime fp32, custom ops, int8 QDQ, TensorRT, the
streaming cost per new frame, against the machine's measured GEMM peak.

``edgefer bench model`` runs :func:`run`. Models (:data:`MODELS`): ``msstnet`` (default), ``stt``, ``fesnet`` and
the zoo's ``zoo:fer-minixception`` (a per-frame Keras model converted to ONNX: no PyTorch module, so no eager row;
a "clip" is 16 frames, fed as one batch of frames; its FLOPs are counted from the ONNX graph's Conv / MatMul / Gemm
nodes, :func:`onnx_gflop`). One process builds one model (default config unless ``config``
overrides it, untrained, seed ``seed``), exports it with :func:`export.onnx_export.export_onnx` with standard ops
and with ``edgefer`` custom ops, quantizes both graphs with :func:`export.int8.quantize_int8` (QDQ, per-channel
weights, the CPU's types from :func:`export.int8.quant_types_for_cpu`, the default scope and fp32 exclusions of
:mod:`export.int8_scope`; calibrated on random clips: the calibration sets the scales, not the speed, and the
agreement the int8 export reports on real clips is not measured here), and times every row on the same clips at
each batch size. ``profile=True`` adds ONNX Runtime's per-node profile of the ORT rows at the largest batch
(:mod:`edgefer.bench.ort_profile`).

Rows: ``eager`` (``torch.no_grad``, ``torch.set_num_threads(threads)``), ``ort fp32``, ``ort custom ops`` (MSSTNet
and STT; FESNet and the zoo model have no edgefer custom op), ``ort int8``, ``int8 + custom ops``, ``tensorrt fp16``
/ ``tensorrt int8``, ``stream/new frame`` and ``int8 stream/frame``:

- ``int8 + custom ops``: the custom-op export quantized the same way (its calibration runs with the custom-op
  library loaded); the ``edgefer`` nodes run fp32 between DequantizeLinear and QuantizeLinear nodes.
- the TensorRT rows build engines with :func:`edgefer.export.tensorrt_build.build_engine` (profile 1 : max B : max
  B; int8 symmetric QDQ on the same random calibration clips) and time ``edgefer.load(engine)``'s float-batch
  forward; without TensorRT (``import tensorrt`` fails) they say so instead of a figure. They run on the GPU, so
  their ``of peak`` is not against the CPU's GEMM peak and is left empty.
- ``stream/new frame`` (MSSTNet, STT): the split export (:func:`edgefer.export.split.export_split`, what
  :mod:`edgefer.stream` runs with its feature cache) costs, per new frame of each of B streams, one encoder call
  on B frames plus one head call on B cached windows (stride 1, the worst case; stride s divides the head's share
  by s). Its ms column is ms per new frame, and ``x eager`` compares it with eager's whole clip. ``edgefer bench
  stream`` measures the same split over a real video with detection. ``int8 stream/frame``: the same for the split
  quantized by :func:`edgefer.export.int8_split.quantize_split` (``edgefer export --split --int8``).

Timing: each repeat calls every row once in turn (alternating, so drifting load from other processes hits all
rows alike), after a ``settle_s`` pause that lets the previous row's spinning threads go idle; the figure is the
median wall-clock time of one call of a batch of B clips. Columns: ms per clip (= median / B), clips/s, achieved
GFLOP/s (the model's FLOPs per clip counted by ``torch.utils.flop_counter.FlopCounterMode``, one multiply-add = 2
FLOP, x clips/s), the ratio to eager (eager ms / row ms), and the fraction of the machine's peak measured in the
same run: the fp32 rows against an ONNX Runtime ``MatMul`` (fp32, N x N x N), the int8 row against
``MatMulInteger`` with the int8 types the quantization used (same N); both GEMMs are called in the same
alternation as the rows (:data:`GEMM_CALLS_PER_TURN` calls each turn), and the peak is the fastest of those calls.
"""

from __future__ import annotations

import math
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
ROWS = ("eager", "ort fp32", "ort custom ops", "ort int8", "int8 + custom ops", "tensorrt fp16", "tensorrt int8",
        "stream/new frame", "int8 stream/frame")
#: The rows timed per new frame of a stream (encoder + head of a split), not per clip.
STREAM_ROWS = ("stream/new frame", "int8 stream/frame")
#: What ``--model`` accepts.
MODELS = ("msstnet", "stt", "fesnet", "zoo:fer-minixception")
#: Models whose export has edgefer custom ops (the rest: the custom-op row says so).
CUSTOM_OP_MODELS = ("msstnet", "stt")
#: GEMM calls back to back in each turn of the alternation (the peak is the fastest call: a few more short calls
#: make it less sensitive to one unlucky turn).
GEMM_CALLS_PER_TURN = 3
#: Rows whose graph has edgefer custom nodes (their sessions load the custom-op library).
CUSTOM_OP_ROWS = ("ort custom ops", "int8 + custom ops")
#: Frames a per-frame model's "clip" holds (the runtime's window for per-frame models).
PER_FRAME_CLIP = 16


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
    model: str = "msstnet"
    gflop_source: str = "FlopCounterMode"
    profiles: list = field(default_factory=list)


def run(batches: Sequence[int] = (1, 8), threads: int | None = None, repeats: int | None = None,
        out: TextIO | None = None, *, batch: Sequence[int] | None = None, seed: int = 0,
        config: Mapping[str, object] | None = None, gemm_size: int = 1024, settle_s: float = 0.05,
        custom_ops: bool = True, model: str = "msstnet", tensorrt: bool = True, profile: bool = False) -> Report:
    """Time one model on every row and print one table.

    Args:
        batches: batch sizes B (clips per call); ``batch`` is accepted as an alias.
        threads: intra-op threads of ONNX Runtime (the custom ops run on them too) and torch's thread count
            (default: the CPUs this process may use).
        repeats: timed calls per row and batch size (default 5).
        out: where the table goes (default: stdout).
        seed: seed of the weights and the clips.
        config: the model's config overrides (e.g. ``{"dim": 64}`` for a quick check); none for a zoo model.
        gemm_size: N of the N x N x N GEMMs that measure the peaks.
        settle_s: pause before each timed call, in seconds.
        custom_ops: include the custom-op row (needs the compiled ops and the ORT custom-op library).
        model: one of :data:`MODELS`.
        tensorrt: include the TensorRT rows when TensorRT is installed (False: they say they were not asked for).
        profile: also profile each ONNX Runtime row at the largest batch (:func:`edgefer.bench.ort_profile
            .profile_graph`, ``repeats`` runs) and print it after the table (``Report.profiles``).

    Returns:
        A :class:`Report`.

    Raises:
        BackendUnavailableError: onnxruntime, torch, or (with ``custom_ops``) the compiled ops or the custom-op
            library is missing; the zoo model cannot be fetched (FetchError) or converted.
        ArgumentError: a batch size, thread count, repeat count or GEMM size below 1; an unknown model; config
            overrides for a zoo model.
    """
    if batch is not None:
        batches = batch
    batches = [int(b) for b in batches]
    repeats = 5 if repeats is None else int(repeats)
    if not batches or min(batches) < 1 or repeats < 1 or gemm_size < 1 or (threads is not None and threads < 1):
        raise ArgumentError(f"batch sizes, threads, repeats and the GEMM size must be >= 1 (batches {batches}, "
                            f"threads {threads}, repeats {repeats}, gemm {gemm_size})")
    if model not in MODELS:
        raise ArgumentError(f"bench model: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    zoo = model.startswith("zoo:")
    if zoo and config:
        raise ArgumentError(f"bench model: {model} is a converted zoo file; --config does not apply")
    custom_ops = custom_ops and model in CUSTOM_OP_MODELS
    out = out or sys.stdout
    ort, np, torch = _imports(custom_ops)
    from edgefer.export.calibration_clips import CalibrationSet
    from edgefer.export.int8 import quant_types_for_cpu, quantize_int8

    from .machine import describe

    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(threads)
    types = quant_types_for_cpu()
    notes = _unavailable(model, custom_ops, zoo, tensorrt)
    with tempfile.TemporaryDirectory(prefix="edgefer-bench-") as tmp:
        module, metadata, paths = _export(Path(tmp), seed, torch, dict(config or {}), custom_ops, model)
        per_frame = metadata.input_layout == "NCHW"
        length = PER_FRAME_CLIP if per_frame else metadata.clip_length
        shape = (length, metadata.channels, *metadata.frame_size)
        gflop = onnx_gflop(paths["ort fp32"], shape, per_frame) if module is None else \
            _count_gflop(torch, module, shape)
        rng = np.random.default_rng(seed)
        calib = CalibrationSet(rng.random((4, *shape), dtype=np.float32), rng.random((2, *shape), dtype=np.float32),
                               "random clips (speed only)")
        for fp32_row, int8_row in (("ort fp32", "ort int8"), ("ort custom ops", "int8 + custom ops")):
            if fp32_row in paths:
                paths[int8_row] = Path(tmp, f"{int8_row.replace(' ', '_')}.onnx")
                quantize_int8(paths[fp32_row], paths[int8_row], _metadata_of(paths[fp32_row]), calib, types=types,
                              min_agreement=0.0)
        sessions = {name: _session(ort, path, threads, custom=name in CUSTOM_OP_ROWS) for name, path in paths.items()
                    if name != "split"}
        engines = _engines(Path(tmp), paths["ort fp32"], calib, max(batches), notes) if "tensorrt fp16" not in notes \
            else {}
        streams = {}
        if "split" in paths:
            from edgefer.export.int8_split import quantize_split

            quantize_split(paths["split"], Path(tmp, "int8.split"), calib, types=types, min_agreement=0.0)
            for row, folder in zip(STREAM_ROWS, (paths["split"], Path(tmp, "int8.split"))):
                streams[row] = {part: _session(ort, folder / f"{part}.onnx", threads, spinning=False)
                                for part in ("encoder", "head")}
        gemms = gemm_calls(ort, np, gemm_size, threads, types.activations)
        report = Report(describe(), threads, repeats, gflop, {"fp32": 0.0, "int8": 0.0}, types.name, model=model,
                        gflop_source="ONNX graph (Conv/MatMul/Gemm)" if module is None else "FlopCounterMode")
        for b in batches:
            _time_batch(report, np, torch, module, sessions, engines, streams, gemms, b, shape, per_frame, repeats,
                        seed, settle_s, notes)
        if profile:
            report.profiles = _profiles(np, paths, shape, per_frame, max(batches), threads, repeats, seed)
        for row in report.rows:
            row.peak_gflops = (float("nan") if row.name.startswith("tensorrt") or row.name in STREAM_ROWS
                               else report.peaks["int8" if "int8" in row.name else "fp32"])
    _print(out, ort, torch, report)
    return report


def _unavailable(model: str, custom_ops: bool, zoo: bool, tensorrt: bool) -> dict[str, str]:
    """Row -> the one-line reason it has no figure in this run."""
    notes = {}
    if zoo:
        notes["eager"] = "not available: a zoo model is a converted Keras file, there is no PyTorch module"
    if model not in CUSTOM_OP_MODELS:
        notes["ort custom ops"] = f"not applicable: {model} has no edgefer custom op"
        notes["int8 + custom ops"] = notes["ort custom ops"]
    elif not custom_ops:
        notes["ort custom ops"] = notes["int8 + custom ops"] = "not run (custom_ops=False)"
    from edgefer.export.split import SPLITTABLE

    if model not in SPLITTABLE:
        notes["stream/new frame"] = notes["int8 stream/frame"] = (f"not applicable: {model} has no encoder/head "
                                                                  "split (edgefer.stream)")
    from edgefer.export.tensorrt_build import tensorrt_available

    if not tensorrt:
        reason = "not run (tensorrt=False)"
    elif not tensorrt_available():
        reason = "not available: TensorRT is not installed here (import tensorrt fails); no figure"
    else:
        reason = ""
    if reason:
        notes["tensorrt fp16"] = notes["tensorrt int8"] = reason
    return notes


def _engines(tmp: Path, fp32: Path, calib, max_batch: int, notes: dict[str, str]) -> dict[str, object]:
    """TensorRT fp16 and int8 engines of ``fp32`` loaded with :func:`edgefer.load`; a failed build becomes the row's
    note (the GPU or cuda-python may be missing even where TensorRT imports)."""
    import edgefer
    from edgefer.errors import EdgeferError
    from edgefer.export.tensorrt_build import build_engine

    engines = {}
    for precision in ("fp16", "int8"):
        path = tmp / f"model-{precision}.engine"
        try:
            build_engine(fp32, path, precision=precision, batch=(1, max_batch, max_batch),
                         calib=calib if precision == "int8" else None, min_agreement=0.0)
            engines[f"tensorrt {precision}"] = edgefer.load(str(path))
        except EdgeferError as exc:
            notes[f"tensorrt {precision}"] = f"not available: {exc}"
    return engines


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


def _export(tmp: Path, seed: int, torch, config: dict, custom_ops: bool, name: str = "msstnet"):
    """(the PyTorch module or None for a zoo model, its metadata, {row: ONNX path, "split": folder})."""
    if name.startswith("zoo:"):
        from ..zoo import zoo_path

        path = zoo_path(name[len("zoo:"):])
        return None, _metadata_of(path), {"ort fp32": path}
    from edgefer.export.onnx_export import export_onnx
    from edgefer.export.split import SPLITTABLE, export_split

    from ..models import build_model
    from ..models.checkpoint import artefact_metadata

    torch.manual_seed(seed)
    model = build_model(name, kernels="reference", **config).eval()
    paths, metadata = {}, None
    for row, custom in (("ort fp32", False), ("ort custom ops", True)):
        if custom and not custom_ops:
            continue
        meta = artefact_metadata(model, trained=False, weights_sha256="", custom_ops=custom)
        metadata = metadata or meta
        path = tmp / f"{name}_{'custom' if custom else 'standard'}.onnx"
        export_onnx(model, path, meta, custom_ops=custom, random_batches=(1,), seed=seed)
        paths[row] = path
    model.kernels = "reference"
    if name in SPLITTABLE:
        paths["split"] = export_split(model, tmp / f"{name}.split", metadata, random_batches=(1,), seed=seed).path
    return model, metadata, paths


def _profiles(np, paths: dict, shape, per_frame: bool, batch: int, threads: int, runs: int, seed: int) -> list:
    """ONNX Runtime's per-node profile of each ORT row's graph at ``batch`` clips."""
    import onnx

    from .ort_profile import profile_graph

    clips = np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)
    feed_array = clips.reshape(-1, *shape[1:]) if per_frame else clips
    out = []
    for name in ("ort fp32", "ort custom ops", "ort int8", "int8 + custom ops"):
        if name in paths:
            input_name = onnx.load(str(paths[name]), load_external_data=False).graph.input[0].name
            out.append(profile_graph(paths[name], {input_name: feed_array}, threads=threads,
                                     custom_ops=name in CUSTOM_OP_ROWS, runs=runs, name=f"{name} B={batch}"))
    return out


def _metadata_of(path: Path):
    from ..metadata import ModelMetadata
    from ..runtime.onnx_metadata import read_metadata_props

    return ModelMetadata.from_props(read_metadata_props(path), source=str(path))


def onnx_gflop(path: Path, shape: Sequence[int], per_frame: bool) -> float:
    """GFLOP of one clip of ``shape`` (T, C, H, W) through the ONNX graph at ``path``, counted from ONNX's shape
    inference at that input size: Conv ``2 * output elements * C_in / groups * kernel area``, MatMul / Gemm ``2 *
    output elements * K`` (a multiply-add counts 2, as ``FlopCounterMode``); other nodes, and nodes whose shapes
    inference leaves unknown, are not counted (so it is meant for static-shape graphs such as the zoo's: in
    edgefer's own exports the reshapes of the dynamic batch leave some shapes unknown, and it counts 15.5 of the
    full MSSTNet's 19.7 GFLOP). Used for the zoo's converted models, which have no PyTorch module to count
    with."""
    import numpy as np
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, ([shape[0]] if per_frame else [1, shape[0]]) + list(shape[1:])):
        dim.ClearField("dim_param")
        dim.dim_value = int(size)
    del model.graph.value_info[:]  # the exporter's symbolic (dynamic batch) shapes: infer them again at this size
    graph = shape_inference.infer_shapes(model, data_prop=True).graph
    known = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
             for v in [*graph.value_info, *graph.input, *graph.output]}
    known.update({i.name: list(i.dims) for i in graph.initializer})
    def shape_of(name):
        dims = known.get(name)
        return dims if dims and all(d > 0 for d in dims) else None  # unknown or symbolic: not counted

    total = 0
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        a, w, o = shape_of(node.input[0]), shape_of(node.input[1]), shape_of(node.output[0])
        if a is None or w is None or o is None:
            continue
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        # Conv: each output element sums C_in / groups x kernel area products; MatMul / Gemm: K products
        reduced = int(np.prod(w[1:])) if node.op_type == "Conv" else (a[-2] if trans_a else a[-1])
        total += 2 * int(np.prod(o)) * reduced
    return total / 1e9


def _count_gflop(torch, model, shape) -> float:
    """GFLOP of one clip by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() / 1e9


def _session(ort, path: Path, threads: int, custom: bool = False, spinning: bool = True):
    """A CPU session with the runtime's own options (:func:`edgefer.runtime.onnx_backend.session_setup`):
    ``threads`` intra-op threads, one inter-op thread, and idle threads that spin unless ``spinning=False`` (the
    stream row: :class:`edgefer.runtime.split_backend.SplitModel` runs the encoder and the head in turn with spinning
    off, since one session's spinning threads steal the cores from the next)."""
    from ..runtime.onnx_backend import session_setup

    options, providers = session_setup(ort, "cpu", None, threads, spinning)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if custom:
        from .. import ortops

        ortops.register(options)
    return ort.InferenceSession(str(path), options, providers=providers)


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


def _time_batch(report: Report, np, torch, model, sessions: dict, engines: dict, streams: dict, gemms: dict, batch: int,
                shape, per_frame: bool, repeats: int, seed: int, settle_s: float, notes: dict[str, str]) -> None:
    clips = np.random.default_rng(seed + batch).random((batch, *shape), dtype=np.float32)
    feed_array = clips.reshape(-1, *shape[1:]) if per_frame else clips  # a per-frame model: a batch of frames
    calls = {}
    if model is not None:
        tensor = torch.from_numpy(clips)

        def eager():
            with torch.no_grad():
                return model(tensor).numpy()

        calls["eager"] = eager
    for name, s in sessions.items():
        feed = {s.get_inputs()[0].name: feed_array}
        calls[name] = (lambda s=s, feed=feed: s.run(None, feed)[0])
    for name, engine in engines.items():
        calls[name] = (lambda engine=engine: engine._forward(feed_array))  # the float-batch forward, no preprocessing
    reference = calls["eager" if "eager" in calls else "ort fp32"]()
    for name, call in calls.items():  # warm-up, and parity
        got = call()
        report.max_abs_diff[f"{name} B={batch}"] = float(np.max(np.abs(got - reference)))
    for row, stream in streams.items():  # one new frame per stream: the encoder on B frames, the head on B windows
        encoder, head = stream["encoder"], stream["head"]
        frames = {encoder.get_inputs()[0].name: np.ascontiguousarray(clips[:, -1])}
        features = encoder.run(None, frames)[0]
        windows = {head.get_inputs()[0].name: np.ascontiguousarray(
            np.broadcast_to(features[:, None], (batch, shape[0], *features.shape[1:])), np.float32)}
        calls[row] = lambda encoder=encoder, head=head, frames=frames, windows=windows: (
            encoder.run(None, frames), head.run(None, windows))
        calls[row]()
    for name, (call, _) in gemms.items():
        call()
        calls[f"gemm {name}"] = call
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():  # alternate, so drifting background load hits every row alike
            time.sleep(settle_s)
            for _ in range(GEMM_CALLS_PER_TURN if name.startswith("gemm ") else 1):
                t0 = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - t0)
    eager_ms = statistics.median(times["eager"]) * 1e3 if "eager" in times else float("nan")
    for name, (_, ops) in gemms.items():  # the peak: the fastest GEMM call of the whole run
        report.peaks[name] = max(report.peaks[name], ops / min(times[f"gemm {name}"]) / 1e9)
    for name in ROWS:
        if name in times:  # peak_gflops is set once every batch ran
            report.rows.append(Row(name, batch, statistics.median(times[name]) * 1e3, report.gflop_per_clip,
                                   float("nan"), eager_ms))
        else:
            report.rows.append(Row(name, batch, float("nan"), report.gflop_per_clip, float("nan"), eager_ms,
                                   notes.get(name, "not measured")))


def _fmt(value: float, spec: str, width: int) -> str:
    return f"{value:{spec}}" if math.isfinite(value) else f"{'-':>{width}}"


def _print(out: TextIO, ort, torch, report: Report) -> None:
    out.write(f"{report.model} end to end on the CPU: PyTorch {torch.__version__} eager vs ONNX Runtime "
              f"{ort.__version__} (CPUExecutionProvider), {report.gflop_per_clip:.2f} GFLOP per clip "
              f"({report.gflop_source})\n")
    from edgefer.export.int8_scope import DEFAULT_SCOPE

    out.write(f"machine: {report.machine}, {report.threads} threads; int8 types {report.int8_types}, scope "
              f"{DEFAULT_SCOPE} (export.int8_scope)\n")
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
        stream = r.name in STREAM_ROWS  # ms per new frame; no clip throughput or FLOPs of its own
        ratio = _fmt(r.vs_eager, ">6.2f", 6) + ("x" if math.isfinite(r.vs_eager) else " ")
        out.write(f"{r.batch:>3} | {r.name:<17} | {r.ms_per_clip:>8.1f} | "
                  f"{_fmt(float('nan') if stream else r.clips_per_s, '>8.2f', 8)} | "
                  f"{_fmt(float('nan') if stream else r.gflops, '>8.1f', 8)} | {ratio} | "
                  f"{_fmt(float('nan') if stream else r.peak_fraction, '>6.1%', 6)}\n")
    worst = max((v for k, v in report.max_abs_diff.items() if "int8" not in k), default=0.0)
    int8 = max((v for k, v in report.max_abs_diff.items() if "int8" in k), default=float("nan"))
    out.write(f"medians of {report.repeats} alternating calls per row; x eager = eager ms / row ms; of peak = "
              f"GFLOP/s / the matching measured GEMM peak (int8 row: MatMulInteger); stream/new frame: ms per new "
              f"frame per stream (encoder + head at stride 1) vs eager's whole clip; max |logit - reference|: fp32 "
              f"rows {worst:.1e}, int8 {int8:.1e}\n")
    if report.profiles:
        from .ort_profile import format_profile

        out.write("ONNX Runtime per-node profile (kernel time per run, after ORT's fusions):\n")
        for p in report.profiles:
            out.write(format_profile(p) + "\n")
    out.flush()
