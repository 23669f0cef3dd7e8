"""fp32 ONNX -> int8 QDQ ONNX with ONNX Runtime's static quantization, checked against fp32 before it is written.

Follows ONNX Runtime's quantization guide (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html)
and uses its library (:mod:`onnxruntime.quantization`) for every step; nothing here reimplements it:

1. ``quant_pre_process`` (ONNX shape inference + ORT's basic graph optimisations, which fold constants and fuse
   what can be fused before quantization). Its *symbolic* shape inference asserts in ``_infer_Reshape`` on the
   MSSTNet / STT export (the reshapes read sizes from ``Shape`` nodes of the dynamic batch), so that one step is
   skipped with ``skip_symbolic_shape=True``; ONNX's own shape inference still runs. BatchNorm is already folded
   into the convolutions by ``torch.onnx.export`` in eval mode (no BatchNormalization node is left).
2. ``quantize_static`` in QDQ format, per-channel weights, calibrated on real face clips (MinMax, Entropy or
   Percentile), with the activation/weight types chosen from the CPU's ISA by :func:`quant_types_for_cpu`, or the
   symmetric zero-point-0 variant for TensorRT's explicit quantization (:func:`tensorrt_types`).
3. Top-1 agreement and logit cosine similarity with the fp32 graph on *held-apart* clips (never the calibration
   ones); below ``min_agreement`` the export raises :class:`edgefer.errors.ExportError` and writes nothing.
4. The figures and choices are recorded in the metadata (``edgefer.int8.*`` keys) and the file is written
   atomically.

:func:`sensitivity` ranks the tensors by the quantization error ``qdq_loss_debug`` measures, to choose what to
keep in fp32.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgefer.errors import ArgumentError, ExportError, NoFaceError, VideoError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import check_output_path, write_atomically

#: Calibration methods of ``onnxruntime.quantization.CalibrationMethod`` offered here.
METHODS = ("minmax", "entropy", "percentile")
#: What ``keep_fp32`` understands besides node names: op types, and two roles found in the graph.
FIRST_CONV, CLASSIFIER = "first_conv", "classifier"
#: Kept in fp32 by default: LayerNorm, Softmax and the classifier (the usual sensitive nodes). The first conv, the
#: fourth usual suspect, is quantized by default: its input is pixel / 255, which uint8 holds exactly, and keeping
#: it fp32 cost a third of the int8 MSSTNet's time (26 vs 18 ms per clip at B = 1 on an AMD EPYC with AVX-512
#: VNNI) for no top-1 change on the trained zoo model (100% either way; logit cosine min 0.9993 vs 0.9945).
#: ``keep_fp32=(..., "first_conv")`` keeps it.
DEFAULT_KEEP_FP32 = ("LayerNormalization", "Softmax", CLASSIFIER)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
#: A ``--calib`` file with one of these endings is read as a Former-DFER annotation list.
ANNOTATION_LIST_SUFFIXES = (".txt", ".lst", ".list")


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
class CalibrationSet:
    """Real clips for calibration and the held-apart clips the agreement is measured on.

    Attributes:
        calibration: (Nc, T, C, H, W) float32, preprocessed as the runtime does.
        held_out: (Nh, T, C, H, W) float32, disjoint from ``calibration``.
        split: how the two were separated, one line.
        skipped: videos that gave no clip (no face), with the reason.
    """

    calibration: np.ndarray
    held_out: np.ndarray
    split: str
    skipped: list[str] = field(default_factory=list)


def calibration_clips(source: str | Path, metadata: ModelMetadata, *, clips_per_video: int = 8) -> CalibrationSet:
    """Real face clips from a video, a folder of videos or a Former-DFER annotation list, prepared as the runtime
    prepares them, split into calibration and held-apart clips.

    Videos: cut by the runtime's own pipeline (:func:`edgefer.pipeline.reference_clips`: detection, tracking,
    crops, then :func:`edgefer.preprocess.prepare_clip` on non-overlapping windows of
    :func:`edgefer.sampling.window_bounds`, the window cutter ``predict`` and ``spot`` use; for a spotting model
    such as FESNet a window is its K consecutive frames).
    Annotation list (a ``.txt``/``.lst``/``.list`` file, ``frame_dir num_frames label`` a line, read by
    :func:`edgefer.data.read_annotation_list`; its frame folders hold face crops already): see
    :func:`annotation_clips`.

    Split: with two or more sources (videos, or the list's clips) that yield clips, whole sources are held apart
    (every third in order, the last of two: videos by sorted name, clips in list order; interleaved, so that a
    list sorted by class still holds out every class), so no held-out clip
    shares a source with a calibration clip; with one source, its windows are split in time: about the first two
    thirds calibrate, the window after them is left out (a short video's last window is aligned to its end and
    may overlap the one before it, :func:`edgefer.sampling.window_bounds`), the rest are held out.

    Args:
        source: a video file, a folder whose video files (``.mp4 .mov .avi .mkv .webm .m4v``) are used, or an
            annotation list.
        metadata: the model's metadata (frame size, colour order, mean/std, clip length, sampling, crop rules).
        clips_per_video: at most this many clips per video or per listed clip.

    Returns:
        :class:`CalibrationSet` of (N, T, C, H, W) float32 clips.

    Raises:
        ArgumentError: ``source`` is missing, holds no video, or gives neither two sources with clips nor three
            clips of one.
        VideoError: a single video that cannot be read.
        DatasetError (an :class:`~edgefer.errors.EdgeferError`): a malformed annotation list or frame folder,
            naming ``list:line``.
    """
    from edgefer.pipeline import reference_clips

    src = Path(source)
    if clips_per_video < 1:
        raise ArgumentError(f"clips_per_video must be >= 1, got {clips_per_video}")
    if src.is_file() and src.suffix.lower() in ANNOTATION_LIST_SUFFIXES:
        return _split(src, annotation_clips(src, metadata, clips_per_video=clips_per_video), [])
    if src.is_dir():
        videos = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise ArgumentError(f"--calib {src}: the folder holds no video ({', '.join(VIDEO_SUFFIXES)})")
    elif src.is_file():
        videos = [src]
    else:
        raise ArgumentError(f"--calib {src}: no such video, folder or annotation list")
    per_video, skipped = [], []
    for video in videos:
        try:
            per_video.append((video.name, reference_clips(video, metadata, count=clips_per_video)))
        except NoFaceError as exc:
            skipped.append(f"{video.name}: {exc}")
        except VideoError as exc:
            if len(videos) == 1:
                raise
            skipped.append(f"{video.name}: {exc}")
    return _split(src, per_video, skipped)


def annotation_clips(path: str | Path, metadata: ModelMetadata, *,
                     clips_per_video: int = 8) -> list[tuple[str, np.ndarray]]:
    """The clips of a Former-DFER annotation list, prepared exactly as the runtime prepares a clip of face crops.

    Each listed frame folder (face crops, read in :func:`edgefer.data.list_frames` order as BGR like a video
    frame, :func:`edgefer.data.images.read_image`) is one clip. A model that samples a whole clip (``dfew-test``:
    MSSTNet, STT) reads the frames :func:`edgefer.preprocess.sample_indices` picks from the whole folder, as
    ``edgefer.load(...).predict(frames)`` does, so one clip per line; a model of ``consecutive`` windows (FESNet)
    or a per-frame model reads full windows of its clip length (per-frame: 16 frames) cut by
    :func:`edgefer.sampling.window_bounds` without overlap, up to ``clips_per_video`` per line. Every frame goes
    through :func:`edgefer.preprocess.prepare_frame`.

    Args:
        path: the annotation list (paths relative to its folder).
        metadata: the model's metadata.
        clips_per_video: at most this many windows per listed clip.

    Returns:
        ``[("list.txt:LINE", (n, T, C, H, W) float32)]`` in list order; a line too short for one window gives none.

    Raises:
        DatasetError: the list or a frame folder is malformed (:func:`edgefer.data.read_annotation_list`), or an
            image does not decode; one line naming ``list:line``.
    """
    from edgefer.data import list_frames, read_annotation_list  # edgefer.data: only when a list is given
    from edgefer.data.images import read_image
    from edgefer.pipeline import DEFAULT_WINDOW
    from edgefer.preprocess import prepare_frame, sample_indices
    from edgefer.sampling import window_bounds

    out = []
    classes = {"num_classes": len(metadata.labels)} if metadata.task == "dfer" else {}  # labels: not used here
    for record in read_annotation_list(path, **classes):
        frames = list_frames(record.frame_dir)
        if metadata.sampling == "dfew-test":
            windows = [sample_indices(len(frames), metadata)]
        else:
            size = metadata.clip_length if metadata.clip_length > 1 else DEFAULT_WINDOW
            windows = [np.arange(a, b) for a, b in window_bounds(len(frames), size, size)
                       if b - a == size][:clips_per_video]
        clips = [np.stack([prepare_frame(read_image(frames[i], record.source), metadata) for i in idx])
                 for idx in windows]
        if clips:
            out.append((Path(record.source).name, np.stack(clips)))
    return out


def _split(src: Path, per_source: list[tuple[str, np.ndarray]], skipped: list[str]) -> CalibrationSet:
    """Calibration / held-out clips from ``[(source name, clips)]`` by the rule of :func:`calibration_clips`."""
    per_source = [(name, clips) for name, clips in per_source if len(clips)]
    if len(per_source) >= 2:
        # every third source is held out (the last of two): interleaved, so that a list sorted by class, as DFER
        # annotation lists are, still holds out every class
        held_idx = set(range(2, len(per_source), 3)) or {len(per_source) - 1}
        held = [s for i, s in enumerate(per_source) if i in held_idx]
        kept = [s for i, s in enumerate(per_source) if i not in held_idx]
        calib = np.concatenate([c for _, c in kept])
        test = np.concatenate([c for _, c in held])
        by = "listed clip" if src.suffix.lower() in ANNOTATION_LIST_SUFFIXES else "video"
        split = f"by {by}: calibration on {_names(kept)}; held out {_names(held)}"
    elif per_source and len(per_source[0][1]) >= 3:
        clips = per_source[0][1]
        cut = max(1, (2 * len(clips)) // 3 - 1)
        calib, test = clips[:cut], clips[cut + 1:]  # one window left out between them (see the docstring)
        split = (f"in time within {per_source[0][0]}: first {cut} windows calibrate, one is skipped, last "
                 f"{len(test)} held out")
    else:
        got = sum(len(c) for _, c in per_source)
        raise ArgumentError(f"--calib {src}: {got} face clip(s) found, need 2 videos (or listed clips) with faces or "
                            f"3 clips of one (calibration and held-out clips must differ); "
                            f"{'; '.join(skipped) or 'try a longer video'}")
    return CalibrationSet(np.ascontiguousarray(calib, np.float32), np.ascontiguousarray(test, np.float32), split,
                          skipped)


def _names(per_source: list[tuple[str, np.ndarray]], shown: int = 6) -> str:
    names = [name for name, _ in per_source]
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


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


def resolve_keep_fp32(model, keep: Sequence[str]) -> list[str]:
    """Node names of ``model`` (an ``onnx.ModelProto``) to keep in fp32, from op types (``"Softmax"``), node
    names, ``"first_conv"`` (the first Conv in graph order) and ``"classifier"`` (the last Gemm/MatMul).

    Raises:
        ArgumentError: an entry that matches no op type, node name or role of this graph.
    """
    nodes = list(model.graph.node)
    names: list[str] = []
    for item in keep:
        if item == FIRST_CONV:
            hit = [n.name for n in nodes if n.op_type == "Conv"][:1]
        elif item == CLASSIFIER:
            hit = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")][-1:]
        else:
            hit = [n.name for n in nodes if n.op_type == item or n.name == item]
        if not hit and item not in (FIRST_CONV, CLASSIFIER) and item not in DEFAULT_KEEP_FP32:
            raise ArgumentError(f"--keep-fp32 {item!r} matches no op type or node name of this graph")
        names.extend(h for h in hit if h not in names)
    return names


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


def _entropy_cache(model: Path, clips: np.ndarray, per_frame: bool, symmetric: bool, tmp: Path) -> str:
    """Entropy (KL) ranges computed with ``onnxruntime.quantization.create_calibrator`` and saved as a calibration
    cache for ``quantize_static``. Needed because ``quantize_static`` passes no histogram size to the entropy
    calibrator, whose defaults (128 bins, 128 quantized bins) leave the KL search a single candidate, the full
    range: Entropy would equal MinMax (onnxruntime 1.32). Here the histogram has 2048 bins, as ORT's Percentile
    calibrator and TensorRT's entropy calibration use, quantized to 128 (int8's half range)."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    calibrator = create_calibrator(str(model), augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Entropy,
                                   extra_options={"symmetric": symmetric, "num_bins": 2048, "num_quantized_bins": 128})
    calibrator.collect_data(_Reader(clips, _input_name(model), per_frame))
    cache = tmp / "entropy_ranges.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return str(cache)


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def _run(path: Path, clips: np.ndarray, per_frame: bool) -> np.ndarray:
    session = _session(path, False)
    return session.run(None, {session.get_inputs()[0].name: _batch(clips, per_frame)})[0]


