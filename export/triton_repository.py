"""An edgefer artefact -> a model repository that NVIDIA Triton Inference Server serves as it is.

Layout and configuration follow Triton's documentation ("Model Repository", "Model Configuration") and its
``model_config.proto``::

    REPO/NAME/config.pbtxt
    REPO/NAME/1/model.onnx      (platform "onnxruntime_onnx")   or   REPO/NAME/1/model.plan  ("tensorrt_plan")
    REPO/NAME/labels.txt        (DFER models: the output's label_filename, Triton's classification extension)

``config.pbtxt`` (protobuf text format of ``inference.ModelConfig``) holds ``max_batch_size`` (the batch axis is
then left out of ``dims``), the input and first output with their data types and dims read from the ONNX graph,
``dynamic_batching`` (preferred batch sizes and a queue delay), one instance group (GPU for a plan) and edgefer's
metadata, every ``edgefer.*`` pair, under ``parameters`` (``ModelParameter.string_value``), so a client can read
the preprocessing and labels with Triton's model-config request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from edgefer.errors import ArgumentError, ExportError, OutputPathError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import write_atomically

#: ONNX TensorProto element types -> Triton's DataType names (model_config.proto).
TRITON_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64", 3: "TYPE_INT8", 2: "TYPE_UINT8", 6: "TYPE_INT32",
                7: "TYPE_INT64", 9: "TYPE_BOOL", 16: "TYPE_BF16"}
PLATFORMS = {"onnx": ("onnxruntime_onnx", "model.onnx"), "plan": ("tensorrt_plan", "model.plan")}


@dataclass
class RepositoryReport:
    """What :func:`write_repository` wrote.

    Attributes:
        model_dir: ``REPO/NAME``.
        config: ``REPO/NAME/config.pbtxt``.
        model_file: ``REPO/NAME/1/model.onnx`` or ``model.plan``.
        platform: ``"onnxruntime_onnx"`` or ``"tensorrt_plan"``.
        max_batch_size: the configured maximum batch.
    """

    model_dir: Path
    config: Path
    model_file: Path
    platform: str
    max_batch_size: int


def pbtxt_string(text: str) -> str:
    """``text`` as a protobuf text-format string literal (double quotes; backslash, quote and control characters
    escaped, the control characters as 3-digit octal; other characters as UTF-8)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _io_dims(value_info, what: str) -> tuple[str, str, list[int]]:
    """(name, Triton data type, dims without the batch) of an ONNX graph input or output."""
    tensor = value_info.type.tensor_type
    if tensor.elem_type not in TRITON_TYPES:
        raise ExportError(f"the graph's {what} {value_info.name} has ONNX type {tensor.elem_type}, which Triton's "
                          "configuration has no name for")
    dims = tensor.shape.dim
    rest = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
    if not dims or None in rest or any(d < 1 for d in rest):
        raise ExportError(f"the graph's {what} {value_info.name} must have a batch axis and fixed other dims for "
                          f"Triton (got {[d.dim_param or d.dim_value for d in dims]})")
    return value_info.name, TRITON_TYPES[tensor.elem_type], rest


def config_text(name: str, platform: str, metadata: ModelMetadata, inputs, output, *, max_batch_size: int,
                preferred_batch_sizes: Sequence[int], max_queue_delay_us: int, gpu: bool,
                label_file: str | None) -> str:
    """The ``config.pbtxt`` text (see the module docstring for what it holds)."""
    lines = [f"name: {pbtxt_string(name)}", f"platform: {pbtxt_string(platform)}", f"max_batch_size: {max_batch_size}"]
    in_name, in_type, in_dims = inputs
    lines += ["input [", "  {", f"    name: {pbtxt_string(in_name)}", f"    data_type: {in_type}",
              f"    dims: [ {', '.join(map(str, in_dims))} ]", "  }", "]"]
    out_name, out_type, out_dims = output
    lines += ["output [", "  {", f"    name: {pbtxt_string(out_name)}", f"    data_type: {out_type}",
              f"    dims: [ {', '.join(map(str, out_dims))} ]"]
    if label_file:
        lines.append(f"    label_filename: {pbtxt_string(label_file)}")
    lines += ["  }", "]"]
    lines += ["dynamic_batching {", f"  preferred_batch_size: [ {', '.join(map(str, preferred_batch_sizes))} ]",
              f"  max_queue_delay_microseconds: {max_queue_delay_us}", "}"]
    lines += ["instance_group [", "  {", "    count: 1", f"    kind: {'KIND_GPU' if gpu else 'KIND_AUTO'}", "  }",
              "]"]
    for key, value in metadata.to_props().items():
        lines += ["parameters {", f"  key: {pbtxt_string(key)}", f"  value: {{ string_value: {pbtxt_string(value)} }}",
                  "}"]
    return "\n".join(lines) + "\n"


