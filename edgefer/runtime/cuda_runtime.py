"""The CUDA runtime calls the TensorRT backend makes, through NVIDIA's cuda-python, whichever line is installed.

cuda-python moved its runtime bindings: the 13.x line has them as ``cuda.bindings.runtime`` and removed the old
``cuda.cudart`` module (cuda-bindings 13.0 release notes); the 12.x line, the one JetPack 6 (CUDA 12.6) pairs
with, has ``cuda.cudart`` (and, from 12.6.1 on, ``cuda.bindings.runtime`` too). :func:`import_cudart` takes the
new path first, then the old one. Both expose the same functions (the CUDA Runtime API's names) returning a tuple
whose first item is a ``cudaError_t``: ``cudaMalloc(size) -> (err, ptr)``, ``cudaMallocHost(size) -> (err,
ptr)``, ``cudaMemcpyAsync(dst, src, count, kind, stream) -> (err,)``, ``cudaStreamCreate() -> (err, stream)``,
``cudaStreamSynchronize(stream)``, ``cudaGetDeviceCount() -> (err, n)``, ``cudaGetDeviceProperties(device) ->
(err, prop)`` (``prop.name``, ``prop.major``, ``prop.minor``).

This module only wraps those calls so that an error becomes one line naming the call; it is not a backend.
Torch-free; nothing is imported until :func:`import_cudart` runs.
"""

from __future__ import annotations

import importlib

from ..errors import BackendUnavailableError

#: Module paths tried in order: cuda-python 13.x (and >= 12.6.1), then the 12.x ``cuda.cudart``.
MODULES = ("cuda.bindings.runtime", "cuda.cudart")
INSTALL_HINT = ("install NVIDIA's cuda-python matching the CUDA of the TensorRT in use: on JetPack 6 (CUDA 12.6) "
                "`pip install 'cuda-python>=12.6,<13'`, with CUDA 13 `pip install 'cuda-python>=13'`")


class CudaError(BackendUnavailableError):
    """A CUDA runtime call failed (no device, out of memory, an illegal address...): the GPU backend cannot run."""


def import_cudart():
    """The cuda-python runtime module: ``cuda.bindings.runtime`` if importable, else ``cuda.cudart``.

    Raises:
        BackendUnavailableError: neither imports (the message gives the install command).
    """
    errors = []
    for name in MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise BackendUnavailableError(f"cuda-python is not installed (import {' / '.join(MODULES)} failed): "
                                  f"{INSTALL_HINT}")


class CudaRuntime:
    """The CUDA runtime calls the engine runner makes, each checked.

    Args:
        cudart: the module :func:`import_cudart` returned (default: import it now).

    Attributes:
        module: that module's name (``"cuda.bindings.runtime"`` or ``"cuda.cudart"``).
    """

    def __init__(self, cudart=None) -> None:
        self.rt = cudart if cudart is not None else import_cudart()
        self.module = getattr(self.rt, "__name__", "cudart")

    def call(self, name: str, *args):
        """``cudart.<name>(*args)`` with its error checked; returns the results after the error code (a single
        value unwrapped, None when there is none).

        Raises:
            CudaError: the call returned an error other than ``cudaSuccess`` (the message has CUDA's own string).
        """
        result = getattr(self.rt, name)(*args)
        if not isinstance(result, tuple):
            result = (result,)
        err, values = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise CudaError(f"CUDA {name} failed: {self.error_string(err)}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def error_string(self, err) -> str:
        """CUDA's name and text of an error code, e.g. ``cudaErrorNoDevice (no CUDA-capable device is
        detected)``."""
        try:
            text = self.rt.cudaGetErrorString(err)
            text = text[1] if isinstance(text, tuple) else text
            text = text.decode() if isinstance(text, bytes) else str(text)
        except Exception:  # the error code itself is the message then
            text = ""
        name = getattr(err, "name", str(err))
        return f"{name} ({text})" if text else name

    def device_count(self) -> int:
        """The CUDA devices visible (0 when the driver finds none, instead of an error)."""
        result = self.rt.cudaGetDeviceCount()
        err, count = result[0], result[1]
        return int(count) if err == self.rt.cudaError_t.cudaSuccess else 0

    def current_device(self) -> int:
        """The device this thread's calls go to."""
        return int(self.call("cudaGetDevice"))

    def device(self, index: int | None = None) -> tuple[str, str]:
        """(compute capability ``"MAJOR.MINOR"``, device name) of device ``index`` (default: the current one)."""
        prop = self.call("cudaGetDeviceProperties", self.current_device() if index is None else index)
        name = prop.name
        name = name.decode(errors="replace") if isinstance(name, (bytes, bytearray)) else str(name)
        return f"{prop.major}.{prop.minor}", name.split("\x00", 1)[0].strip()

    def malloc(self, nbytes: int) -> int:
        """Device memory of ``nbytes``: its address."""
        return int(self.call("cudaMalloc", nbytes))

    def malloc_host(self, nbytes: int) -> int:
        """Pinned (page-locked) host memory of ``nbytes``: its address."""
        return int(self.call("cudaMallocHost", nbytes))

    def free(self, ptr: int) -> None:
        self.call("cudaFree", ptr)

    def free_host(self, ptr: int) -> None:
        self.call("cudaFreeHost", ptr)

    def stream(self):
        """A new CUDA stream (the bindings' ``cudaStream_t``; ``int(stream)`` is its handle)."""
        return self.call("cudaStreamCreate")

    def destroy_stream(self, stream) -> None:
        self.call("cudaStreamDestroy", stream)

    def copy_to_device(self, dst: int, src: int, nbytes: int, stream) -> None:
        """Asynchronous host -> device copy on ``stream``."""
        self.call("cudaMemcpyAsync", dst, src, nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def copy_to_host(self, dst: int, src: int, nbytes: int, stream) -> None:
        """Asynchronous device -> host copy on ``stream``."""
        self.call("cudaMemcpyAsync", dst, src, nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def synchronize(self, stream) -> None:
        """Wait until everything queued on ``stream`` is done."""
        self.call("cudaStreamSynchronize", stream)
