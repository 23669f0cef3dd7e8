"""edgefer ONNX -> TensorRT engine (a plain plan + ``NAME.engine.json``), checked against ONNX Runtime first.

Follows the TensorRT Python API ("The Python API" in NVIDIA's developer guide): ``trt.Builder``,
``create_network`` (with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` where the precision plan says so),
``trt.OnnxParser.parse_from_file``, ``create_builder_config`` with ``set_memory_pool_limit(MemoryPoolType.WORKSPACE,
...)``, an optimization profile on the batch axis (``create_optimization_profile``, ``set_shape``,
``add_optimization_profile``) and ``build_serialized_network``.

Steps of :func:`build_engine`:

1. the precision plan for this TensorRT (:func:`edgefer.export.tensorrt_precision.decide_precision`), and the ONNX
   graph it asks for: the fp32 export as it is, its fp16 conversion (TensorRT 11), or its symmetric int8 QDQ
   quantization (:func:`edgefer.export.int8.quantize_int8` with TensorRT's types, calibrated on real clips);
2. plugin libraries loaded (``trt.get_plugin_registry().load_library``) before parsing: the ONNX parser maps an
   ``edgefer`` custom node to the registered plugin of the same name;
3. the build;
4. the parity check: the plan is deserialized and run (:class:`edgefer.runtime.tensorrt_backend.EngineRunner`, the
   runtime's own code) on the check clips and compared with ONNX Runtime on the fp32 graph. fp32 and fp16 need a
   logit cosine >= :data:`MIN_COSINE` (0.999) on every clip and the same top-1 everywhere; int8 needs a top-1
   agreement >= ``min_agreement``. On failure :class:`~edgefer.errors.ExportError` is raised and nothing is
   written, as in the ONNX export;
5. the plan and its side-car are written atomically (:func:`edgefer.runtime.engine_file.write_engine`) with the
   metadata recording precision, TensorRT version, compute capability, device name, plugin libraries and the
   batch profile.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgefer.errors import ArgumentError, BackendUnavailableError, ExportError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import check_output_path
from edgefer.runtime.engine_file import sidecar_path, write_engine

from .tensorrt_precision import PrecisionPlan, check_tensorrt_qdq, decide_precision, fp16_graph
from .tensorrt_profile import BatchProfile, make_profile, profile_shapes

#: The smallest logit cosine similarity accepted for an fp32 or fp16 engine against ONNX Runtime.
MIN_COSINE = 0.999
#: Random clips compared when no real clips are given (seeded: the same every build).
RANDOM_CHECK_CLIPS = 4


@dataclass
class EngineReport:
    """What an engine build wrote and measured.

    Attributes:
        path: the plan written; its metadata is at ``sidecar``.
        sidecar: ``NAME.engine.json``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        tensorrt_version: ``tensorrt.__version__`` of the build.
        compute_capability: ``"MAJOR.MINOR"`` of the GPU built on.
        device_name: that GPU's name.
        cosine: the smallest logit cosine of engine vs ONNX Runtime over the check clips.
        top1_agreement: the fraction of check clips (frames for a spotting model) with the same top-1, in [0, 1].
        profile: the batch profile.
        plan: the :class:`PrecisionPlan` applied.
        check_clips: how many clips were compared, and whether real or random (``"4 real"``).
        metadata: the metadata written.
    """

    path: Path
    sidecar: Path
    precision: str
    tensorrt_version: str
    compute_capability: str
    device_name: str
    cosine: float
    top1_agreement: float
    profile: BatchProfile
    plan: PrecisionPlan
    check_clips: str
    metadata: ModelMetadata


def tensorrt_available() -> bool:
    """Whether ``import tensorrt`` works here."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def build_engine(onnx_path: str | Path, out_path: str | Path, *, precision: str = "fp16",
                 batch: BatchProfile | Sequence[int] | str = (1, 4, 8), workspace_mib: int | None = None,
                 plugins: Sequence[str | Path] | None = None, calib=None, check_clips: np.ndarray | None = None,
                 min_agreement: float = 0.95) -> EngineReport:
    """Build, check and write a TensorRT engine from an edgefer fp32 ONNX export.

    Args:
        onnx_path: an fp32 ``.onnx`` written by ``edgefer export`` (its metadata is carried over).
        out_path: the plan to write (``NAME.engine``); ``NAME.engine.json`` is written beside it.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        batch: the batch axis's optimization profile (min, opt, max), or ``"MIN:OPT:MAX"``.
        workspace_mib: the builder's workspace memory pool limit in MiB (TensorRT's default, the GPU's memory,
            when None).
        plugins: TensorRT plugin libraries to load; default edgefer's own
            (:data:`edgefer.runtime.tensorrt_backend.PLUGIN_LIBRARY`) when the ONNX uses edgefer custom ops.
        calib: int8 only: a :class:`edgefer.export.calibration_clips.CalibrationSet`, or a video / folder of videos
            (:func:`edgefer.export.calibration_clips.calibration_clips`); its held-out clips are also the check clips.
        check_clips: (N, T, C, H, W) float32 clips preprocessed as the runtime does, for the parity check;
            default the int8 held-out clips, else :data:`RANDOM_CHECK_CLIPS` seeded uniform-random clips.
        min_agreement: int8 only: the smallest accepted top-1 agreement, in [0, 1].

    Returns:
        An :class:`EngineReport`.

    Raises:
        BackendUnavailableError: TensorRT (or cuda-python, or a CUDA device) is missing, or a plugin library.
        ArgumentError: bad precision, profile, workspace, ``min_agreement``; int8 without ``calib``; an ONNX graph
            that is already quantized or fp16 (pass the fp32 export).
        ExportError: parsing, the build or the parity check failed (the message gives the figures); nothing was
            written.
        OutputPathError: ``out_path`` or its side-car cannot be written (checked before the build).
    """
    import onnx

    from edgefer.runtime.onnx_metadata import read_metadata_props
    from edgefer.runtime.tensorrt_backend import PLUGIN_LIBRARY, EngineRunner, import_tensorrt, plugin_paths

    out_path = check_output_path(out_path, "engine output")
    check_output_path(sidecar_path(out_path), "engine metadata")
    profile = make_profile(batch)
    if workspace_mib is not None and (not isinstance(workspace_mib, int) or workspace_mib < 1):
        raise ArgumentError(f"workspace_mib must be an integer >= 1 (MiB), got {workspace_mib!r}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ArgumentError(f"min_agreement must be in [0, 1], got {min_agreement}")
    trt = import_tensorrt()
    plan = decide_precision(precision, trt.__version__)
    if precision == "int8" and calib is None:
        raise ArgumentError("an int8 engine needs calib (real videos, or a CalibrationSet) for its QDQ scales")
    onnx_path = Path(onnx_path)
    metadata = ModelMetadata.from_props(read_metadata_props(onnx_path), source=str(onnx_path))
    fp32 = onnx.load(str(onnx_path))
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in fp32.graph.node) or \
            fp32.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ArgumentError(f"{onnx_path} is not an fp32 export (quantized or fp16); build engines from the fp32 "
                            "ONNX, the precision is applied here")
    if plugins is None and "edgefer" in metadata.custom_ops:
        plugins = plugin_paths(dataclasses.replace(metadata, plugin_libraries=(PLUGIN_LIBRARY,)), onnx_path, None)
    plugins = [Path(p) for p in (plugins or ())]

    from edgefer.runtime.cuda_runtime import CudaRuntime

    cuda = CudaRuntime()
    if cuda.device_count() < 1:
        raise BackendUnavailableError("no CUDA device is visible: building a TensorRT engine needs the target GPU")
    capability, device_name = cuda.device()

    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        graph, clips, check_label = _graph_for(plan, onnx_path, fp32, metadata, calib, check_clips, min_agreement,
                                               Path(tmp))
        serialized = _build(trt, plan, graph, profile, workspace_mib, plugins)
        runner = EngineRunner(serialized, str(out_path), plugins=(), trt=trt, cuda=cuda)  # plugins loaded above
        try:
            got = _run_batches(runner.run, clips, profile)
        finally:
            runner.close()
        expected = _run_batches(_ort_runner(onnx_path, metadata), clips, profile)
        top1, cosine = _compare(expected, got)
        if plan.precision == "int8":
            ok, need = top1 >= min_agreement, f"top-1 agreement >= {min_agreement:.0%}"
        else:
            ok, need = cosine >= MIN_COSINE and top1 == 1.0, f"cosine >= {MIN_COSINE} and the same top-1"
        if not ok:
            raise ExportError(f"the {plan.precision} engine disagrees with ONNX Runtime on {check_label} clips: "
                              f"logit cosine min {cosine:.5f}, top-1 agreement {top1:.1%} (needs {need}); "
                              f"{out_path} was not written")
        meta = dataclasses.replace(
            metadata, precision=plan.precision, tensorrt_version=trt.__version__, compute_capability=capability,
            device_name=device_name, plugin_libraries=tuple(p.name for p in plugins),
            batch_profile=profile.as_tuple(),
            extra={**dict(metadata.extra), "tensorrt.cosine_min": f"{cosine:.6f}",
                   "tensorrt.top1_agreement": f"{top1:.6f}", "tensorrt.check_clips": check_label,
                   "tensorrt.precision_rule": plan.reason})
        write_engine(out_path, serialized, meta)
    return EngineReport(out_path, sidecar_path(out_path), plan.precision, trt.__version__, capability, device_name,
                        cosine, top1, profile, plan, check_label, meta)


