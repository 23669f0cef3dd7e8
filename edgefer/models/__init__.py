"""The model zoo's PyTorch side: ``build_model(name, **overrides)``.

Each model lives in its own module exposing ``Config`` (a dataclass holding every architectural choice, the
design note's *(ours)* ones included) and ``Model`` (an ``nn.Module`` built as ``Model(config, kernels=...)``)
with a ``metadata_fields()`` method giving the :class:`edgefer.metadata.ModelMetadata` fields that describe its
input and output. Importing this package imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from ..errors import ArgumentError

#: Registered models: name -> module path.
MODELS = {
    "msstnet": "edgefer.models.msstnet",
    "stt": "edgefer.models.stt",
    "fesnet": "edgefer.models.fesnet",
}


def model_module(name: str) -> ModuleType:
    """Return the module implementing model ``name``.

    Raises:
        ArgumentError: ``name`` is not in :data:`MODELS` (also a ``ValueError``).
    """
    if name not in MODELS:
        raise ArgumentError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return importlib.import_module(MODELS[name])


def config_fields(name: str) -> list[str]:
    """The field names of model ``name``'s config, in declaration order; raises as :func:`model_module`."""
    return [f.name for f in dataclasses.fields(model_module(name).Config)]


def build_config(name: str, **overrides):
    """Build model ``name``'s config with ``overrides`` applied.

    Raises:
        ArgumentError: unknown model name, an override naming no config field (the message lists the fields), a
            value of another kind than the field's default (a string for an integer field), or a value the config
            refuses (its ``__post_init__`` checks). Also a ``ValueError``.
    """
    config_cls = model_module(name).Config
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    unknown = [key for key in overrides if key not in defaults]
    if unknown:
        raise ArgumentError(f"{name} config has no field {', '.join(map(repr, unknown))}; its fields are "
                            f"{', '.join(defaults)}")
    for key, value in overrides.items():
        expected = _expected_kind(defaults[key], value)
        if expected:
            raise ArgumentError(f"{name} config field {key!r} takes {expected}, got {value!r}")
    try:
        return config_cls(**overrides)
    except (TypeError, ValueError) as exc:  # __post_init__ checks; TypeError for list elements of the wrong type
        raise ArgumentError(f"invalid {name} config: {exc}") from None


def _expected_kind(default, value) -> str | None:
    """What a config field whose default is ``default`` takes, when ``value`` is not that kind; None when it is.

    Every config field has a default of one of these kinds; list elements are left to the config's own checks.
    """
    kinds = ((bool, (bool,), "true or false"), (int, (int,), "an integer"), (float, (int, float), "a number"),
             (str, (str,), "a string"), (tuple, (list, tuple), "a list"))
    for default_type, accepted, description in kinds:
        if isinstance(default, default_type):
            fits = isinstance(value, accepted) and (default_type is bool or not isinstance(value, bool))
            return None if fits else description
    return None


def build_model(name: str, *, kernels: str = "auto", **overrides):
    """Build model ``name`` (see :data:`MODELS`) with config ``overrides``; ``kernels`` picks the op backend.

    Raises:
        ArgumentError: unknown model name or config field, or a config value out of range (also a ``ValueError``).
    """
    return model_module(name).Model(build_config(name, **overrides), kernels=kernels)
