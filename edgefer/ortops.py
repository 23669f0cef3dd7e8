"""Locate and register edgefer's ONNX Runtime custom-op library (torch-free).

Models exported with ``--custom-ops`` contain nodes of the ``edgefer`` domain (opset 1):

- ``TemporalAttention(qkv) -> out``: qkv (B, T, N, 3*D) float32, attributes ``num_heads`` (int) and ``scale``
  (float, 0 = 1/sqrt(D / num_heads)); out (B, T, N, D).
- ``MultiScaleEmbedding(feat, weight, bias, pos_t, pos_s[, residual]) -> out``: feat (B*T, C, H, W), weight
  (D, C, P, P), bias (D,), pos_t (T, D), pos_s (G*G, D), residual (B, T, G*G, D); attribute ``grid`` (int);
  out (B, T, G*G, D), all float32.

Their semantics are :mod:`edgefer.ops.reference`'s. On the CPU they run on the session's own intra-op thread pool
(``SessionOptions.intra_op_num_threads`` sizes it, as for every built-in op), and ``MultiScaleEmbedding`` packs a
constant weight once, when the session is created. The library ``libedgefer_ortops.so`` is built by the
package's CMake (``csrc/onnxruntime``; ONNX Runtime's headers come from Debian's ``libonnxruntime-dev``, see
``cmake/EdgeferOnnxRuntimeHeaders.cmake``) and installed next to ``edgefer._C``; the runtime registers it on a
session's options, before creating the session, when the model's metadata lists ``"edgefer"`` in ``custom_ops``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

from .errors import BackendUnavailableError

#: ONNX domain and opset version of edgefer's custom ops.
DOMAIN = "edgefer"
OPSET_VERSION = 1
#: Environment variable naming a library file to use instead of the installed one.
ENV_LIBRARY = "EDGEFER_ORTOPS_LIBRARY"


def _library_names() -> tuple[str, ...]:
    if sys.platform == "win32":
        return ("edgefer_ortops.dll",)
    if sys.platform == "darwin":
        return ("libedgefer_ortops.dylib", "libedgefer_ortops.so")
    return ("libedgefer_ortops.so",)


def _compiled_module_dirs() -> list[Path]:
    """Where ``edgefer._C`` lives, if elsewhere than this folder: an editable install keeps the compiled files in
    site-packages while the Python sources stay in the checkout, and the library is installed beside ``_C``."""
    try:
        spec = importlib.util.find_spec("edgefer._C")
    except (ImportError, ValueError):
        return []
    return [Path(spec.origin).resolve().parent] if spec and spec.origin else []


def library_path() -> str:
    """Absolute path of the custom-op shared library.

    Looks at ``$EDGEFER_ORTOPS_LIBRARY`` first, then next to this module (the wheel installs the library into
    the ``edgefer`` package folder, beside ``edgefer._C``), then beside ``edgefer._C`` where an editable install
    put it.

    Returns:
        The path, as a string, of an existing file.

    Raises:
        BackendUnavailableError: the variable names a missing file, or the library was not built/installed
            (a build without ONNX Runtime's headers skips it); the message names the library, where it was
            looked for, and how to build it.
    """
    override = os.environ.get(ENV_LIBRARY)
    if override:
        if not Path(override).is_file():
            raise BackendUnavailableError(f"{ENV_LIBRARY}={override} does not name an existing file")
        return str(Path(override).resolve())
    folders = list(dict.fromkeys((Path(__file__).resolve().parent, *_compiled_module_dirs())))
    for folder in folders:
        for name in _library_names():
            candidate = folder / name
            if candidate.is_file():
                return str(candidate)
    raise BackendUnavailableError(
        f"edgefer's ONNX Runtime custom-op library {_library_names()[0]} is not installed (looked in "
        f"{', '.join(map(str, folders))}). Build it by installing edgefer from source (`pip install .` in a "
        "checkout) with a C++17 compiler and CMake: during the install the build downloads ONNX Runtime's C headers "
        "from Debian's libonnxruntime-dev package with apt-get, so it needs apt-get and a reachable Debian mirror "
        "(or headers of your own: pip install . -Ccmake.define.EDGEFER_ONNXRUNTIME_INCLUDE_DIR=DIR, DIR holding "
        "onnxruntime_c_api.h), and it skips the library with a warning when it cannot get them; see "
        f"cmake/EdgeferOnnxRuntimeHeaders.cmake. Or set {ENV_LIBRARY} to a built library, or re-export the model "
        "without --custom-ops."
    )


def _load() -> ctypes.CDLL:
    # dlopen of the same path returns the instance ONNX Runtime loaded.
    path = library_path()
    try:
        return ctypes.CDLL(path)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot load {path}: {exc}") from None


def has_cuda() -> bool:
    """Whether the library was built with kernels for ONNX Runtime's CUDA execution provider.

    Raises:
        BackendUnavailableError: the library is missing or cannot be loaded.
    """
    return bool(_load().EdgeferOrtOpsHasCuda())


def register(session_options) -> str:
    """Register the ``edgefer`` custom-op domain on ONNX Runtime session options.

    Args:
        session_options: an ``onnxruntime.SessionOptions``; the library is added to it in place (call before
            creating the ``InferenceSession``).

    Returns:
        The library path registered.

    Raises:
        BackendUnavailableError: the library is missing, or this onnxruntime cannot load it (e.g. a runtime
            older than the C API version it was built against).
        TypeError: ``session_options`` has no ``register_custom_ops_library`` (not an ORT SessionOptions).
    """
    register_fn = getattr(session_options, "register_custom_ops_library", None)
    if register_fn is None:
        raise TypeError(f"session_options must be an onnxruntime.SessionOptions, got {type(session_options).__name__}")
    path = library_path()
    try:
        register_fn(path)
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, RuntimeException ...)
        raise BackendUnavailableError(f"onnxruntime could not register the edgefer custom-op library {path}: "
                                      f"{exc}") from None
    return path