def _graph_for(plan: PrecisionPlan, onnx_path: Path, fp32, metadata: ModelMetadata, calib, check_clips,
               min_agreement: float, tmp: Path):
    """(the ONNX file to parse, the check clips, their description) for ``plan``."""
    import onnx

    clips = None if check_clips is None else np.ascontiguousarray(check_clips, np.float32)
    if plan.graph == "fp16":
        path = tmp / "fp16.onnx"
        onnx.save(fp16_graph(fp32), str(path))
    elif plan.graph == "int8-qdq":
        from .calibration_clips import CalibrationSet, calibration_clips
        from .int8 import quantize_int8, tensorrt_types

        calib = calib if isinstance(calib, CalibrationSet) else calibration_clips(calib, metadata)
        path = tmp / "int8.onnx"
        quantize_int8(onnx_path, path, metadata, calib, types=tensorrt_types(), min_agreement=min_agreement,
                      calib_source=str(getattr(calib, "split", "")))
        check_tensorrt_qdq(onnx.load(str(path)))
        clips = calib.held_out if clips is None else clips
    else:
        path = onnx_path
    if clips is None:
        item = (metadata.clip_length, metadata.channels, *metadata.frame_size)
        clips = np.random.default_rng(0).random((RANDOM_CHECK_CLIPS, *item), dtype=np.float32)
        return path, clips, f"{len(clips)} random"
    if clips.ndim != 5 or len(clips) == 0:
        raise ArgumentError(f"check_clips must be (N, T, C, H, W) with N >= 1, got shape {clips.shape}")
    return path, clips, f"{len(clips)} real"


