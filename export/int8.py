"""fp32 ONNX -> int8 QDQ ONNX with ONNX Runtime's static quantization, checked against fp32 before it is written.

Follows ONNX Runtime's quantization guide (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html)
and uses its library (:mod:`onnxruntime.quantization`) for every step; nothing here reimplements it:

1. Pre-processing as ``quant_pre_process`` does it: ORT's basic graph optimisations (constant folding, the Conv
   fusions; run by :func:`_optimize`), then ONNX's and ORT's symbolic shape inference. The symbolic step needs the
   export's pads to be constants (``edgefer.ops.reference.multiscale_embedding`` makes them so in a trace; before
   that, a Shape -> Sub chain made ``_infer_Reshape`` assert); it is skipped for a graph with edgefer custom ops,
   which it does not know. BatchNorm is already folded into the convolutions by ``torch.onnx.export`` in eval
   mode (no BatchNormalization node is left).
2. Activation ranges from ``create_calibrator`` (MinMax, Entropy or Percentile) on real face clips, saved as a
   calibration cache, then ``quantize_static`` from that cache in QDQ format with per-channel weights, over the
   nodes :func:`export.int8_scope.select_nodes` picks (default: the convolutional path and the Linear layers), with the
   activation/weight types chosen from the CPU's ISA by :func:`quant_types_for_cpu`, or the symmetric
   zero-point-0 variant for TensorRT's explicit quantization (:func:`tensorrt_types`).
3. Top-1 agreement and logit cosine similarity with the fp32 graph on *held-apart* clips (never the calibration
   ones); below ``min_agreement`` the export raises :class:`edgefer.errors.ExportError` and writes nothing.
4. The figures and choices are recorded in the metadata (``edgefer.int8.*`` keys) and the file is written
   atomically.

**With edgefer's custom ops** (``TemporalAttention``, ``MultiScaleEmbedding``): ONNX Runtime 1.32's
``quant_pre_process`` and ``create_calibrator`` build their sessions from a bare ``SessionOptions()``, which cannot
load the custom-op library. So the two steps that run the graph (the basic optimisations, and the calibration run
of the augmented graph) run here in sessions that load it (:func:`_optimize`, :func:`_ranges_cache`), and
``quantize_static`` reads the ranges from the cache without a session of its own. ORT's quantizer knows no
``edgefer`` op, so the custom nodes stay fp32 between DequantizeLinear and QuantizeLinear nodes, and the agreement
is measured with the library loaded.

:func:`sensitivity` ranks the tensors by the quantization error ``qdq_loss_debug`` measures, to choose what to
keep in fp32.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgefer.errors import ArgumentError, EdgeferError, ExportError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import check_output_path, write_atomically

from .calibration_clips import CalibrationSet
from .int8_scope import DEFAULT_KEEP_FP32, DEFAULT_SCOPE, select_nodes

#: Calibration methods of ``onnxruntime.quantization.CalibrationMethod`` offered here.
METHODS = ("minmax", "entropy", "percentile")

@dataclass(frozen=True)
class QuantTypes:
    """The int8 types of one quantization, and why.

    Attributes:
        activations: ``"int8"`` or ``"uint8"`` (``QuantType.QInt8`` / ``QuantType.QUInt8``).
        weights: ``"int8"`` (always signed, per channel).
        reduce_range: quantize weights to 7 bits (ORT's remedy for VPMADDUBSW saturation without VNNI).
        symmetric: zero points are 0 for activations and weights (TensorRT's explicit quantization).
        reason: one line naming the rule applied.
    """

    activations: str
    weights: str
    reduce_range: bool
    symmetric: bool
    reason: str

    @property
    def name(self) -> str:
        """``"S8S8"``, ``"U8S8"`` (activations then weights), with ``+reduce_range`` / ``symmetric`` marks."""
        base = ("S8" if self.activations == "int8" else "U8") + "S8"
        return base + ("+reduce_range" if self.reduce_range else "") + (" symmetric" if self.symmetric else "")


def quant_types_for_cpu(flags: Iterable[str] | None = None) -> QuantTypes:
    """The activation/weight types for ONNX Runtime's CPU execution provider on this CPU (the one home of that rule).

    ONNX Runtime's guide ("Data type selection", "When to use reduce-range"): x86-64's int8 instructions multiply
    u8 x s8 (VPMADDUBSW on AVX2/AVX-512, VPDPBUSD with VNNI), so U8S8 is the native pair there; without VNNI,
    VPMADDUBSW adds pairs into 16 bits and can saturate, hence ``reduce_range`` (7-bit weights) on AVX2 and on
    AVX-512 without VNNI; with VNNI (AVX-512 VNNI, AVX-VNNI, AMX) the 32-bit accumulation does not saturate and
    the full range is used. The guide's default, S8S8 in QDQ format, is kept for ARM (NEON/dot product: s8 x s8
    native) and unknown CPUs. Measured with onnxruntime 1.32 on an AMD EPYC with AVX-512 VNNI (``edgefer bench
    model`` and the profile of the int8 MSSTNet): S8S8 QDQ left 15 of 23 convolutions unfused (DequantizeLinear +
    fp32 Conv) and ``MatMulInteger`` s8 x s8 ran at ~90 GOP/s against ~1700 GOP/s for u8 x s8, so x86 never gets
    S8S8 here.

    Args:
        flags: /proc/cpuinfo flags; default those of this machine (:func:`edgefer.bench.machine.cpu_flags`).

    Returns:
        :class:`QuantTypes` (never symmetric; see :func:`tensorrt_types`).
    """
    if flags is None:
        from edgefer.bench.machine import cpu_flags

        flags = cpu_flags()
    flags = set(flags)
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return QuantTypes("uint8", "int8", False, False, "x86 with VNNI: U8S8 (VPDPBUSD), full range")
    if flags & {"avx2", "avx512f", "avx512bw", "sse4_1", "ssse3"}:
        return QuantTypes("uint8", "int8", True, False,
                          "x86 without VNNI: U8S8 + reduce_range (VPMADDUBSW can saturate)")
    return QuantTypes("int8", "int8", False, False, "not x86 (ARM/unknown): S8S8, ONNX Runtime's QDQ default")


def tensorrt_types() -> QuantTypes:
    """The variant TensorRT's explicit quantization accepts: signed int8, zero points 0 (symmetric) for
    activations (per tensor) and weights (per channel), full 8-bit range."""
    return QuantTypes("int8", "int8", False, True, "TensorRT explicit quantization: symmetric S8S8, zero point 0")


@dataclass
class Int8Report:
    """What an int8 export wrote and measured.

    Attributes:
        path: the int8 ONNX file written.
        metadata: its metadata (with the ``int8.*`` figures in ``extra``).
        agreement: top-1 agreement with fp32 on the held-out clips, in [0, 1].
        cosine_mean, cosine_min: cosine similarity of int8 vs fp32 logits over the held-out clips.
        held_out, calibration: clip counts.
        types: the :class:`QuantTypes` used.
        excluded: node names kept in fp32.
    """

    path: Path
    metadata: ModelMetadata
    agreement: float
    cosine_mean: float
    cosine_min: float
    held_out: int
    calibration: int
    types: QuantTypes
    excluded: list[str]


def _batch(clips: np.ndarray, per_frame: bool) -> np.ndarray:
    """(B, T, C, H, W) clips -> what the graph takes: the clips, or for a per-frame (NCHW) model their frames
    (B*T, C, H, W)."""
    return np.ascontiguousarray(clips.reshape(-1, *clips.shape[-3:]) if per_frame else clips, np.float32)


def _Reader(clips: np.ndarray, input_name: str, per_frame: bool = False):
    """An ``onnxruntime.quantization.CalibrationDataReader`` over clips, one clip per batch (the graph's batch axis
    is dynamic)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter([{input_name: _batch(clip[None], per_frame)} for clip in clips])

        def get_next(self):
            return next(self._items, None)

    return Reader()


def _ranges_cache(model: Path, clips: np.ndarray, per_frame: bool, method: str, symmetric: bool, tmp: Path,
                  custom_ops: bool) -> Path:
    """Activation ranges of every float tensor of ``model`` over ``clips``, saved as the calibration cache
    ``quantize_static`` reads (so that it needs no calibration session of its own).

    ONNX Runtime's calibrators (``MinMaxCalibrater``, ``EntropyCalibrater``, ``PercentileCalibrater`` of
    :mod:`onnxruntime.quantization.calibrate`) augment the graph with every intermediate tensor as an output; the
    augmented graph runs in a session made here, with ``ORT_DISABLE_ALL`` as ORT's own ``create_inference_session``
    uses, plus edgefer's custom-op library when the graph has custom nodes (ORT's session is a bare
    ``SessionOptions()`` that cannot load it). The options are ``quantize_static``'s defaults except for Entropy:
    ``quantize_static`` passes no histogram size to the entropy calibrator, whose defaults (128 bins, 128 quantized
    bins) leave the KL search a single candidate, the full range, so Entropy would equal MinMax (onnxruntime
    1.32); here its histogram has 2048 bins, as ORT's Percentile calibrator and TensorRT's entropy calibration
    use, quantized to 128 (int8's half range)."""
    import onnxruntime as ort
    from onnxruntime.quantization.calibrate import EntropyCalibrater, MinMaxCalibrater, PercentileCalibrater, \
        save_tensors_data

    augmented = str(tmp / "augmented.onnx")
    if method == "minmax":
        calibrator = MinMaxCalibrater(str(model), None, augmented, symmetric=symmetric)
    elif method == "entropy":
        calibrator = EntropyCalibrater(str(model), None, augmented, symmetric=symmetric, num_bins=2048,
                                       num_quantized_bins=128)
    else:
        calibrator = PercentileCalibrater(str(model), None, augmented, symmetric=symmetric, num_bins=2048,
                                          percentile=99.999)
    calibrator.augment_graph()
    calibrator.infer_session = cpu_session(Path(augmented), custom_ops, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    calibrator.collect_data(_Reader(clips, _input_name(model), per_frame))
    cache = tmp / f"{method}_ranges.json"
    save_tensors_data(calibrator.compute_data(), cache)
    del calibrator
    return cache


def _optimize(src: Path, dst: Path, custom_ops: bool) -> None:
    """``src`` with ONNX Runtime's basic graph optimisations (constant folding, redundant-node elimination, the
    Conv fusions: the step ``quant_pre_process`` runs) saved to ``dst``, in a session that loads edgefer's custom-op
    library when the graph has custom nodes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(dst)
    if custom_ops:
        from edgefer import ortops

        ortops.register(options)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _run(path: Path, clips: np.ndarray, per_frame: bool, custom_ops: bool = False) -> np.ndarray:
    session = cpu_session(path, custom_ops)
    return session.run(None, {session.get_inputs()[0].name: _batch(clips, per_frame)})[0]


def cpu_session(path: Path, custom_ops: bool, level=None):
    """An ONNX Runtime CPU session of ``path`` (with edgefer's custom-op library when ``custom_ops``; ``level``: a
    ``GraphOptimizationLevel``, default ORT's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if level is not None:
        options.graph_optimization_level = level
    if custom_ops:
        from edgefer import ortops

        ortops.register(options)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float, float]:
    """(top-1 agreement in [0, 1], mean cosine, min cosine) of two (N, K) logit arrays, row by row; (N, F, K)
    frame-wise scores (FESNet) count each of the N * F frames as a row."""
    a, b = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])  # (B, frames, K) per-frame scores: each frame
    top1 = float(np.mean(a.argmax(1) == b.argmax(1)))
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return top1, float(cos.mean()), float(cos.min())


