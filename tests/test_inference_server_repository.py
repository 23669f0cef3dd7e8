"""The Triton Inference Server model repository (issue 12), parsed with Triton's own ``model_config.proto``.

``tritonclient`` ships the generated module as ``tritonclient/grpc/model_config_pb2.py``; importing it through
``tritonclient.grpc`` needs grpcio (the package's ``__init__`` imports it), which the generated module itself does
not: it needs only protobuf. So the file is loaded by path from the installed package, with no grpcio.
(Not named ``test_triton_*``: that glob is the Triton *kernel* tests of the GPU machine.)"""

import importlib.util
from pathlib import Path

import onnx
import pytest

from cli_support import assert_one_line_error, run_cli
from edgefer.errors import ArgumentError
from edgefer.export.triton_repository import TRITON_TYPES, pbtxt_string, write_repository
from edgefer.runtime.onnx_metadata import read_metadata_props

SMALL = ("--config", "dim=32", "--config", "num_heads=2", "--config", "mlp_hidden=64")


@pytest.fixture(scope="module")
def model_config_pb2():
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tritonclient is not installed (pip install tritonclient): it holds Triton's model_config.proto")
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("tritonclient_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _parse(pb2, path):
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(), pb2.ModelConfig())


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo") / "models"
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--format", "triton", "--batch", "1:2:4",
                   "--out", repo, "--name", "dfer")
    assert proc.returncode == 0, proc.stderr
    return repo


def test_repository_layout_and_config(repository, model_config_pb2):
    model = repository / "dfer" / "1" / "model.onnx"
    assert model.is_file() and (repository / "dfer" / "labels.txt").is_file()
    cfg = _parse(model_config_pb2, repository / "dfer" / "config.pbtxt")
    graph = onnx.load(str(model)).graph
    assert cfg.name == "dfer" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 4
    (inp,), (out,) = cfg.input, cfg.output
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim[1:]]  # without the batch axis
    assert inp.name == graph.input[0].name and list(inp.dims) == dims(graph.input[0]) == [16, 3, 112, 112]
    assert out.name == graph.output[0].name and list(out.dims) == dims(graph.output[0]) == [7]
    dtype = model_config_pb2.DataType.Name
    assert dtype(inp.data_type) == TRITON_TYPES[graph.input[0].type.tensor_type.elem_type] == "TYPE_FP32"
    assert dtype(out.data_type) == "TYPE_FP32"
    assert cfg.HasField("dynamic_batching") and list(cfg.dynamic_batching.preferred_batch_size) == [2]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    assert out.label_filename == "labels.txt"
    labels = (repository / "dfer" / "labels.txt").read_text().split()
    props = read_metadata_props(model)
    assert {k: v.string_value for k, v in cfg.parameters.items()} == props  # every edgefer pair, verbatim
    assert labels == ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]


def test_strings_survive_text_format(model_config_pb2, tmp_path):
    from google.protobuf import text_format

    tricky = 'a "quoted" \\ back\nslash \x01 and é'
    cfg = text_format.Parse(f"name: {pbtxt_string(tricky)}", model_config_pb2.ModelConfig())
    assert cfg.name == tricky


def test_refusals(repository, tmp_path):
    model = repository / "dfer" / "1" / "model.onnx"
    with pytest.raises(ArgumentError, match="plain folder name"):
        write_repository(model, tmp_path / "r", name="../x")
    with pytest.raises(ArgumentError, match="preferred batch sizes"):
        write_repository(model, tmp_path / "r", max_batch_size=2, preferred_batch_sizes=[4])
    (tmp_path / "file").write_text("x")
    proc = run_cli("export", "msstnet", "--untrained", "--format", "triton", "--out", tmp_path / "file")
    assert_one_line_error(proc, "it is a file")