def _session(path: Path, custom_ops: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
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
                  min_agreement: float = 0.95, calib_source: str = "") -> Int8Report:
    """Quantize the fp32 ONNX file ``fp32`` to int8 QDQ at ``out``; write nothing unless the agreement holds.

    Args:
        fp32: an fp32 edgefer ONNX file with standard ops: a clip model ((B, T, C, H, W) float32 -> (B, K)) or a
            per-frame model (``input_layout == "NCHW"``: each clip's frames are fed as one batch, and agreement
            is counted per frame).
        out: destination ``.onnx``; replaced atomically once every check passed.
        metadata: the fp32 export's metadata; written back with ``int8.*`` keys added to ``extra``.
        clips: calibration and held-out clips (:func:`calibration_clips`).
        method: ``"minmax"``, ``"entropy"`` or ``"percentile"`` (``CalibrationMethod``).
        types: activation/weight types; default :func:`quant_types_for_cpu` for this CPU.
        keep_fp32: op types, node names, ``"first_conv"``, ``"classifier"`` to leave unquantized.
        min_agreement: the smallest accepted top-1 agreement with fp32 on the held-out clips, in [0, 1].
        calib_source: recorded in the metadata (the ``--calib`` path).

    Returns:
        :class:`Int8Report`.

    Raises:
        ArgumentError: unknown method, ``min_agreement`` outside [0, 1], a ``keep_fp32`` entry matching nothing.
        ExportError: quantization failed, or the agreement is below ``min_agreement`` (nothing written).
        OutputPathError: ``out`` cannot be written.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, \
        quantize_static

    if method not in METHODS:
        raise ArgumentError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ArgumentError(f"min_agreement must be in [0, 1], got {min_agreement}")
    if metadata.custom_ops:
        raise ArgumentError("int8 quantization needs the standard-op export: ONNX Runtime's calibration session "
                            "cannot load the edgefer custom-op library (drop --custom-ops)")
    out = check_output_path(out, "int8 ONNX output")
    types = types or quant_types_for_cpu()
    per_frame = metadata.input_layout == "NCHW"
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    calib_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                    "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre, quant = Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        try:
            # symbolic shape inference asserts on the export's Shape->Reshape chains (module docstring)
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
            proto = onnx.load(str(pre))
            excluded = resolve_keep_fp32(proto, keep_fp32)
            extra = {"ActivationSymmetric": types.symmetric, "WeightSymmetric": True,
                     # TensorRT's explicit quantization has no int32 bias DequantizeLinear: with its (symmetric)
                     # types the biases stay fp32, and TensorRT fuses them into the int8 conv / GEMM
                     "QuantizeBias": not types.symmetric}
            reader, cache = _Reader(clips.calibration, _input_name(pre), per_frame), None
            if method == "entropy":
                reader, cache = None, _entropy_cache(pre, clips.calibration, per_frame, types.symmetric, Path(tmp))
            quantize_static(str(pre), str(quant), reader, calibration_cache_path=cache,
                            quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=types.reduce_range,
                            activation_type=qtype[types.activations], weight_type=qtype[types.weights],
                            nodes_to_exclude=excluded, calibrate_method=calib_method, extra_options=extra)
        except (ArgumentError, ExportError):
            raise
        except Exception as exc:
            raise ExportError(f"onnxruntime quantize_static failed: {type(exc).__name__}: {exc}; {out} was not "
                              "written") from exc
        ref, got = _run(Path(fp32), clips.held_out, per_frame), _run(quant, clips.held_out, per_frame)
        top1, cos_mean, cos_min = agreement(ref, got)
        if not top1 >= min_agreement:
            raise ExportError(f"int8 top-1 agreement with fp32 {top1:.1%} < {min_agreement:.0%} on "
                              f"{len(clips.held_out)} held-out clips (logit cosine {cos_mean:.4f}); {out} was not "
                              "written (try --calib-method, --keep-fp32 or more calibration clips)")
        figures = {"int8.agreement": f"{top1:.6f}", "int8.cosine_mean": f"{cos_mean:.6f}",
                   "int8.cosine_min": f"{cos_min:.6f}", "int8.held_out_clips": str(len(clips.held_out)),
                   "int8.calibration_clips": str(len(clips.calibration)), "int8.calibration_method": method,
                   "int8.calibration_source": calib_source, "int8.split": clips.split, "int8.types": types.name,
                   "int8.reduce_range": json.dumps(types.reduce_range), "int8.symmetric": json.dumps(types.symmetric),
                   "int8.keep_fp32": json.dumps(excluded), "int8.format": "QDQ, per-channel weights"}
        new_meta = replace(metadata, extra={**dict(metadata.extra), **figures})
        model = onnx.load(str(quant))
        del model.metadata_props[:]
        for key, value in new_meta.to_props().items():
            model.metadata_props.add(key=key, value=value)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"the int8 graph fails onnx.checker: {exc}; {out} was not written") from None
        write_atomically(out, model.SerializeToString(), "int8 ONNX output")
    return Int8Report(out, new_meta, top1, cos_mean, cos_min, len(clips.held_out), len(clips.calibration), types,
                      excluded)


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