def quantize_int8(fp32: str | Path, out: str | Path, metadata: ModelMetadata, clips: CalibrationSet, *,
                  method: str = "minmax", types: QuantTypes | None = None, keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32,
                  scope: str = DEFAULT_SCOPE, min_agreement: float = 0.95, calib_source: str = "") -> Int8Report:
    """Quantize the fp32 ONNX file ``fp32`` to int8 QDQ at ``out``; write nothing unless the agreement holds.

    Args:
        fp32: an fp32 edgefer ONNX file: a clip model ((B, T, C, H, W) float32 -> (B, K)) or a per-frame model
            (``input_layout == "NCHW"``: each clip's frames are fed as one batch, and agreement is counted per
            frame); with edgefer custom ops when ``metadata.custom_ops`` says so (they need the custom-op library,
            :mod:`edgefer.ortops`).
        out: destination ``.onnx``; replaced atomically once every check passed.
        metadata: the fp32 export's metadata; written back with ``int8.*`` keys added to ``extra``.
        clips: calibration and held-out clips (:func:`export.calibration_clips.calibration_clips`).
        method: ``"minmax"``, ``"entropy"`` or ``"percentile"`` (``CalibrationMethod``).
        types: activation/weight types; default :func:`quant_types_for_cpu` for this CPU.
        keep_fp32: op types, node names, ``"first_conv"``, ``"classifier"`` to leave unquantized.
        scope: ``"conv"`` (the convolutional path, default) or ``"all"`` (:mod:`export.int8_scope`).
        min_agreement: the smallest accepted top-1 agreement with fp32 on the held-out clips, in [0, 1].
        calib_source: recorded in the metadata (the ``--calib`` path).

    Returns:
        :class:`Int8Report`.

    Raises:
        ArgumentError: unknown method or scope, ``min_agreement`` outside [0, 1], a ``keep_fp32`` entry matching
            nothing.
        BackendUnavailableError: the graph has custom ops and the custom-op library is not built.
        ExportError: quantization failed, or the agreement is below ``min_agreement`` (nothing written).
        OutputPathError: ``out`` cannot be written.
    """
    import onnx

    check_options(method, min_agreement)
    custom = bool(metadata.custom_ops)
    out = check_output_path(out, "int8 ONNX output")
    types = types or quant_types_for_cpu()
    per_frame = metadata.input_layout == "NCHW"
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quant = Path(tmp, "int8.onnx")
        excluded = quantize_graph(Path(fp32), quant, clips.calibration, per_frame, custom, method=method, types=types,
                                  keep_fp32=keep_fp32, scope=scope, tmp=Path(tmp), what=str(out))
        ref = _run(Path(fp32), clips.held_out, per_frame, custom)
        got = _run(quant, clips.held_out, per_frame, custom)
        top1, cos_mean, cos_min = check_agreement(ref, got, min_agreement, len(clips.held_out), str(out))
        model = onnx.load(str(quant))
        figures = int8_figures(top1, cos_mean, cos_min, clips, method, calib_source, types, scope, excluded, model)
        new_meta = replace(metadata, extra={**dict(metadata.extra), **figures})
        write_int8(model, out, new_meta)
    return Int8Report(out, new_meta, top1, cos_mean, cos_min, len(clips.held_out), len(clips.calibration), types,
                      excluded)


