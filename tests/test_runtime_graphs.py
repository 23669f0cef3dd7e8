"""edgefer.load and the task calls on small hand-built ONNX graphs carrying edgefer metadata (issue 10).

The graphs are built with ``onnx.helper``: a DFER "model" averages each frame's pixels and maps the T frame means
to class logits with one MatMul, so its output is known in closed form; a spotting one maps each frame's mean to
per-frame scores. Variants contradict their metadata (too few or too many outputs for the labels, an Identity
graph, the wrong types) or hold ops ONNX Runtime lacks, and must give one-line MetadataError / ModelFileError /
BackendUnavailableError at load or at predict, never an IndexError or a wrong answer.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgefer  # noqa: E402
from edgefer import ortops  # noqa: E402
from edgefer.errors import (ArgumentError, BackendUnavailableError, MetadataError,  # noqa: E402
                            ModelFileError)
from edgefer.labels import DFER_LABELS, SPOTTING_CLASSES  # noqa: E402
from edgefer.metadata import ModelMetadata  # noqa: E402
from edgefer.preprocess import prepare_clip  # noqa: E402
from edgefer.runtime.base import FrameScores, Prediction, softmax  # noqa: E402

T, SIZE = 4, 8  # frames per clip, frame side in pixels


def _metadata(task="dfer", labels=DFER_LABELS, **kw) -> ModelMetadata:
    return ModelMetadata(model="tiny", task=task, labels=tuple(labels), clip_length=T, frame_size=(SIZE, SIZE),
                         sampling="consecutive", trained=True, **kw)


def _weights(outputs: int) -> np.ndarray:
    return np.linspace(-2, 2, T * outputs, dtype=np.float32).reshape(T, outputs)


def _save(path, nodes, outputs, metadata, *, initializers=(), input_type=TensorProto.FLOAT, extra_inputs=(),
          opsets=(("", 17),)):
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("clip", input_type, ["batch", T, 3, SIZE, SIZE]),
                        *extra_inputs],
        outputs, initializer=list(initializers))
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    for key, value in metadata.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def _dfer_graph(path, outputs=7, labels=DFER_LABELS, static=True, **kw):
    """clip (B, T, 3, S, S) -> per-frame means (B, T) -> @ W (T, outputs) -> logits (B, outputs).

    With ``static=False`` the logits go through a Reshape to (-1, outputs) whose target shape is computed from
    the pixels (times 0), so ONNX Runtime's shape inference cannot know the output's dims before a run.
    """
    nodes = [helper.make_node("ReduceMean", ["clip"], ["means"], axes=[2, 3, 4], keepdims=0),
             helper.make_node("MatMul", ["means", "W"], ["logits" if static else "raw"])]
    inits = [numpy_helper.from_array(_weights(outputs), "W")]
    if not static:
        nodes += [helper.make_node("ReduceMean", ["clip"], ["mean"], keepdims=0),
                  helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
                  helper.make_node("Add", ["nothing", "width"], ["width_f"]),
                  helper.make_node("Cast", ["width_f"], ["width_i"], to=TensorProto.INT64),
                  helper.make_node("Concat", ["minus_one", "width_i"], ["shape"], axis=0),
                  helper.make_node("Reshape", ["raw", "shape"], ["logits"])]
        inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
                  numpy_helper.from_array(np.array([outputs], np.float32), "width"),
                  numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    return _save(path, nodes, [out], _metadata(labels=labels, **kw), initializers=inits)


def _spotting_graph(path, frame_wise=True):
    """clip (B, T, 3, S, S) -> per-frame means (B, T, 1) -> @ W (1, 3) -> frame-wise logits (B, T, 3); or, not
    ``frame_wise``, the clip's mean (B, 1) -> @ W -> one row of scores a clip (B, 3)."""
    nodes = [helper.make_node("ReduceMean", ["clip"], ["means"], axes=[2, 3, 4] if frame_wise else [1, 2, 3, 4],
                              keepdims=0),
             helper.make_node("Unsqueeze", ["means", "axis"], ["column"]),
             helper.make_node("MatMul", ["column", "W"], ["scores"])]
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    return _save(path, nodes, [out], _metadata("spotting", SPOTTING_CLASSES),
                 initializers=[numpy_helper.from_array(np.array([[1.0, -2.0, 3.0]], np.float32), "W"),
                               numpy_helper.from_array(np.array([-1], np.int64), "axis")])


