"""The compiled parts a test needs: skip where they were not built, fail where the build is required.

``EDGEFER_REQUIRE_BUILD=1`` (set by ``.ci/run``) turns "edgefer._C is not built" and "the ONNX Runtime custom-op
library is not built" from a skip into a failure, so that CI proves both were compiled and installed. A machine
without a compiler or without ONNX Runtime's headers still runs every other test, with the reason in the skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: The environment variable that makes a missing compiled part a test failure.
REQUIRE_BUILD_ENV = "EDGEFER_REQUIRE_BUILD"


def build_required() -> bool:
    """Whether ``$EDGEFER_REQUIRE_BUILD`` asks for every compiled part (any value but "", "0", "false", "no")."""
    return os.environ.get(REQUIRE_BUILD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def missing_build(what: str) -> None:
    """Skip the calling test because ``what`` is not built, or fail it when the build is required."""
    if build_required():
        pytest.fail(f"{what}, but {REQUIRE_BUILD_ENV} is set: the build must provide it", pytrace=False)
    pytest.skip(what)


def compiled_module() -> ModuleType:
    """``edgefer._C``; skips (or fails, see :func:`missing_build`) when it is not built."""
    try:
        return importlib.import_module("edgefer._C")
    except ImportError as exc:
        missing_build(f"edgefer._C is not built (pip install . or build with CMake): {exc}")
        raise  # unreachable: missing_build raises


def cpp_ops() -> ModuleType:
    """``edgefer.ops.cpp`` (the torch.library ops over ``edgefer._C``); skips or fails as :func:`compiled_module`."""
    compiled_module()
    return importlib.import_module("edgefer.ops.cpp")


def ortops_library() -> str:
    """Path of ``libedgefer_ortops``; skips (or fails, see :func:`missing_build`) when it is not built."""
    from edgefer import ortops
    from edgefer.errors import BackendUnavailableError

    try:
        return ortops.library_path()
    except BackendUnavailableError as exc:
        missing_build(f"the ONNX Runtime custom-op library is not built: {exc}")
        raise  # unreachable