def write_repository(onnx_path: str | Path, repo: str | Path, *, name: str | None = None,
                     engine: str | Path | None = None, max_batch_size: int = 8,
                     preferred_batch_sizes: Sequence[int] | None = None, max_queue_delay_us: int = 100,
                     gpu: bool | None = None) -> RepositoryReport:
    """Write ``REPO/NAME`` for Triton Inference Server from an edgefer ONNX export, or from the engine built from
    it.

    Args:
        onnx_path: the edgefer ``.onnx`` (standard ops): its metadata and its input/output names, types and dims
            describe the model; it is the served model unless ``engine`` is given.
        repo: the repository folder (created if missing; its parent must exist).
        name: the model's name in the repository (default ``metadata.model``); a folder name.
        engine: an edgefer ``.engine`` built from ``onnx_path`` (:func:`edgefer.export.tensorrt_build.build_engine`):
            served as ``model.plan`` with the engine's metadata; ``max_batch_size`` must fit its profile.
        max_batch_size: Triton's ``max_batch_size`` (for an engine, at most its profile's max).
        preferred_batch_sizes: dynamic batching's preferred sizes (default: the engine's opt, else
            ``max_batch_size``).
        max_queue_delay_us: how long Triton may hold a request to form a batch, in microseconds.
        gpu: instance kind GPU (default for an engine) or AUTO (default for ONNX: GPU where Triton has one).

    Returns:
        :class:`RepositoryReport`.

    Raises:
        ArgumentError: a bad name, batch sizes out of range, an ONNX with custom ops (Triton's ONNX Runtime backend
            would need edgefer's op library), or an engine whose profile cannot take ``max_batch_size``.
        ExportError: the graph's input or output has dynamic dims besides the batch, or a type Triton lacks.
        OutputPathError: ``repo`` cannot be created or written.
        ModelFileError, MetadataError: the ONNX or the engine is unreadable or lacks edgefer metadata.
    """
    import onnx

    from edgefer.runtime.engine_file import read_engine
    from edgefer.runtime.onnx_metadata import read_metadata_props

    onnx_path = Path(onnx_path)
    metadata = ModelMetadata.from_props(read_metadata_props(onnx_path), source=str(onnx_path))
    if metadata.custom_ops:
        raise ArgumentError(f"{onnx_path} uses custom ops {list(metadata.custom_ops)}: Triton's ONNX Runtime backend "
                            "cannot load edgefer's op library from a repository; export without --custom-ops")
    name = name or metadata.model
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ArgumentError(f"Triton model name {name!r} must be a plain folder name")
    if not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise ArgumentError(f"max_batch_size must be an integer >= 1, got {max_batch_size!r}")
    if max_queue_delay_us < 0:
        raise ArgumentError(f"max_queue_delay_us must be >= 0, got {max_queue_delay_us}")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    if len(graph.input) != 1 or not graph.output:
        raise ExportError(f"{onnx_path}: edgefer models have one input and an output")
    inputs, output = _io_dims(graph.input[0], "input"), _io_dims(graph.output[0], "output")
    payload_meta, kind = metadata, "onnx"
    if engine is not None:
        loaded = read_engine(engine)
        payload_meta, kind = loaded.metadata, "plan"
        if payload_meta.model != metadata.model or payload_meta.weights_sha256 != metadata.weights_sha256:
            raise ArgumentError(f"{engine} was not built from {onnx_path} (model or weights differ)")
        profile = payload_meta.batch_profile
        if profile and not profile[0] <= max_batch_size <= profile[2]:
            raise ArgumentError(f"max_batch_size {max_batch_size} is outside {engine}'s batch profile "
                                f"{profile[0]}:{profile[1]}:{profile[2]}")
        if profile[:1] and profile[0] > 1:
            raise ArgumentError(f"{engine}'s profile starts at batch {profile[0]}; Triton sends batches from 1: "
                                "rebuild it with min batch 1")
    preferred = list(preferred_batch_sizes or ([payload_meta.batch_profile[1]] if payload_meta.batch_profile
                                               else [max_batch_size]))
    if not all(isinstance(b, int) and 1 <= b <= max_batch_size for b in preferred):
        raise ArgumentError(f"preferred batch sizes {preferred} must lie in [1, max_batch_size={max_batch_size}]")
    platform, filename = PLATFORMS[kind]
    repo = Path(repo)
    model_dir, version_dir = repo / name, repo / name / "1"
    try:
        version_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the Triton repository folder {version_dir}: {exc.strerror or exc}") \
            from None
    label_file = None
    if metadata.task == "dfer" and len(output[2]) == 1:
        label_file = "labels.txt"
        write_atomically(model_dir / label_file, "\n".join(metadata.labels) + "\n", "Triton labels")
    source = Path(engine) if engine is not None else onnx_path
    if engine is not None:
        data = loaded.plan
    else:
        data = source.read_bytes()
    model_file = write_atomically(version_dir / filename, data, "Triton model file")
    text = config_text(name, platform, payload_meta, inputs, output, max_batch_size=max_batch_size,
                       preferred_batch_sizes=preferred, max_queue_delay_us=max_queue_delay_us,
                       gpu=(kind == "plan") if gpu is None else gpu, label_file=label_file)
    config = write_atomically(model_dir / "config.pbtxt", text, "Triton config.pbtxt")
    return RepositoryReport(model_dir, config, model_file, platform, max_batch_size)