def _clip(seed=0, batch=None):
    shape = (T, 12, 10, 3) if batch is None else (batch, T, 12, 10, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_a_dfer_graph_predicts_its_closed_form(tmp_path):
    model = edgefer.load(_dfer_graph(tmp_path / "m.onnx"))
    clip = _clip()
    got = model.predict(clip)
    means = prepare_clip(list(clip), model.metadata).mean(axis=(1, 2, 3))  # (T,)
    want = means @ _weights(7)
    assert isinstance(got, Prediction) and got.labels == DFER_LABELS
    np.testing.assert_allclose(got.logits, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.probabilities, np.exp(want) / np.exp(want).sum(), rtol=1e-5)
    assert got.label == DFER_LABELS[int(np.argmax(want))]
    batch = model.predict(_clip(1, batch=3))
    assert len(batch) == 3 and all(isinstance(p, Prediction) for p in batch)


@pytest.mark.parametrize("outputs,labels", [(7, DFER_LABELS + ("Contempt", "Other")), (7, DFER_LABELS[:3])])
def test_outputs_that_contradict_the_labels_are_refused_at_load(tmp_path, outputs, labels):
    path = _dfer_graph(tmp_path / "m.onnx", outputs, labels)
    with pytest.raises(MetadataError) as info:
        edgefer.load(path)
    assert _one_line(info) == (f"{path}: the model's first output is (batch, 7) in the graph, but its metadata "
                               f"(task 'dfer', {len(labels)} labels) needs (batch, labels={len(labels)})")


@pytest.mark.parametrize("labels", [DFER_LABELS + ("Contempt", "Other"), DFER_LABELS[:3]])
def test_an_undeclared_output_shape_is_checked_at_predict(tmp_path, labels):
    """The graph declares no output shape, so the load cannot check it: predict must, with a clear error."""
    path = _dfer_graph(tmp_path / "m.onnx", 7, labels, static=False)
    model = edgefer.load(path)
    with pytest.raises(MetadataError) as info:
        model.predict(_clip(batch=2))
    assert _one_line(info) == (f"{path}: the model's first output is (2, 7) for a batch of 2, but its metadata "
                               f"(task 'dfer', {len(labels)} labels) needs (batch=2, labels={len(labels)})")


def test_an_identity_graph_with_edgefer_metadata(tmp_path):
    path = _save(tmp_path / "identity.onnx", [helper.make_node("Identity", ["clip"], ["out"])],
                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], _metadata())
    with pytest.raises(MetadataError, match=r"first output is \(batch, 4, 3, 8, 8\) in the graph, but its "
                                            r"metadata \(task 'dfer', 7 labels\) needs \(batch, labels=7\)"):
        edgefer.load(path)


def test_inputs_and_output_types_that_contradict_the_runtime(tmp_path):
    head = [helper.make_node("Cast", ["clip"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[2, 3, 4], keepdims=0),
            helper.make_node("MatMul", ["means", "W"], ["logits"])]
    weights = [numpy_helper.from_array(_weights(7), "W")]
    logits = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)]
    path = _save(tmp_path / "uint8.onnx", head, logits, _metadata(), initializers=weights,
                 input_type=TensorProto.UINT8)
    with pytest.raises(MetadataError, match=r"edgefer feeds float32 clips, but the graph's input is tensor\(uint8\)"):
        edgefer.load(path)
    path = _save(tmp_path / "two.onnx", head, logits, _metadata(), initializers=weights,
                 extra_inputs=[helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1])])
    with pytest.raises(MetadataError, match=r"edgefer feeds one input, but the graph has 2: \['clip', 'x2'\]"):
        edgefer.load(path)
    top = head + [helper.make_node("TopK", ["logits", "k"], ["values", "indices"], axis=1)]
    path = _save(tmp_path / "topk.onnx", top, [helper.make_tensor_value_info("indices", TensorProto.INT64, None)],
                 _metadata(), initializers=weights + [numpy_helper.from_array(np.array([7], np.int64), "k")])
    with pytest.raises(MetadataError, match=r"first output is tensor\(int64\), not float scores"):
        edgefer.load(path)


