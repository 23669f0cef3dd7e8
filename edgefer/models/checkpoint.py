"""edgefer checkpoints: a ``.pt`` file holding the model name, its config, labels and state dict.

The file is a plain dict of strings, numbers, lists and tensors, so it loads with
``torch.load(path, weights_only=True)`` (no pickled classes). A bare state dict saved elsewhere (for instance a
torchvision-keyed ResNet-18 or a model trained outside edgefer) also loads, given the model name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..errors import ArgumentError, ModelFileError
from ..metadata import ModelMetadata
from . import build_config, build_model, config_fields, model_module

FORMAT = "edgefer-checkpoint"
FORMAT_VERSION = 1


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the state dict's keys, shapes, dtypes and bytes, in sorted key order (hex digest)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu()
        digest.update(f"{key}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        tensor = tensor.contiguous().reshape(-1)
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def artefact_metadata(model: torch.nn.Module, *, trained: bool, weights_sha256: str, custom_ops: bool = False,
                      extra: dict[str, str] | None = None, face_align: bool | None = None,
                      face_margin: float | None = None) -> ModelMetadata:
    """The metadata describing an edgefer model as an artefact: its ``metadata_fields()`` plus provenance.

    ``extra`` gains ``config`` (the model config as JSON), so that an artefact records every *(ours)* choice.
    ``face_align`` / ``face_margin``: how the training crops were cut (eye-aligned or not, margin per side); None
    keeps the model's own ``metadata_fields()`` value, else :class:`~edgefer.metadata.ModelMetadata`'s default.
    ``predict``, ``spot`` (and ``prepare``, ``stream``) crop as these say.
    """
    config = json.dumps(_plain(dataclasses.asdict(model.config)), sort_keys=True)
    fields = dict(model.metadata_fields())
    if face_align is not None:
        fields["face_align"] = bool(face_align)
    if face_margin is not None:
        fields["face_margin"] = float(face_margin)
    return ModelMetadata(**fields, trained=trained, weights_sha256=weights_sha256,
                         edgefer_version=__version__, custom_ops=("edgefer",) if custom_ops else (),
                         extra={"config": config, **(extra or {})})


def model_for_export(name: str, weights: str | Path | None = None, *, seed: int = 0,
                     overrides: dict[str, Any] | None = None, custom_ops: bool = False,
                     face_align: bool | None = None, face_margin: float | None = None
                     ) -> tuple[torch.nn.Module, ModelMetadata, bool]:
    """The model an export writes and its artefact metadata: ``(model in eval mode, metadata, trained)``.

    ``weights`` is a checkpoint (:func:`load_checkpoint`); None builds freshly initialised weights after
    ``torch.manual_seed(seed)`` (untrained, for tests and pipelines). ``overrides`` are config fields;
    ``custom_ops`` / ``face_align`` / ``face_margin`` go to :func:`artefact_metadata`. The one builder behind
    ``edgefer export`` and ``python -m edgefer.export.ci_export``.

    Raises:
        ModelFileError / ArgumentError: as :func:`load_checkpoint` and :func:`edgefer.models.build_model`.
    """
    overrides = dict(overrides or {})
    if weights is None:
        torch.manual_seed(seed)
        model = build_model(name, **overrides).eval()
        trained, digest = False, weights_sha256(model.state_dict())
    else:
        loaded = load_checkpoint(weights, name, **overrides)
        model, trained, digest = loaded.model.eval(), loaded.trained, loaded.weights_sha256
    metadata = artefact_metadata(model, trained=trained, weights_sha256=digest, custom_ops=custom_ops,
                                 face_align=face_align, face_margin=face_margin)
    return model, metadata, trained


def save_checkpoint(model: torch.nn.Module, path: str | Path, *, trained: bool,
                    training: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (an edgefer model built by :func:`edgefer.models.build_model`) to ``path``.

    Args:
        model: an edgefer model (it has ``name``, ``config`` and ``metadata_fields()``).
        path: destination ``.pt`` file.
        trained: whether the weights were trained; exported artefacts and the runtime report it.
        training: a training checkpoint's resumable state (:mod:`edgefer.train`: optimizer, scheduler, scaler
            and RNG states, epoch, best metric, the resolved train config), stored under ``"training"``; it must
            hold only weights_only-safe values (tensors, numbers, strings, lists, dicts). :func:`load_checkpoint`
            and ``edgefer export --weights`` ignore it; :func:`read_training_state` returns it.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "config": _plain(dataclasses.asdict(model.config)),
        "labels": list(model.metadata_fields()["labels"]),
        "trained": bool(trained),
        "edgefer_version": __version__,
        "state_dict": state,
    }
    if training is not None:
        payload["training"] = training
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


@dataclasses.dataclass
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint, in eval mode, with what the file said about it."""

    model: torch.nn.Module
    trained: bool
    weights_sha256: str


