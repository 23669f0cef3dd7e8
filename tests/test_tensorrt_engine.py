"""The engine build and the ``.engine`` backend (issue 12).

The first tests run everywhere: what happens where TensorRT is missing, and the machine check that runs before
deserializing. The rest need TensorRT, cuda-python and a CUDA GPU; they skip with the reason where ``import
tensorrt`` fails, and would fail where the engine path were broken (build, reload, parity, buffers, refusals)."""

import dataclasses
import json
import warnings

import numpy as np
import pytest

import edgefer
from cli_support import assert_one_line_error, run_cli
from edgefer.errors import ArgumentError, BackendUnavailableError, MetadataError
from edgefer.export.tensorrt_build import tensorrt_available
from edgefer.metadata import ModelMetadata
from edgefer.runtime.engine_file import sidecar_path, write_engine
from edgefer.runtime.tensorrt_backend import check_machine, plugin_paths, release

SMALL = ("--config", "dim=32", "--config", "num_heads=2", "--config", "mlp_hidden=64")
NO_TRT = "TensorRT is not installed (import tensorrt failed)"


def _meta(**kw):
    base = dict(model="msstnet", task="dfer", labels=("a", "b"), clip_length=16, frame_size=(112, 112),
                precision="fp16", tensorrt_version="10.3.0.30", compute_capability="8.7", device_name="Orin")
    return ModelMetadata(**{**base, **kw})


def test_the_engine_backend_imports_no_torch_and_no_export_layer():
    from test_runtime_without_torch import _run

    proc = _run("""
        import sys
        import edgefer.runtime.tensorrt_backend, edgefer.runtime.engine_file, edgefer.runtime.cuda_runtime
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
        assert not any(m.startswith("edgefer.export") for m in sys.modules), "the export layer got imported"
        print("ok")
    """)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_machine_check_before_deserializing():
    check_machine(_meta(), "10.3.0.26", "8.7", "Orin", "m.engine")  # same release, another build number
    with pytest.raises(MetadataError, match="TensorRT 10.3.0.30, this machine has TensorRT 10.8.0.*rebuild"):
        check_machine(_meta(), "10.8.0.43", "8.7", "Orin", "m.engine")
    with pytest.raises(MetadataError, match="compute capability 8.7 .*this GPU is 9.0.*rebuild"):
        check_machine(_meta(), "10.3.0.30", "9.0", "NVIDIA H200", "m.engine")
    with pytest.raises(MetadataError, match="does not record"):
        check_machine(_meta(tensorrt_version=""), "10.3.0.30", "8.7", "Orin", "m.engine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_machine(_meta(), "10.3.0.30", "8.7", "Jetson AGX Orin", "m.engine")
    assert any("possibly slower" in str(w.message) for w in caught)
    assert release("10.3.0.30") == (10, 3, 0) and release("11.1") == (11, 1)


def test_plugin_libraries_are_found_or_named(tmp_path):
    meta = _meta(plugin_libraries=("libedgefer_tensorrt_plugins.so",))
    engine = tmp_path / "m.engine"
    if not (tmp_path / "libedgefer_tensorrt_plugins.so").exists():
        try:
            found = plugin_paths(meta, engine, None)  # the package folder may hold a built one
        except BackendUnavailableError as exc:
            assert "libedgefer_tensorrt_plugins.so" in str(exc) and "TensorRT_INCLUDE_DIR" in str(exc)
        else:
            assert found[0].name == "libedgefer_tensorrt_plugins.so"
    (tmp_path / "libedgefer_tensorrt_plugins.so").write_bytes(b"\x7fELF")
    assert plugin_paths(meta, engine, None) == [tmp_path / "libedgefer_tensorrt_plugins.so"]
    with pytest.raises(MetadataError, match="file name"):
        plugin_paths(_meta(plugin_libraries=("../evil.so",)), engine, None)
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        plugin_paths(meta, engine, [tmp_path / "nope.so"])


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is installed here: the refusal is not what happens")
def test_without_tensorrt_load_and_export_say_how_to_install(tmp_path):
    engine = write_engine(tmp_path / "m.engine", b"ftrt" + bytes(64), _meta())
    with pytest.raises(BackendUnavailableError, match="python3-libnvinfer") as info:
        edgefer.load(engine)
    assert NO_TRT in str(info.value)
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--format", "engine", "--out", tmp_path / "x.engine")
    assert_one_line_error(proc, "TensorRT is not installed")
    assert not (tmp_path / "x.engine").exists() and "fp32 export checked" not in proc.stdout  # refused first
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--format", "triton", "--triton-backend", "tensorrt",
                   "--out", tmp_path / "repo")
    assert_one_line_error(proc, "TensorRT is not installed")


def test_cli_refusals_before_any_work(tmp_path):
    proc = run_cli("export", "msstnet", "--untrained", "--format", "engine", "--int8", "--calib", tmp_path,
                   "--out", tmp_path / "x.engine")
    assert_one_line_error(proc, "--precision int8")
    proc = run_cli("export", "msstnet", "--untrained", "--format", "engine", "--out", tmp_path / "no" / "x.engine")
    assert_one_line_error(proc, "does not exist")


