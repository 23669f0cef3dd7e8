"""Reading a Keras 2 HDF5 model file (``model.save("x.h5")``) with h5py alone, no TensorFlow.

A Keras HDF5 file holds two things this module reads:

- the root attribute ``model_config``: the JSON the Keras ``Model``/``Sequential`` ``get_config()`` wrote,
  giving every layer's class name, name, configuration (filters, kernel size, strides, padding mode,
  ``use_bias``, ``epsilon`` ...) and, for a functional model, the layers feeding it (``inbound_nodes``);
- the group ``model_weights`` (or the file root for a weights-only file): one group per layer whose attribute
  ``weight_names`` lists its arrays in order, e.g. ``conv2d_1_1/kernel:0``.

Layouts are Keras's (channels-last): a Conv2D kernel is (kh, kw, C_in, C_out), a depthwise kernel
(kh, kw, C_in, depth_multiplier), a pointwise kernel (1, 1, C_in * depth_multiplier, C_out).

Raises :class:`edgefer.errors.ModelFileError` when the file is not a Keras HDF5 model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.errors import ModelFileError


@dataclass(frozen=True)
class KerasLayer:
    """One layer of a Keras model as saved in its HDF5 file.

    Attributes:
        class_name: Keras layer class, e.g. ``"SeparableConv2D"``.
        name: the layer's unique name, e.g. ``"separable_conv2d_1"``.
        config: the layer's ``get_config()`` dict, verbatim.
        inbound: names of the layers whose outputs feed this one, in order (empty for an input layer).
        weights: the layer's arrays keyed by their short name (``kernel``, ``bias``, ``depthwise_kernel``,
            ``pointwise_kernel``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``), float32.
    """

    class_name: str
    name: str
    config: dict[str, Any]
    inbound: tuple[str, ...]
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class KerasModel:
    """A Keras model read from HDF5: its layers in file order and its input/output layer names."""

    layers: tuple[KerasLayer, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    keras_version: str


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def read_keras_hdf5(path: str | Path) -> KerasModel:
    """Read the layer graph and weights of the Keras HDF5 model at ``path``.

    Handles functional models (``class_name == "Model"``/``"Functional"``, layers wired by
    ``inbound_nodes``) and ``Sequential`` models (each layer fed by the previous one).

    Raises:
        ModelFileError: the file is missing, not HDF5, has no ``model_config``, or a layer's weights are missing.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Keras model file {path} does not exist")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"{path} is not an HDF5 file ({exc})") from None
    with fh:
        if "model_config" not in fh.attrs:
            raise ModelFileError(f"{path} has no 'model_config' attribute: it is not a full Keras model save")
        try:
            config = json.loads(_text(fh.attrs["model_config"]))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: model_config is not JSON ({exc})") from None
        keras_version = _text(fh.attrs.get("keras_version", "unknown"))
        weights_root = fh["model_weights"] if "model_weights" in fh else fh
        class_name = config.get("class_name")
        body = config.get("config", {})
        raw_layers = body.get("layers", body if isinstance(body, list) else None)
        if not isinstance(raw_layers, list):
            raise ModelFileError(f"{path}: model_config of class {class_name!r} has no layer list")
        layers = []
        previous: str | None = None
        if class_name == "Sequential" and raw_layers and raw_layers[0].get("class_name") != "InputLayer":
            # Keras 2 Sequential: the first layer carries the input shape; make the input layer explicit.
            first = raw_layers[0]["config"]
            layers.append(KerasLayer("InputLayer", "sequential_input",
                                     {"batch_input_shape": first.get("batch_input_shape")}, ()))
            previous = "sequential_input"
        for raw in raw_layers:
            name = raw.get("name") or raw["config"]["name"]
            if class_name == "Sequential":
                inbound = (previous,) if previous is not None else ()
            else:
                inbound = tuple(_inbound_names(raw.get("inbound_nodes", [])))
            layers.append(KerasLayer(raw["class_name"], name, dict(raw["config"]), inbound,
                                     _layer_weights(weights_root, name, path)))
            previous = name
        if class_name == "Sequential":
            inputs = (layers[0].name,)
            outputs = (layers[-1].name,)
        else:
            inputs = tuple(entry[0] for entry in body.get("input_layers", []))
            outputs = tuple(entry[0] for entry in body.get("output_layers", []))
    return KerasModel(tuple(layers), inputs, outputs, keras_version)


def _inbound_names(nodes: list) -> list[str]:
    """Layer names feeding a layer, from Keras 2's ``inbound_nodes`` ([[[name, node, tensor, kwargs], ...]])."""
    if len(nodes) > 1:
        raise ModelFileError("a layer is called more than once (shared layer); this converter does not support it")
    names = []
    for node in nodes:
        for entry in node:
            if isinstance(entry, list) and entry and isinstance(entry[0], str):
                names.append(entry[0])
            else:
                raise ModelFileError(f"unsupported inbound_nodes entry {entry!r} (Keras 3 format?)")
    return names


def _layer_weights(root, name: str, path: Path) -> dict[str, np.ndarray]:
    if name not in root:
        return {}
    group = root[name]
    names = [_text(n) for n in group.attrs.get("weight_names", [])]
    weights = {}
    for full in names:
        if full not in group:
            raise ModelFileError(f"{path}: layer {name!r} lists weight {full!r} but the file lacks it")
        short = full.rsplit("/", 1)[-1].split(":", 1)[0]
        weights[short] = np.asarray(group[full], dtype=np.float32)
    return weights
