"""The engine file (issue 12): a plain plan + NAME.engine.json, the Ultralytics-style header, hostile files.

No TensorRT is needed: these check the bytes around the plan, never the plan itself (its first four bytes are
TensorRT's ``ftrt`` magic; the rest is opaque here)."""

import json
import os

import pytest

import edgefer
from edgefer.errors import MetadataError, ModelFileError, OutputPathError
from edgefer.metadata import ModelMetadata
from edgefer.runtime.engine_file import (MAX_JSON_BYTES, header_bytes, read_engine, sidecar_path, write_engine)

PLAN = b"ftrt" + os.urandom(256)


def _metadata(**engine):
    base = ModelMetadata(model="msstnet", task="dfer", labels=("Happy", "Sad"), clip_length=16, frame_size=(112, 112),
                         trained=True, weights_sha256="ab" * 32)
    fields = dict(precision="fp16", tensorrt_version="10.3.0.30", compute_capability="8.7", device_name="Orin",
                  plugin_libraries=("libedgefer_tensorrt_plugins.so",), batch_profile=(1, 4, 8))
    fields.update(engine)
    return ModelMetadata(**{**base.__dict__, **fields})


def test_sidecar_round_trip_keeps_the_plan_plain(tmp_path):
    meta = _metadata()
    path = write_engine(tmp_path / "m.engine", PLAN, meta)
    assert path.read_bytes() == PLAN  # nothing prepended: trtexec, DeepStream and Triton read it as it is
    side = sidecar_path(path)
    assert side.name == "m.engine.json"
    doc = json.loads(side.read_text())
    assert doc["plan_bytes"] == len(PLAN) and doc["props"]["edgefer.precision"] == "fp16"
    loaded = read_engine(path)
    assert loaded.plan == PLAN and loaded.metadata == meta and loaded.metadata_source == str(side)
    assert loaded.metadata.batch_profile == (1, 4, 8) and loaded.metadata.compute_capability == "8.7"


def test_engine_fields_stay_out_of_an_onnx_metadata():
    props = _metadata(precision="", tensorrt_version="", compute_capability="", device_name="",
                      plugin_libraries=(), batch_profile=()).to_props()
    assert not any(k.split(".", 1)[1] in ("precision", "tensorrt_version", "batch_profile") for k in props)


def test_ultralytics_style_header_is_read(tmp_path):
    meta = _metadata()
    path = tmp_path / "h.engine"
    path.write_bytes(header_bytes(meta.to_props()) + PLAN)
    loaded = read_engine(path)
    assert loaded.plan == PLAN and loaded.metadata == meta and loaded.metadata_source == "header"


def test_a_header_without_edgefer_metadata_is_refused(tmp_path):
    path = tmp_path / "yolo.engine"
    path.write_bytes(header_bytes({"stride": 32, "task": "detect", "names": {"0": "person"}}) + PLAN)
    with pytest.raises(MetadataError, match="Ultralytics"):
        read_engine(path)


@pytest.mark.parametrize("make,needle", [
    (lambda: b"", "empty"),
    (lambda: b"ft", "truncated"),
    (lambda: (2**31).to_bytes(4, "little") + b"{}" + PLAN, "length"),  # a huge header length
    (lambda: (500).to_bytes(4, "little") + b'{"edgefer.model": "m"' + PLAN[:20], "length"),  # runs past the file
    (lambda: (40).to_bytes(4, "little") + b'{"edgefer.model": "msstnet", "edgefer.ta' + PLAN, "not valid JSON"),
    (lambda: header_bytes({"edgefer.model": "m"}) + b"\x08\x01ONNX" + PLAN[4:], "no 'ftrt' magic after"),
    (lambda: b"\x08\x07\x12\x07pytorch" + os.urandom(64), "not a TensorRT plan"),  # an ONNX renamed .engine
    (lambda: b"ftrt", "not a TensorRT plan"),  # the magic alone: truncated
])
def test_truncated_or_foreign_files_give_one_line(tmp_path, make, needle):
    path = tmp_path / "bad.engine"
    path.write_bytes(make())
    with pytest.raises(ModelFileError, match=needle) as info:
        read_engine(path)
    assert "\n" not in str(info.value)


def test_a_missing_or_mismatched_sidecar_is_refused(tmp_path):
    path = write_engine(tmp_path / "m.engine", PLAN, _metadata())
    path.write_bytes(PLAN[:-1] + b"\x00")  # another plan of the same size beside the old side-car
    with pytest.raises(ModelFileError, match="do not belong together"):
        read_engine(path)
    sidecar_path(path).unlink()
    with pytest.raises(MetadataError, match="side-car m.engine.json is missing"):
        read_engine(path)


@pytest.mark.parametrize("doc,error,needle", [
    ("{\"format\": \"edgefer-engine\", \"format_ver", ModelFileError, "not valid JSON"),
    ("[1, 2]", ModelFileError, "not an object"),
    (json.dumps({"format": "other", "format_version": 1}), MetadataError, "not an edgefer engine side-car"),
])
def test_broken_sidecars(tmp_path, doc, error, needle):
    path = write_engine(tmp_path / "m.engine", PLAN, _metadata())
    sidecar_path(path).write_text(doc)
    with pytest.raises(error, match=needle):
        read_engine(path)


def test_a_huge_sidecar_is_not_read(tmp_path):
    path = write_engine(tmp_path / "m.engine", PLAN, _metadata())
    with open(sidecar_path(path), "wb") as f:
        f.truncate(MAX_JSON_BYTES + 1)  # sparse: no 1 MiB written
    with pytest.raises(ModelFileError, match="more than"):
        read_engine(path)


def test_sidecar_props_must_be_strings(tmp_path):
    path = write_engine(tmp_path / "m.engine", PLAN, _metadata())
    doc = json.loads(sidecar_path(path).read_text())
    doc["props"]["edgefer.clip_length"] = 16
    sidecar_path(path).write_text(json.dumps(doc))
    with pytest.raises(MetadataError, match="strings to strings"):
        read_engine(path)


def test_write_refuses_a_non_plan_and_a_bad_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not a TensorRT plan"):
        write_engine(tmp_path / "m.engine", b"\x08\x07onnx", _metadata())
    with pytest.raises(OutputPathError, match="does not exist"):
        write_engine(tmp_path / "missing" / "m.engine", PLAN, _metadata())
    assert not list(tmp_path.iterdir())


def test_load_reads_the_file_before_it_needs_tensorrt(tmp_path):
    path = tmp_path / "bad.engine"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a TensorRT plan"):
        edgefer.load(path)
    with pytest.raises(edgefer.errors.ArgumentError, match="CUDA GPU"):
        edgefer.load(path, device="cpu")
