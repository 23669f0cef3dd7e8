"""An ONNX file's ``metadata_props``, read without onnx, protobuf or an ONNX Runtime session (numpy-free too).

The runtime must know a model's metadata before it creates the session: a graph with edgefer custom ops only
loads once their library is registered, and the metadata (``custom_ops``) is what says so. ONNX Runtime's
Python API gives the metadata only through an ``InferenceSession`` (``get_modelmeta()``), and the ``onnx``
package is not a runtime dependency (it would also parse the whole graph, weights included). So this reads the
one field it needs straight from the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/):

- a message is a sequence of fields, each a varint tag ``field_number << 3 | wire_type`` and its payload: wire
  type 0 a varint, 1 eight bytes, 2 a varint length and that many bytes, 5 four bytes (3 and 4, groups, are not
  used by ONNX and are refused);
- ``ModelProto.metadata_props`` is field 14, repeated ``StringStringEntryProto`` messages whose ``key`` is field 1
  and ``value`` field 2, both UTF-8 strings (``onnx/onnx.proto``).

Only the top level of the ``ModelProto`` is walked: the graph (field 7, the bulk of the file) and every other
field are skipped with a seek, never read. The walk is bounded, so a hostile file gives a one-line
:class:`~edgefer.errors.ModelFileError` in milliseconds, never a crash or a hang: varints of at most 10 bytes,
every length checked against the bytes that remain, at most :data:`MAX_FIELDS` fields a message and at most
:data:`MAX_METADATA_BYTES` of metadata entries.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Iterator

from ..errors import MetadataError, ModelFileError

#: Field numbers (onnx.proto): ModelProto.metadata_props, StringStringEntryProto.key / .value.
METADATA_PROPS, KEY, VALUE = 14, 1, 2
#: Fields a message may have before the file is refused (a real ModelProto has tens at its top level).
MAX_FIELDS = 100_000
#: Total bytes of metadata entries read before the file is refused (edgefer writes a few kilobytes).
MAX_METADATA_BYTES = 16 << 20

_FIXED_SIZES = {1: 8, 5: 4}


class _Corrupt(Exception):
    """The bytes are not a protobuf message; the text says where and why."""


def read_metadata_props(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX file ``path``, as ``{key: value}``.

    Returns:
        Every entry, in file order (empty when the file has none).

    Raises:
        ModelFileError: the file cannot be read, or is not a protobuf message (truncated or corrupt: a varint or a
            field running past the end, an unknown wire type, too many fields or too much metadata, a key or
            value that is not UTF-8); the message names the file and the byte offset.
        MetadataError: a metadata key appears twice.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            return _read(stream, size, str(path))
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except _Corrupt as exc:
        raise ModelFileError(f"{path} is not a readable ONNX file (truncated or corrupt): {exc}") from None


def _read(stream: BinaryIO, size: int, source: str) -> dict[str, str]:
    props: dict[str, str] = {}
    budget = MAX_METADATA_BYTES
    for number, wire, length in _fields(stream, size, "the model"):
        if number != METADATA_PROPS:
            continue
        if wire != 2:
            raise _Corrupt(f"field 14 (metadata_props) has wire type {wire}, not 2 (length-delimited)")
        budget -= length
        if budget < 0:
            raise _Corrupt(f"more than {MAX_METADATA_BYTES >> 20} MiB of metadata_props")
        key, value = _entry(stream.read(length), stream.tell() - length)
        if key in props:
            raise MetadataError(f"{source}: metadata key {key!r} appears twice")
        props[key] = value
    return props


def _entry(payload: bytes, offset: int) -> tuple[str, str]:
    """Decode one StringStringEntryProto found at byte ``offset`` of the file (unknown fields skipped; a missing
    key or value is "")."""
    strings = {KEY: b"", VALUE: b""}
    stream = io.BytesIO(payload)
    for number, wire, length in _fields(stream, len(payload), "a metadata entry", offset):
        if number in strings:
            if wire != 2:
                raise _Corrupt(f"a metadata entry's field {number} has wire type {wire}, not 2 (a string)")
            strings[number] = stream.read(length)
    try:
        return strings[KEY].decode("utf-8"), strings[VALUE].decode("utf-8")
    except UnicodeDecodeError:
        raise _Corrupt(f"a metadata entry is not UTF-8: {payload[:40]!r}") from None


def _fields(stream: BinaryIO, end: int, what: str, offset: int = 0) -> Iterator[tuple[int, int, int]]:
    """Walk the message from the stream's position to ``end``: yield ``(field number, wire type, length)``.

    For wire type 2 the stream stands at the payload's first byte when the field is yielded (the caller may read
    ``length`` bytes); the walk then continues after the payload whatever the caller read. Other wire types
    yield length 0, their payload already consumed. Messages give byte positions as ``offset`` + the stream's.
    """
    for _ in range(MAX_FIELDS):
        position = stream.tell()
        if position >= end:
            return
        tag = _varint(stream, end, f"a field tag of {what}", offset)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Corrupt(f"byte {offset + position}: field number 0 in {what}")
        if wire == 0:
            _varint(stream, end, f"field {number} of {what}", offset)
            yield number, wire, 0
            continue
        if wire == 2:
            length = _varint(stream, end, f"the length of field {number} of {what}", offset)
        elif wire in _FIXED_SIZES:
            length = _FIXED_SIZES[wire]
        else:
            raise _Corrupt(f"byte {offset + position}: field {number} of {what} has wire type {wire}, which ONNX "
                           "never uses")
        start = stream.tell()
        if length > end - start:
            raise _Corrupt(f"field {number} of {what} needs {length} bytes at byte {offset + start}, but only "
                           f"{end - start} remain")
        yield number, wire, (length if wire == 2 else 0)
        stream.seek(start + length)
    if stream.tell() < end:
        raise _Corrupt(f"{what} has more than {MAX_FIELDS} fields")


def _varint(stream: BinaryIO, end: int, what: str, offset: int) -> int:
    """A base-128 varint of at most 10 bytes (64 bits), not reaching past ``end``."""
    start = stream.tell()
    value = 0
    for i in range(10):
        byte = stream.read(1) if start + i < end else b""
        if not byte:
            raise _Corrupt(f"the data ends inside {what} (byte {offset + start + i})")
        value |= (byte[0] & 0x7F) << (7 * i)
        if byte[0] < 0x80:
            if value >> 64:
                break
            return value
    raise _Corrupt(f"byte {offset + start}: {what} is a varint longer than 64 bits")
