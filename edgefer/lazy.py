"""Attributes of a package imported on first use (PEP 562 ``__getattr__``), so that importing the package stays
cheap: ``edgefer.data`` keeps its torch ``Dataset`` classes, and ``edgefer.train`` its trainer, out of
``import edgefer.data`` / ``import edgefer.train``. Torch-free."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable, Mapping


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[name]`` (a module relative to ``package``,
    e.g. ``".trainer"``) on the first access to ``name``, and keeps the value in the package's namespace so that
    later accesses do not come back here.

    Raises (from the returned function):
        AttributeError: ``name`` is not one of ``names``.
        ImportError: the module behind ``name`` cannot be imported (for instance torch is missing).
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(names[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