def load_checkpoint(path: str | Path, model_name: str | None = None, *, kernels: str = "auto",
                    trained: bool | None = None, **overrides: Any) -> LoadedCheckpoint:
    """Rebuild a model from an edgefer checkpoint or a bare state dict.

    The file is read with ``torch.load(weights_only=True)``, which never runs pickled code: a file holding other
    Python objects is refused, not loaded.

    Args:
        path: a ``.pt`` file written by :func:`save_checkpoint`, or a bare state dict.
        model_name: required for a bare state dict, and used for an edgefer checkpoint that lacks its 'model'
            entry; checked against the file otherwise.
        kernels: op implementation for the rebuilt model.
        trained: for a bare state dict, whether its weights are trained (default True: a bare state dict
            almost always comes from training); ignored for edgefer checkpoints, which record it.
        overrides: config fields for a bare state dict (an edgefer checkpoint carries its config; overrides
            replace its fields).

    Raises:
        ModelFileError: the file is missing or a folder, truncated or corrupt, holds objects a safe load refuses,
            is not a checkpoint, lacks an entry of the checkpoint format, records a config field the model does
            not have, or its weights do not fit the model. Every message is one line.
        ArgumentError: unknown model name or override field, a config value out of range, or ``model_name``
            disagrees with the checkpoint (also a ``ValueError``).
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist")
    payload = _safe_load(path)
    if not isinstance(payload, dict):
        raise ModelFileError(f"{path} holds a {type(payload).__name__}, not an edgefer checkpoint or a state dict")
    if payload.get("format") == FORMAT:
        missing = [key for key in ("config", "state_dict", "trained") if key not in payload]
        if missing:
            raise ModelFileError(f"{path} is an edgefer checkpoint without its {', '.join(map(repr, missing))} "
                                 "entry: re-save it with save_checkpoint")
        name = payload.get("model", model_name)
        if name is None:
            raise ModelFileError(f"{path} is an edgefer checkpoint with no 'model' entry: say which model it is "
                                 "(model_name, e.g. `edgefer export msstnet --weights FILE`)")
        if model_name is not None and model_name != name:
            raise ArgumentError(f"{path} holds a {name!r} model, not {model_name!r}")
        stored, fields = payload["config"], config_fields(name)
        if not isinstance(stored, dict):
            raise ModelFileError(f"{path}: its 'config' entry is a {type(stored).__name__}, not a dict of fields")
        unknown = [key for key in stored if key not in fields]
        if unknown:
            raise ModelFileError(f"{path} records {name} config field {', '.join(map(repr, unknown))}, which this "
                                 f"edgefer's {name} does not have; its fields are {', '.join(fields)}")
        config = build_config(name, **{**stored, **overrides})
        state, is_trained = payload["state_dict"], bool(payload["trained"])
    else:
        if model_name is None:
            raise ModelFileError(f"{path} is a bare state dict: say which model it is (model_name / --model-name)")
        if not all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise ModelFileError(f"{path} is neither an edgefer checkpoint nor a state dict of tensors")
        name, config, state = model_name, build_config(model_name, **overrides), payload
        is_trained = True if trained is None else trained
    model = model_module(name).Model(config, kernels=kernels)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: the weights do not fit a {name} with this config: {exc}") from None
    return LoadedCheckpoint(model.eval(), is_trained, weights_sha256(state))


def read_training_state(path: str | Path) -> dict[str, Any]:
    """The ``"training"`` entry of a training checkpoint written by :func:`save_checkpoint` (a safe load).

    Raises:
        ModelFileError: the file is missing, unreadable, not an edgefer checkpoint, or has no training state (a
            checkpoint saved for export only cannot resume a run). One line.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint {path} does not exist")
    payload = _safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an edgefer checkpoint, so it cannot resume a training run")
    state = payload.get("training")
    if not isinstance(state, dict):
        raise ModelFileError(f"{path} is an edgefer checkpoint without training state (no 'training' entry): it "
                             "can be exported or evaluated, not resumed")
    return state


def _safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, its failures as one-line ModelFileErrors."""
    try:
        with warnings.catch_warnings():  # torch's note on an unusual pickle protocol: the error below says enough
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._weights_only_unpickler")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's safe unpickler refused something (a global such as os.system, an opcode it does not allow):
        # nothing ran. Its message advises weights_only=False, which would run that code; edgefer never passes it on.
        names = _unsafe_globals(path)
        what = f"Python objects ({names})" if names else "Python objects (or is not a PyTorch file)"
        raise ModelFileError(f"{path} holds {what} that a safe load (torch.load weights_only=True) refuses; edgefer "
                             "never unpickles code: re-save the checkpoint as a state dict") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... on truncated or corrupt files
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        raise ModelFileError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {reason}") from None


def _unsafe_globals(path: Path) -> str:
    """The Python globals a zip-format checkpoint references beyond the safe set, comma-separated; '' when torch
    cannot tell (a legacy-format file, a damaged archive). Scans the pickle's opcodes; runs nothing."""
    try:
        return ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # legacy (non-zip) files and damaged archives: the refusal is reported without the names
        return ""


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the payload holds only weights_only-safe types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
