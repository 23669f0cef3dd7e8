"""A TensorRT engine on disk: a plain TensorRT plan, and edgefer's metadata beside it in ``NAME.engine.json``.

The plan stays exactly what ``IBuilder.build_serialized_network`` returned, so ``trtexec --loadEngine``,
DeepStream and Triton Inference Server read the file as it is. (Ultralytics prepends a 4-byte length and a JSON
header to its ``.engine`` files, which breaks those tools: ultralytics issues #19423 and #22910.) The metadata,
the same ``edgefer.*`` string pairs an ONNX file carries (:meth:`edgefer.metadata.ModelMetadata.to_props`), goes
to the side-car file ``NAME.engine.json``::

    {"format": "edgefer-engine", "format_version": 1, "plan_bytes": N, "plan_sha256": "...",
     "props": {"edgefer.model": "msstnet", ...}}

:func:`read_engine` also reads a plan with an Ultralytics-style header (a little-endian uint32 length L, then L
bytes of UTF-8 JSON, then the plan), taking the metadata from that JSON when no side-car exists.

Every read is bounded and every length checked, so a hostile or broken file gives a one-line
:class:`~edgefer.errors.ModelFileError` (or :class:`~edgefer.errors.MetadataError`), never a crash or a huge
allocation: the side-car and the header are at most :data:`MAX_JSON_BYTES`, the header's length must fit in the
file, and the plan must start with TensorRT's plan magic ``b"ftrt"`` (:data:`PLAN_MAGIC`, the first four bytes
of every serialized engine). Torch-free and TensorRT-free: nothing here needs TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MetadataError, ModelFileError
from ..metadata import ModelMetadata
from ..outputs import check_output_path, write_atomically

#: The first four bytes of a serialized TensorRT engine (a plan).
PLAN_MAGIC = b"ftrt"
#: The side-car's name: the engine's file name plus this suffix (``msstnet.engine`` -> ``msstnet.engine.json``).
SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT, SIDECAR_VERSION = "edgefer-engine", 1
#: Largest side-car or header JSON read (edgefer writes a few kilobytes).
MAX_JSON_BYTES = 1 << 20
#: Largest plan read (TensorRT plans of these models are tens of megabytes).
MAX_PLAN_BYTES = 8 << 30


@dataclass(frozen=True)
class EngineFile:
    """An engine as read from disk.

    Attributes:
        plan: the TensorRT plan's bytes (without any header).
        metadata: the edgefer metadata.
        metadata_source: where the metadata came from: the side-car's path, or ``"header"``.
    """

    plan: bytes
    metadata: ModelMetadata
    metadata_source: str


def sidecar_path(engine: str | os.PathLike[str]) -> Path:
    """``NAME.engine`` -> ``NAME.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def sidecar_json(plan: bytes, metadata: ModelMetadata) -> str:
    """The side-car's text for ``plan`` and ``metadata`` (sorted keys, indented; records the plan's size and
    SHA-256 so that a plan and a side-car that do not belong together are refused)."""
    return json.dumps({"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "plan_bytes": len(plan),
                       "plan_sha256": hashlib.sha256(plan).hexdigest(), "props": metadata.to_props()},
                      indent=1, sort_keys=True) + "\n"


def write_engine(path: str | os.PathLike[str], plan: bytes, metadata: ModelMetadata) -> Path:
    """Write the plain ``plan`` to ``path`` and the metadata to ``path.json``, each atomically.

    The side-car is written first and records the plan's SHA-256, so a reader never pairs a new plan with an old
    side-car unnoticed (:func:`read_engine` checks the digest).

    Args:
        path: the engine file (``NAME.engine``); its folder must exist.
        plan: the serialized engine, as ``build_serialized_network`` returned it (starts with :data:`PLAN_MAGIC`).
        metadata: the engine's metadata (with its ``precision``, ``tensorrt_version``... set).

    Returns:
        ``path``.

    Raises:
        ModelFileError: ``plan`` is not a TensorRT plan (no magic).
        OutputPathError: either file cannot be written.
    """
    plan = bytes(plan)
    if not plan.startswith(PLAN_MAGIC):
        raise ModelFileError(f"refusing to write {path}: the bytes are not a TensorRT plan (no {PLAN_MAGIC!r} magic)")
    check_output_path(path, "engine output")
    write_atomically(sidecar_path(path), sidecar_json(plan, metadata), "engine metadata")
    write_atomically(path, plan, "engine output")
    return Path(path)


def header_bytes(props: dict) -> bytes:
    """An Ultralytics-style header for a plan: little-endian uint32 length, then that many bytes of JSON."""
    body = json.dumps(props, sort_keys=True).encode()
    return len(body).to_bytes(4, "little") + body