def test_onnx_runtime_s_own_reason_is_reported(tmp_path):
    path = _save(tmp_path / "unknown_op.onnx", [helper.make_node("NoSuchOperator", ["clip"], ["out"])],
                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 7])], _metadata())
    with pytest.raises(ModelFileError) as info:
        edgefer.load(path)
    text = _one_line(info)
    assert text.startswith(f"ONNX Runtime cannot load {path}: ") and "NoSuchOperator" in text
    assert "truncated" not in text


def test_a_graph_that_fails_to_run_gives_onnx_runtime_s_reason(tmp_path):
    """The graph reshapes the (B, 7) logits to (3, -1): it loads, but no batch of 1 can run."""
    nodes = [helper.make_node("ReduceMean", ["clip"], ["means"], axes=[2, 3, 4], keepdims=0),
             helper.make_node("MatMul", ["means", "W"], ["raw"]),
             helper.make_node("Reshape", ["raw", "shape"], ["logits"])]
    path = _save(tmp_path / "bad_reshape.onnx", nodes, [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                                                      None)], _metadata(),
                 initializers=[numpy_helper.from_array(_weights(7), "W"),
                               numpy_helper.from_array(np.array([3, -1], np.int64), "shape")])
    model = edgefer.load(path)
    with pytest.raises(ModelFileError) as info:
        model.predict(_clip())
    text = _one_line(info)
    assert text.startswith(f"ONNX Runtime failed to run {path} on a batch of shape (1, 4, 3, 8, 8): ")
    assert "Reshape" in text


def test_each_task_has_its_own_call(tmp_path):
    dfer = edgefer.load(_dfer_graph(tmp_path / "dfer.onnx"))
    spotting_path = _spotting_graph(tmp_path / "spot.onnx")
    spotting = edgefer.load(spotting_path)
    clip = _clip()
    scores = spotting.spot_frames(clip)
    assert isinstance(scores, FrameScores) and scores.labels == SPOTTING_CLASSES
    means = prepare_clip(list(clip), spotting.metadata).mean(axis=(1, 2, 3))
    want = means[:, None] * np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(scores.logits, want, rtol=1e-5, atol=1e-6)
    assert scores.probabilities.shape == (T, 3) and scores.probabilities.dtype == np.float32
    np.testing.assert_allclose(scores.probabilities, softmax(want), rtol=1e-5)
    assert len(spotting.spot_frames(_clip(batch=2))) == 2
    with pytest.raises(ArgumentError) as info:
        spotting.predict(clip)
    assert _one_line(info) == (f"{spotting_path} is an expression-spotting model (task 'spotting', tiny): use "
                               f"`edgefer spot VIDEO --model {spotting_path}` or model.spot_frames(...), not predict")
    with pytest.raises(ArgumentError, match=r"is a dfer model \(tiny\), not an expression-spotting model: use "
                                            r"`edgefer predict VIDEO --model .*dfer.onnx` or model.predict"):
        dfer.spot_frames(clip)


def test_a_spotting_graph_without_frame_wise_output_is_refused(tmp_path):
    path = _spotting_graph(tmp_path / "spot.onnx", frame_wise=False)
    with pytest.raises(MetadataError, match=r"first output is \(batch, 3\) in the graph, but its metadata \(task "
                                            r"'spotting', 3 labels\) needs \(batch, frames=4, labels=3\)"):
        edgefer.load(path)