# ---- with TensorRT ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trt():
    return pytest.importorskip("tensorrt", reason=NO_TRT)


@pytest.fixture(scope="module")
def small_onnx(trt, tmp_path_factory):
    import torch

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", dim=32, num_heads=2, mlp_hidden=64).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp("trt") / "small.onnx"
    export_onnx(model, path, metadata, random_batches=(1,))
    return path


@pytest.fixture(scope="module")
def fp16_engine(small_onnx):
    from edgefer.export.tensorrt_build import build_engine

    out = small_onnx.with_name("small_fp16.engine")
    return build_engine(small_onnx, out, precision="fp16", batch=(1, 2, 4), workspace_mib=1024)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_writes_a_checked_plain_plan(small_onnx, precision, trt, tmp_path):
    from edgefer.export.tensorrt_build import build_engine

    report = build_engine(small_onnx, tmp_path / f"m_{precision}.engine", precision=precision, batch=(1, 2, 4))
    assert report.path.read_bytes()[:4] == b"ftrt"  # a plain plan: trtexec and Triton read it
    doc = json.loads(sidecar_path(report.path).read_text())["props"]
    assert doc["edgefer.precision"] == precision and doc["edgefer.tensorrt_version"] == trt.__version__
    assert doc["edgefer.compute_capability"] == report.compute_capability and doc["edgefer.device_name"]
    assert json.loads(doc["edgefer.batch_profile"]) == [1, 2, 4]
    assert report.cosine >= 0.999 and report.top1_agreement == 1.0


def test_engine_predicts_like_onnx_runtime_and_reuses_its_buffers(small_onnx, fp16_engine):
    engine = edgefer.load(fp16_engine.path)
    reference = edgefer.load(small_onnx)
    assert engine.backend == "tensorrt" and engine.metadata.precision == "fp16"
    clips = np.random.default_rng(3).integers(0, 255, (3, 20, 64, 64, 3), dtype=np.uint8)
    got, want = engine.predict(clips), reference.predict(clips)
    for g, w in zip(got, want):
        assert g.index == w.index
        cos = float(g.logits @ w.logits / (np.linalg.norm(g.logits) * np.linalg.norm(w.logits)))
        assert cos >= 0.999
    runner = engine.runner
    pointers = (runner._host_in_ptr, runner._dev_in, runner._dev_out)
    engine.predict(clips[:2])
    engine.predict(clips[:1])
    assert (runner._host_in_ptr, runner._dev_in, runner._dev_out) == pointers  # no allocation at steady state
    with pytest.raises(ArgumentError, match="optimization profile"):
        engine.predict(np.repeat(clips, 2, axis=0))  # 6 > max 4


def test_engine_of_another_tensorrt_or_gpu_is_refused(fp16_engine, tmp_path):
    from edgefer.runtime.engine_file import read_engine

    loaded = read_engine(fp16_engine.path)
    for change, needle in (({"tensorrt_version": "9.9.9"}, "TensorRT 9.9.9"),
                           ({"compute_capability": "1.0"}, "compute capability 1.0")):
        meta = dataclasses.replace(loaded.metadata, **change)
        path = write_engine(tmp_path / "other.engine", loaded.plan, meta)
        with pytest.raises(MetadataError, match=f"{needle}.*rebuild"):
            edgefer.load(path)


def test_int8_engine_agrees_on_real_clips(small_onnx, sample_video, tmp_path):
    from edgefer.export.tensorrt_build import build_engine

    report = build_engine(small_onnx, tmp_path / "m8.engine", precision="int8", batch=(1, 2, 4),
                          calib=sample_video("WolfgangLanger_Pexels.mp4"), min_agreement=0.5)
    assert report.precision == "int8" and report.check_clips.endswith("real")
    assert edgefer.load(report.path).metadata.precision == "int8"


def test_parity_failure_writes_nothing(small_onnx, tmp_path, monkeypatch):
    from edgefer.errors import ExportError
    from edgefer.export import tensorrt_build

    monkeypatch.setattr(tensorrt_build, "MIN_COSINE", 1.1)  # no engine can pass: the refusal path
    with pytest.raises(ExportError, match="was not written"):
        tensorrt_build.build_engine(small_onnx, tmp_path / "no.engine", precision="fp16", batch=(1, 1, 2))
    assert not list(tmp_path.glob("no.engine*"))


def test_triton_repository_with_a_plan(small_onnx, fp16_engine, tmp_path):
    from edgefer.export.triton_repository import write_repository

    report = write_repository(small_onnx, tmp_path / "repo", engine=fp16_engine.path, max_batch_size=4)
    assert report.platform == "tensorrt_plan" and report.model_file.read_bytes()[:4] == b"ftrt"
    assert 'key: "edgefer.precision"' in report.config.read_text()
