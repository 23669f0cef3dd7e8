"""The protobuf-free reader of an ONNX file's metadata_props, against onnx's own parser and on hostile files.

A model file is input: whatever its bytes, the reader returns the entries or raises one-line ModelFileError /
MetadataError, in bounded time (no crash, no hang, no other exception).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgefer  # noqa: E402
from edgefer.errors import MetadataError, ModelFileError  # noqa: E402
from edgefer.runtime.onnx_metadata import MAX_FIELDS, read_metadata_props  # noqa: E402


def _model_bytes(props: dict[str, str], weight_floats: int = 16) -> bytes:
    weight = np.arange(weight_floats, dtype=np.float32)
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["out"])], "g", [],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [weight_floats])],
                              initializer=[numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="test")
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _entry(key: bytes, value: bytes) -> bytes:
    body = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(value)) + value
    return b"\x72" + _varint(len(body)) + body  # field 14, wire type 2


def _read(tmp_path, data: bytes, name: str = "m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return read_metadata_props(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(props=st.dictionaries(st.text(min_size=0, max_size=30), st.text(max_size=300), max_size=8))
def test_agrees_with_onnx(tmp_path, props):
    data = _model_bytes(props)
    parsed = onnx.load_from_string(data)
    assert _read(tmp_path, data) == {p.key: p.value for p in parsed.metadata_props} == props


def test_skips_a_large_graph_without_reading_it(tmp_path):
    props = {"edgefer.model": "big", "edgefer.labels": '["a", "b"]'}
    data = _model_bytes(props, weight_floats=4 << 20)  # a 16 MiB initializer inside the graph
    start = time.perf_counter()
    assert _read(tmp_path, data) == props
    assert time.perf_counter() - start < 1.0


def test_unknown_fields_inside_an_entry_are_skipped_and_a_missing_value_is_empty(tmp_path):
    body = b"\x0a\x01k" + b"\x18\x05" + b"\x25abcd" + b"\x12\x01v"  # key, varint field 3, fixed32 field 4, value
    data = b"\x08\x08" + b"\x72" + _varint(len(body)) + body + b"\x72\x03\x0a\x01z"
    assert _read(tmp_path, data) == {"k": "v", "z": ""}


@pytest.mark.parametrize("data,needle", [
    (b"\x08" + b"\xff" * 11, "varint longer than 64 bits"),
    (b"\x08\xff\xff", "the data ends inside field 1 of the model (byte 3)"),
    (b"\x3a" + _varint(1 << 62), "needs 4611686018427387904 bytes at byte 10, but only 0 remain"),
    (b"\x3a\x10" + b"\x00" * 4, "needs 16 bytes at byte 2, but only 4 remain"),
    (b"\x0b\x00", "wire type 3"),
    (b"\x74", "wire type 4"),
    (b"\x00\x00", "field number 0"),
    (b"\x70\x01", "field 14 (metadata_props) has wire type 0"),
    (_entry(b"k", b"\xff\xfe"), "not UTF-8"),
    (b"\x72\x02\x00\x00", "byte 2: field number 0 in a metadata entry"),
    (b"\x72\x03\x08\x01\x00", "a metadata entry's field 1 has wire type 0, not 2"),
    (b"\x08\x01\x72\x04\x0a\x05ab", "field 1 of a metadata entry needs 5 bytes at byte 6, but only 2 remain"),
    (b"this is not a video\n" * 10, "wire type 4"),
])
def test_hostile_bytes_give_a_one_line_model_file_error(tmp_path, data, needle):
    with pytest.raises(ModelFileError) as info:
        _read(tmp_path, data, "hostile.onnx")
    text = str(info.value)
    assert "\n" not in text and "hostile.onnx is not a readable ONNX file (truncated or corrupt)" in text
    assert needle in text, text


def test_limits_bound_the_work(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=f"more than {MAX_FIELDS} fields"):
        _read(tmp_path, b"\x08\x00" * (MAX_FIELDS + 1))
    with pytest.raises(ModelFileError, match="more than 16 MiB of metadata_props"):
        _read(tmp_path, _entry(b"edgefer.extra", b"x" * (17 << 20)))
    assert time.perf_counter() - start < 10.0
    assert _read(tmp_path, b"\x08\x00" * MAX_FIELDS) == {}  # exactly the limit is fine


def test_a_duplicate_key_is_a_metadata_error(tmp_path):
    with pytest.raises(MetadataError, match="metadata key 'edgefer.task' appears twice"):
        _read(tmp_path, _entry(b"edgefer.task", b"dfer") + _entry(b"edgefer.task", b"spotting"))


def test_every_truncation_of_a_model_is_an_error_or_a_prefix(tmp_path):
    """Cut a small model at every byte: the reader either raises ModelFileError or (cut at a field boundary)
    returns the entries the prefix holds."""
    props = {"edgefer.a": "1", "edgefer.b": "two"}
    data = _model_bytes(props)
    path = tmp_path / "cut.onnx"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        try:
            got = read_metadata_props(path)
        except ModelFileError as exc:
            assert "truncated or corrupt" in str(exc) and "\n" not in str(exc)
        else:
            assert got == dict(list(props.items())[:len(got)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), position=st.integers(0, 10_000), flips=st.binary(min_size=1, max_size=8))
def test_random_and_mutated_bytes_never_escape(tmp_path, data, position, flips):
    base = _model_bytes({"edgefer.model": "x", "edgefer.task": "dfer"})
    mutated = bytearray(base)
    at = position % len(mutated)
    mutated[at:at + len(flips)] = flips
    for blob in (data, bytes(mutated)):
        try:
            _read(tmp_path, blob)
        except ModelFileError as exc:  # MetadataError included
            assert "\n" not in str(exc)


def test_load_of_a_hostile_file_is_one_line(tmp_path):
    path = tmp_path / "evil.onnx"
    path.write_bytes(b"\x3a" + _varint(1 << 40) + b"\x00" * 100)
    with pytest.raises(ModelFileError, match=r"^.*evil.onnx is not a readable ONNX file \(truncated or corrupt\): "
                                             r"field 7 of the model needs \d+ bytes at byte 7, but only 100 remain$"):
        edgefer.load(path)