def test_softmax_is_stable_and_sums_to_one():
    probs = softmax(np.array([[1000.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-1e4, -1e4 + 1.0, -1e4]]))
    assert probs.dtype == np.float32 and probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(probs[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(probs[2], np.array([1.0, np.e, 1.0]) / (2 + np.e), rtol=1e-6)


# ---- custom ops: the metadata decides ------------------------------------------------------------------------

def _attention_graph(path, custom_ops=("edgefer",)):
    """clip (B, T, 3, S, S) -> (B, T, 1, 3*D) -> edgefer TemporalAttention -> (B, T, 1, D) -> mean -> (B, 7)."""
    d = SIZE * SIZE  # 3 channels of S x S pixels a frame: q, k and v of D = S * S each
    nodes = [helper.make_node("Reshape", ["clip", "qkv_shape"], ["qkv"]),
             helper.make_node("TemporalAttention", ["qkv"], ["att"], domain="edgefer", num_heads=1, scale=0.0),
             helper.make_node("ReduceMean", ["att"], ["pooled"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["pooled", "W"], ["logits"])]
    weights = np.linspace(-1, 1, d * 7, dtype=np.float32).reshape(d, 7)
    return _save(path, nodes, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])],
                 _metadata(custom_ops=custom_ops),
                 initializers=[numpy_helper.from_array(np.array([0, T, 1, 3 * d], np.int64), "qkv_shape"),
                               numpy_helper.from_array(weights, "W")],
                 opsets=(("", 17), ("edgefer", 1)))


def test_the_library_is_registered_because_the_metadata_lists_it(tmp_path):
    from build_support import ortops_library

    ortops_library()
    model = edgefer.load(_attention_graph(tmp_path / "custom.onnx"))
    result = model.predict(_clip())
    assert abs(float(result.probabilities.sum()) - 1) < 1e-5 and np.isfinite(result.logits).all()


def test_a_missing_library_is_named_with_how_to_build_it(tmp_path, monkeypatch):
    path = _attention_graph(tmp_path / "custom.onnx")
    monkeypatch.delenv(ortops.ENV_LIBRARY, raising=False)
    monkeypatch.setattr(ortops, "_library_names", lambda: ("libedgefer_ortops_not_built.so",))
    with pytest.raises(BackendUnavailableError) as info:
        edgefer.load(path)
    text = _one_line(info)
    assert text.startswith(f"{path} uses edgefer custom ops (metadata custom_ops ['edgefer']): edgefer's ONNX "
                           "Runtime custom-op library libedgefer_ortops_not_built.so is not installed (looked in ")
    for needle in ("`pip install .`", "C++17 compiler and CMake", "Debian's libonnxruntime-dev", "apt-get",
                   "EDGEFER_ONNXRUNTIME_INCLUDE_DIR", "cmake/EdgeferOnnxRuntimeHeaders.cmake",
                   ortops.ENV_LIBRARY, "without --custom-ops"):
        assert needle in text, needle


def test_custom_nodes_the_metadata_does_not_list_get_onnx_runtime_s_reason(tmp_path):
    path = _attention_graph(tmp_path / "unlisted.onnx", custom_ops=())
    with pytest.raises(ModelFileError) as info:
        edgefer.load(path)
    text = _one_line(info)
    assert text.startswith(f"ONNX Runtime cannot load {path}: ") and "TemporalAttention" in text


def test_a_custom_op_domain_this_edgefer_lacks(tmp_path):
    path = _attention_graph(tmp_path / "acme.onnx", custom_ops=("edgefer", "acme"))
    with pytest.raises(MetadataError, match=r"needs custom-op domains \['acme'\] that this edgefer does not "
                                            r"provide \(it provides \['edgefer'\]\)"):
        edgefer.load(path)


# ---- the runtime's guarantees, kept ---------------------------------------------------------------------------

def test_threads_share_one_model_bit_identically(tmp_path):
    model = edgefer.load(_dfer_graph(tmp_path / "m.onnx"))
    clips = [_clip(seed) for seed in range(8)]
    expected = [model.predict(c).logits for c in clips]
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        results[k] = [model.predict(clips[(k + i) % 8]).logits for i in range(50)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(8))
    for k, got in results.items():
        for i, logits in enumerate(got):
            assert np.array_equal(logits, expected[(k + i) % 8])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident set size from Linux /proc")
def test_memory_stays_flat_over_3000_calls(tmp_path):
    model = edgefer.load(_dfer_graph(tmp_path / "m.onnx"))
    clip = _clip()
    for _ in range(300):
        model.predict(clip)
    before = _rss_bytes()
    for _ in range(3000):
        model.predict(clip)
    growth = _rss_bytes() - before
    assert growth < 4 << 20, f"RSS grew {growth / 2**20:.1f} MiB over 3000 calls"