def read_engine(path: str | os.PathLike[str]) -> EngineFile:
    """Read an engine and its metadata: a plain plan with ``NAME.engine.json``, or a plan with a length + JSON
    header (Ultralytics' layout), whose JSON then holds the ``edgefer.*`` pairs unless a side-car exists.

    Raises:
        ModelFileError: the file is missing, empty, not a TensorRT plan (no ``ftrt`` magic, with or without a
            header), its header's length runs past the file or exceeds :data:`MAX_JSON_BYTES`, its header or
            side-car is not JSON (truncated), or the side-car records another plan (size or SHA-256).
        MetadataError: neither a side-car nor the header holds edgefer metadata (for example an Ultralytics
            engine), or the metadata is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"engine file {path} does not exist" if not path.exists()
                             else f"engine path {path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"engine file {path} is empty")
    if size > MAX_PLAN_BYTES:
        raise ModelFileError(f"engine file {path} is {size} bytes, more than the {MAX_PLAN_BYTES} this edgefer reads")
    with open(path, "rb") as handle:
        head = handle.read(4)
        header = None
        if head == PLAN_MAGIC:
            handle.seek(0)
        else:
            header = _read_header(handle, head, size, path)
        offset = handle.tell()
        plan = handle.read(size - offset)
    if len(plan) < len(PLAN_MAGIC) + 1 or not plan.startswith(PLAN_MAGIC):
        where = "after its JSON header" if header is not None else "at its start"
        raise ModelFileError(f"{path} is not a TensorRT plan: no {PLAN_MAGIC.decode()!r} magic {where} (a truncated "
                             "or foreign file; rebuild it with `edgefer export --format engine`)")
    side = sidecar_path(path)
    if side.is_file():
        return EngineFile(plan, _read_sidecar(side, plan), str(side))
    if header is not None:
        return EngineFile(plan, _header_metadata(header, path), "header")
    raise MetadataError(f"{path} has no edgefer metadata: its side-car {side.name} is missing (edgefer writes it "
                        "beside the plan; copy both files together)")


def _read_header(handle, head: bytes, size: int, path: Path) -> dict:
    if len(head) < 4:
        raise ModelFileError(f"{path} is not a TensorRT plan: {size} bytes, truncated")
    length = int.from_bytes(head, "little")
    if length == 0 or length > MAX_JSON_BYTES or 4 + length >= size:
        raise ModelFileError(f"{path} is not a TensorRT plan (no {PLAN_MAGIC.decode()!r} magic) nor a plan with a "
                             f"length-prefixed JSON header (its first 4 bytes give a length of {length} bytes, "
                             f"{'beyond' if 4 + length >= size else 'above'} the "
                             f"{'file' if 4 + length >= size else f'{MAX_JSON_BYTES}-byte limit'})")
    raw = handle.read(length)
    return _parse_json(raw, f"{path}'s JSON header")


def _parse_json(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{what} is not valid JSON (truncated or corrupt: {exc})") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{what} is JSON but not an object")
    return value


def _string_props(props: object, what: str) -> dict[str, str]:
    if not isinstance(props, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
        raise MetadataError(f"{what}: the edgefer metadata must map strings to strings")
    return props


def _header_metadata(header: dict, path: Path) -> ModelMetadata:
    ours = {k: v for k, v in header.items() if isinstance(k, str) and k.startswith("edgefer.")}
    if not ours:
        keys = ", ".join(sorted(str(k) for k in header)[:6])
        raise MetadataError(f"{path} has a JSON header without edgefer metadata (keys: {keys}; an Ultralytics "
                            f"engine?) and no side-car {sidecar_path(path).name}: edgefer loads engines it exported")
    return ModelMetadata.from_props(_string_props(ours, str(path)), source=str(path))


def _read_sidecar(side: Path, plan: bytes) -> ModelMetadata:
    size = side.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ModelFileError(f"{side} is {size} bytes, more than the {MAX_JSON_BYTES} an engine side-car may have")
    with open(side, "rb") as handle:
        doc = _parse_json(handle.read(MAX_JSON_BYTES + 1), str(side))
    if doc.get("format") != SIDECAR_FORMAT or doc.get("format_version") != SIDECAR_VERSION:
        raise MetadataError(f"{side} is not an edgefer engine side-car (format {doc.get('format')!r} version "
                            f"{doc.get('format_version')!r}; this edgefer reads {SIDECAR_FORMAT!r} "
                            f"{SIDECAR_VERSION})")
    if doc.get("plan_bytes") != len(plan) or doc.get("plan_sha256") != hashlib.sha256(plan).hexdigest():
        raise ModelFileError(f"{side} describes another plan (it records {doc.get('plan_bytes')} bytes, the engine "
                             f"has {len(plan)}, or their SHA-256 differ): the engine and its side-car do not "
                             "belong together; export them again")
    return ModelMetadata.from_props(_string_props(doc.get("props"), str(side)), source=str(side))