def _build(trt, plan: PrecisionPlan, graph: Path, profile: BatchProfile, workspace_mib, plugins) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    registry = trt.get_plugin_registry()
    for library in plugins:  # before parsing: the parser maps custom nodes to registered plugin creators
        if registry.load_library(str(library)) is None:
            raise BackendUnavailableError(f"TensorRT could not load the plugin library {library}")
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed_flag else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected the graph: {errors or 'no reason given'}")
    if network.num_inputs != 1:
        raise ExportError(f"the network has {network.num_inputs} inputs; edgefer's models have one")
    tensor = network.get_input(0)
    try:
        low, opt, high = profile_shapes(list(tensor.shape), profile)
    except ArgumentError as exc:
        raise ArgumentError(f"engine profile: {exc}") from None
    config = builder.create_builder_config()
    if workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    shapes = builder.create_optimization_profile()
    shapes.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(shapes)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT's builder failed (build_serialized_network returned nothing; see its log above)")
    return bytes(serialized)


def _ort_runner(onnx_path: Path, metadata: ModelMetadata):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if "edgefer" in metadata.custom_ops:
        from edgefer import ortops

        ortops.register(options)
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda clips: session.run(None, {name: clips})[0].astype(np.float32)


def _run_batches(run, clips: np.ndarray, profile: BatchProfile) -> np.ndarray:
    """``run`` over ``clips`` in batches of the profile's opt (the last one padded up to its min)."""
    outputs = []
    for start in range(0, len(clips), profile.opt):
        chunk = clips[start:start + profile.opt]
        n = len(chunk)
        if n < profile.min:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], profile.min - n, axis=0)])
        outputs.append(run(np.ascontiguousarray(chunk))[:n])
    return np.concatenate(outputs)


def _compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, min cosine) row by row; a spotting model's (N, K, C) frames count as N * K rows."""
    from .int8 import agreement

    top1, _, cos_min = agreement(reference, candidate)
    return top1, cos_min