def check_options(method: str, min_agreement: float) -> None:
    """Raise :class:`ArgumentError` for an unknown calibration method or a ``min_agreement`` outside [0, 1]."""
    if method not in METHODS:
        raise ArgumentError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ArgumentError(f"min_agreement must be in [0, 1], got {min_agreement}")


def quantize_graph(fp32: Path, dst: Path, calibration: np.ndarray, per_frame: bool, custom_ops: bool, *, method: str,
                   types: QuantTypes, keep_fp32: Sequence[str], scope: str, tmp: Path, what: str) -> list[str]:
    """Pre-process, calibrate and quantize one fp32 graph to the QDQ file ``dst`` (steps 1 and 2 of the module
    docstring); no check, no metadata.

    Args:
        fp32: the graph; ``dst``: where the QDQ graph goes (a scratch path).
        calibration: (N, ...) inputs, fed one at a time as a batch of 1 (``per_frame``: each item's frames, (N, T,
            C, H, W) -> T frames per call).
        custom_ops: the graph has edgefer custom nodes (its sessions load the library).
        method, types, keep_fp32, scope: as :func:`quantize_int8`.
        tmp: a scratch folder; ``what``: the output named in errors.

    Returns:
        The node names ``keep_fp32`` resolved to.

    Raises:
        ArgumentError: an unknown scope, a ``keep_fp32`` entry matching nothing, a scope selecting nothing; a
            graph that is already quantized.
        BackendUnavailableError: custom ops without the custom-op library.
        ExportError: ONNX Runtime's quantization failed, or wrote a graph it cannot load.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, \
        quantize_static

    if custom_ops:
        from edgefer import ortops

        ortops.library_path()  # BackendUnavailableError naming what is missing, before any work
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    calib_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                    "percentile": CalibrationMethod.Percentile}[method]
    graph = onnx.load(str(fp32), load_external_data=False).graph
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        raise ArgumentError(f"{fp32} is already quantized (it has QuantizeLinear/DequantizeLinear nodes); int8 "
                            "quantization takes the fp32 export")
    pre = tmp / f"{dst.stem}.pre.onnx"
    try:
        # ORT's basic optimisations in a session that loads the custom-op library (quant_pre_process's own is a
        # bare session), then quant_pre_process's shape inference (module docstring)
        _optimize(fp32, pre, custom_ops)
        quant_pre_process(str(pre), str(pre), skip_symbolic_shape=custom_ops, skip_optimization=True)
        to_quantize, excluded = select_nodes(onnx.load(str(pre)), scope, keep_fp32)
        cache = _ranges_cache(pre, calibration, per_frame, method, types.symmetric, tmp, custom_ops)
        extra = {"ActivationSymmetric": types.symmetric, "WeightSymmetric": True,
                 # TensorRT's explicit quantization has no int32 bias DequantizeLinear: with its (symmetric) types
                 # the biases stay fp32, and TensorRT fuses them into the int8 conv / GEMM
                 "QuantizeBias": not types.symmetric}
        quantize_static(str(pre), str(dst), None, calibration_cache_path=str(cache), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=types.reduce_range,
                        activation_type=qtype[types.activations], weight_type=qtype[types.weights],
                        nodes_to_quantize=to_quantize, nodes_to_exclude=excluded if to_quantize is None else None,
                        calibrate_method=calib_method, extra_options=extra)
        cpu_session(dst, custom_ops)  # ONNX Runtime must load what it wrote
    except EdgeferError:
        raise
    except Exception as exc:
        raise ExportError(f"onnxruntime quantize_static failed: {type(exc).__name__}: {exc}; {what} was not "
                          "written") from exc
    return excluded


def check_agreement(reference: np.ndarray, candidate: np.ndarray, min_agreement: float, clips: int,
                    what: str) -> tuple[float, float, float]:
    """:func:`agreement` of fp32 and int8 logits, or :class:`ExportError` (one line, ``what`` not written) below
    ``min_agreement``."""
    top1, cos_mean, cos_min = agreement(reference, candidate)
    if not top1 >= min_agreement:
        raise ExportError(f"int8 top-1 agreement with fp32 {top1:.1%} < {min_agreement:.0%} on {clips} held-out "
                          f"clips (logit cosine {cos_mean:.4f}); {what} was not written (try a narrower "
                          "--int8-scope, --calib-method, --keep-fp32 or more calibration clips)")
    return top1, cos_mean, cos_min


def int8_figures(top1: float, cos_mean: float, cos_min: float, clips: CalibrationSet, method: str, calib_source: str,
                 types: QuantTypes, scope: str, excluded: Sequence[str], model) -> dict[str, str]:
    """The ``int8.*`` metadata keys of an int8 export whose QDQ graph is ``model`` (an ``onnx.ModelProto``)."""
    dequantize = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear")
    return {"int8.agreement": f"{top1:.6f}", "int8.cosine_mean": f"{cos_mean:.6f}",
            "int8.cosine_min": f"{cos_min:.6f}", "int8.held_out_clips": str(len(clips.held_out)),
            "int8.calibration_clips": str(len(clips.calibration)), "int8.calibration_method": method,
            "int8.calibration_source": calib_source, "int8.split": clips.split, "int8.types": types.name,
            "int8.reduce_range": json.dumps(types.reduce_range), "int8.symmetric": json.dumps(types.symmetric),
            "int8.scope": scope, "int8.keep_fp32": json.dumps(list(excluded)),
            "int8.dequantize_nodes": str(dequantize), "int8.format": "QDQ, per-channel weights"}


def write_int8(model, out: Path, metadata: ModelMetadata) -> None:
    """The QDQ graph ``model`` (an ``onnx.ModelProto``, changed in place) with ``metadata`` as its properties,
    checked by onnx.checker, written atomically to ``out``.

    Raises:
        ExportError: the graph fails onnx.checker (nothing written).
        OutputPathError: ``out`` cannot be written.
    """
    import onnx

    del model.metadata_props[:]
    for key, value in metadata.to_props().items():
        model.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the int8 graph fails onnx.checker: {exc}; {out} was not written") from None
    write_atomically(out, model.SerializeToString(), "int8 ONNX output")


def sensitivity(fp32: str | Path, int8: str | Path, clips: np.ndarray, top: int = 10, *,
                per_frame: bool = False) -> list[tuple[str, float]]:
    """The ``top`` activations with the worst quantization error, by ``onnxruntime.quantization.qdq_loss_debug``.

    Runs both graphs with every intermediate tensor as an output, pairs each quantized activation with its fp32
    twin, and computes the signal-to-quantization-noise ratio (SQNR, dB; higher is better) of the QDQ value
    against the fp32 value (``xmodel_err``).

    Args:
        fp32, int8: the fp32 export and its QDQ model (as :func:`quantize_int8` wrote it).
        clips: (N, T, C, H, W) float32 clips to run.
        top: how many tensors to return.
        per_frame: the graph takes frames (NCHW): each clip is fed as its T frames.

    Returns:
        [(tensor name, SQNR in dB)], lowest SQNR first.
    """
    from onnxruntime.quantization.qdq_loss_debug import collect_activations, compute_activation_error, \
        create_activation_matching, modify_model_output_intermediate_tensors

    with tempfile.TemporaryDirectory() as tmp:
        f_aug, q_aug = Path(tmp, "f.onnx"), Path(tmp, "q.onnx")
        modify_model_output_intermediate_tensors(str(fp32), str(f_aug))
        modify_model_output_intermediate_tensors(str(int8), str(q_aug))
        name = _input_name(Path(fp32))
        f_act = collect_activations(str(f_aug), _Reader(clips, name, per_frame))
        q_act = collect_activations(str(q_aug), _Reader(clips, name, per_frame))
    errors = compute_activation_error(create_activation_matching(q_act, f_act))
    ranked = [(name, float(err["xmodel_err"])) for name, err in errors.items() if "xmodel_err" in err]
    return sorted(ranked, key=lambda item: item[1])[:top]
