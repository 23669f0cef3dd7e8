"""The metadata every edgefer artefact carries, and its (de)serialisation.

An exported model must be self-describing: the runtime reads its preprocessing (frame size, colour order,
scaling), its clip length, its sampling protocol and its labels from here, never from constants. In ONNX the
fields live in ``ModelProto.metadata_props`` as string pairs under the ``edgefer.`` prefix; lists and dicts
are JSON. A TensorRT engine carries the same pairs in a JSON side-car file, and a ``.pt`` checkpoint in its
``"metadata"`` entry.

A TensorRT engine adds what ties it to its build (:data:`ENGINE_FIELDS`): the precision, the TensorRT version,
the GPU's compute capability and name, the plugin libraries it needs. They are written only when set, so an ONNX
file's metadata is unchanged by them.

Raises :class:`edgefer.errors.MetadataError` when a required field is missing or malformed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Mapping

from .errors import MetadataError

PREFIX = "edgefer."
FORMAT_VERSION = 1

#: Tasks a model can solve: clip-level DFER, or frame-wise expression spotting.
TASKS = ("dfer", "spotting")
#: Colour orders of a model's input: the runtime converts OpenCV's BGR frames into this.
COLOUR_ORDERS = ("RGB", "BGR", "GRAY")
#: Input layouts: ``BTCHW`` is a clip batch (B, T, C, H, W); ``NCHW`` a per-frame model fed (N, C, H, W).
INPUT_LAYOUTS = ("BTCHW", "NCHW")
#: What the graph's first output holds.
OUTPUT_KINDS = ("logits", "probabilities")
#: Precisions an artefact's arithmetic can be built in (``precision``; empty: as exported, fp32 ONNX).
PRECISIONS = ("fp32", "fp16", "int8")
#: The fields that only an engine sets; :meth:`ModelMetadata.to_props` leaves them out while they are empty.
ENGINE_FIELDS = ("precision", "tensorrt_version", "compute_capability", "device_name", "plugin_libraries",
                 "batch_profile")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to feed a model and read its output.

    Attributes:
        model: registry name, e.g. ``"msstnet"``.
        task: one of :data:`TASKS`.
        labels: class names, index = output column.
        clip_length: frames per clip T (1 for a per-frame model).
        frame_size: (height, width) in pixels of each frame fed to the model.
        colour_order: one of :data:`COLOUR_ORDERS`.
        mean, std: per-channel scaling applied as ``(pixel / 255 - mean) / std`` (length 1 or channels).
        sampling: name of the frame sampling protocol for a window, e.g. ``"dfew-test"`` (see
            :mod:`edgefer.sampling`).
        input_layout: one of :data:`INPUT_LAYOUTS`.
        output: one of :data:`OUTPUT_KINDS`.
        face_margin: fraction of the face box's size added on each side before cropping.
        face_align: whether the face crops are rotated so the eye line is level before the square crop (eye
            keypoints of a BlazeFace detector; :func:`edgefer.video.crop_face`). Training and deployment must
            crop alike, so ``predict``, ``spot`` (and ``prepare``, ``stream``) read it from here.
        trained: whether the weights were trained (untrained weights warn once at load).
        weights_sha256: hex digest of the weights the artefact was built from.
        edgefer_version: the edgefer version that wrote the artefact.
        custom_ops: ONNX custom-op domains the graph needs (e.g. ``("edgefer",)``); empty for standard ops.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` for an engine (:data:`PRECISIONS`); empty otherwise.
        tensorrt_version: the TensorRT version an engine was built with (``tensorrt.__version__``, e.g.
            ``"10.3.0.30"``); an engine only deserializes on the same version.
        compute_capability: the compute capability ``"MAJOR.MINOR"`` of the GPU an engine was built on (``"8.7"``
            for Jetson Orin); an engine only runs on that SM.
        device_name: that GPU's name (``cudaGetDeviceProperties().name``), e.g. ``"Orin"``.
        plugin_libraries: file names of the TensorRT plugin libraries an engine needs loaded before it is
            deserialized (e.g. ``("libedgefer_tensorrt_plugins.so",)``); empty for none.
        batch_profile: an engine's optimization profile on the batch axis, ``(min, opt, max)``; empty otherwise.
        extra: any further string pairs (source, licence, config JSON ...), kept verbatim.
    """

    model: str
    task: str
    labels: tuple[str, ...]
    clip_length: int
    frame_size: tuple[int, int]
    colour_order: str = "RGB"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    sampling: str = "dfew-test"
    input_layout: str = "BTCHW"
    output: str = "logits"
    face_margin: float = 0.2
    face_align: bool = False
    trained: bool = False
    weights_sha256: str = ""
    edgefer_version: str = ""
    custom_ops: tuple[str, ...] = ()
    precision: str = ""
    tensorrt_version: str = ""
    compute_capability: str = ""
    device_name: str = ""
    plugin_libraries: tuple[str, ...] = ()
    batch_profile: tuple[int, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.task in TASKS, f"task {self.task!r} is not one of {TASKS}")
        _check(self.colour_order in COLOUR_ORDERS, f"colour_order {self.colour_order!r} is not one of {COLOUR_ORDERS}")
        _check(self.input_layout in INPUT_LAYOUTS, f"input_layout {self.input_layout!r} is not one of {INPUT_LAYOUTS}")
        _check(self.output in OUTPUT_KINDS, f"output {self.output!r} is not one of {OUTPUT_KINDS}")
        _check(len(self.labels) >= 1, "labels is empty")
        _check(self.clip_length >= 1, f"clip_length must be >= 1, got {self.clip_length}")
        _check(len(self.frame_size) == 2 and min(self.frame_size) >= 1, f"frame_size {self.frame_size} is not (H, W)")
        _check(len(self.mean) == len(self.std) and all(s > 0 for s in self.std), "mean/std lengths differ or std <= 0")
        _check(self.precision in ("", *PRECISIONS), f"precision {self.precision!r} is not one of {PRECISIONS}")
        _check(not self.batch_profile or (len(self.batch_profile) == 3 and 1 <= self.batch_profile[0]
                                          <= self.batch_profile[1] <= self.batch_profile[2]),
               f"batch_profile {self.batch_profile} is not (min, opt, max) with 1 <= min <= opt <= max")

    @property
    def channels(self) -> int:
        """Number of colour channels the model reads (1 for GRAY, else 3)."""
        return 1 if self.colour_order == "GRAY" else 3

    def to_props(self) -> dict[str, str]:
        """Serialise to ``{"edgefer.<field>": str}`` pairs for ONNX ``metadata_props``."""
        props = {PREFIX + "format_version": str(FORMAT_VERSION)}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in ENGINE_FIELDS and not value:
                continue
            if isinstance(value, str):
                props[PREFIX + f.name] = value
            elif isinstance(value, bool):
                props[PREFIX + f.name] = "true" if value else "false"
            else:
                props[PREFIX + f.name] = json.dumps(list(value) if isinstance(value, tuple) else value)
        for key, value in self.extra.items():
            props[PREFIX + key] = str(value)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], *, source: str = "model") -> "ModelMetadata":
        """Parse ``metadata_props`` pairs; raise :class:`MetadataError` naming ``source`` when they are unusable."""
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if "detector.model" in ours and "model" not in ours:
            raise MetadataError(f"{source} is a face detector ({ours['detector.model']}), not an expression model: "
                                f"use it with --detector or edgefer.video.BlazeFaceDetector")
        if not ours:
            raise MetadataError(
                f"{source} has no edgefer metadata (no '{PREFIX}*' keys); export it with `edgefer export`"
            )
        version = ours.pop("format_version", None)
        if version != str(FORMAT_VERSION):
            raise MetadataError(f"{source} has edgefer metadata format {version!r}; this edgefer reads {FORMAT_VERSION}")
        kwargs: dict[str, object] = {}
        extra: dict[str, str] = {}
        types = {f.name: f for f in dataclasses.fields(cls)}
        for key, raw in ours.items():
            if key not in types or key == "extra":
                extra[key] = raw
                continue
            kwargs[key] = _parse_field(key, raw, types[key].default, source)
        for required in ("model", "task", "labels", "clip_length", "frame_size"):
            if required not in kwargs:
                raise MetadataError(f"{source} metadata lacks the required field '{PREFIX}{required}'")
        try:
            return cls(**kwargs, extra=extra)  # type: ignore[arg-type]
        except MetadataError as exc:
            raise MetadataError(f"{source}: {exc}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MetadataError(f"unexpected metadata: {message}")


def _parse_field(key: str, raw: str, default: object, source: str) -> object:
    string_fields = {"model", "task", "colour_order", "sampling", "input_layout", "output", "weights_sha256",
                     "edgefer_version", "precision", "tensorrt_version", "compute_capability", "device_name"}
    if key in string_fields:
        return raw
    if key in ("trained", "face_align"):
        if raw not in ("true", "false"):
            raise MetadataError(f"{source}: metadata '{PREFIX}{key}' must be 'true' or 'false', got {raw!r}")
        return raw == "true"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise MetadataError(f"{source}: metadata '{PREFIX}{key}' is not valid JSON: {raw[:60]!r}") from None
    if key == "clip_length":
        if not isinstance(value, int):
            raise MetadataError(f"{source}: metadata '{PREFIX}clip_length' must be an integer, got {raw!r}")
        return value
    if key == "face_margin":
        if not isinstance(value, (int, float)):
            raise MetadataError(f"{source}: metadata '{PREFIX}face_margin' must be a number, got {raw!r}")
        return float(value)
    if not isinstance(value, list):
        raise MetadataError(f"{source}: metadata '{PREFIX}{key}' must be a JSON list, got {raw!r}")
    if key in ("mean", "std"):
        return tuple(float(v) for v in value)
    if key == "frame_size":
        return tuple(int(v) for v in value)
    if key == "batch_profile":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise MetadataError(f"{source}: metadata '{PREFIX}{key}' must be a list of integers, got {raw[:60]!r}")
        return tuple(value)
    return tuple(str(v) for v in value)
