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

#: Registered models: name -> module path.
MODELS = {
    "msstnet": "edgefer.models.msstnet",
    "stt": "edgefer.models.stt",
    "fesnet": "edgefer.models.fesnet",
}


def model_module(name: str) -> ModuleType:
    """Return the module implementing model ``name``; raise ValueError for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return importlib.import_module(MODELS[name])


def build_config(name: str, **overrides):
    """Build model ``name``'s config with ``overrides`` applied; raise ValueError naming any unknown field."""
    config_cls = model_module(name).Config
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{name} config has no field(s) {unknown}; fields are {sorted(fields)}")
    return config_cls(**overrides)


def build_model(name: str, *, kernels: str = "auto", **overrides):
    """Build model ``name`` (see :data:`MODELS`) with config ``overrides``; ``kernels`` picks the op backend.

    Raises:
        ValueError: unknown model name or config field.
    """
    return model_module(name).Model(build_config(name, **overrides), kernels=kernels)
