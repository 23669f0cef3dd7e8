"""TensorRT backend: ``edgefer.load("msstnet.engine")`` on a CUDA GPU, with no torch.

Follows the TensorRT Python API (``tensorrt.Runtime.deserialize_cuda_engine``, ``ICudaEngine`` I/O tensor
queries, ``IExecutionContext.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``) and drives CUDA
through cuda-python (:mod:`edgefer.runtime.cuda_runtime`, both its 12.x and 13.x import paths).

Before the plan is deserialized, its metadata (:mod:`edgefer.runtime.engine_file`) is checked against this
machine: the TensorRT version (a plan only deserializes on the version that built it), the GPU's compute
capability (a plan holds kernels for one SM) and its name (a different GPU of the same SM runs the plan but may
run it slower: a warning). Then the plugin libraries the metadata lists are loaded
(``tensorrt.get_plugin_registry().load_library``), since a plan using a plugin can only be deserialized once its
creator is registered.

:class:`EngineRunner` owns one execution context, one CUDA stream, and pinned host + device buffers for the input
and the first output, sized for the largest batch seen and reused: a steady-state call allocates no CUDA or
pinned memory (only the small float32 array it returns), and grows its buffers only when a larger batch than any
before arrives. Calls are serialized by the caller (one context, one stream: not thread-safe).
"""

from __future__ import annotations

import ctypes
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ArgumentError, BackendUnavailableError, MetadataError, ModelFileError
from ..metadata import ModelMetadata
from .base import LoadedModel
from .cuda_runtime import CudaRuntime
from .engine_file import read_engine

#: The library edgefer's TensorRT plugins build to (csrc/tensorrt/, installed in the edgefer package folder).
PLUGIN_LIBRARY = "libedgefer_tensorrt_plugins.so"
TENSORRT_HINT = ("TensorRT is not installed (import tensorrt failed): on JetPack 6 `sudo apt install "
                 "python3-libnvinfer` (TensorRT 10.3 for the system Python 3.10; in a venv, create it with "
                 "--system-site-packages); on a desktop `pip install tensorrt`")


def import_tensorrt():
    """The ``tensorrt`` module.

    Raises:
        BackendUnavailableError: it cannot be imported (the message says how to install it on JetPack).
    """
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError(TENSORRT_HINT) from None
    return tensorrt


def release(version: str) -> tuple[int, ...]:
    """The release of a TensorRT version string, its first three numbers: ``"10.3.0.30"`` -> ``(10, 3, 0)``."""
    return tuple(int(p) for p in re.findall(r"\d+", str(version))[:3])


def check_machine(metadata: ModelMetadata, tensorrt_version: str, compute_capability: str, device_name: str,
                  source: str) -> None:
    """Refuse an engine built for another TensorRT or another GPU, before TensorRT sees it.

    Raises:
        MetadataError: the metadata lacks the TensorRT version or compute capability (not an edgefer engine), the
            TensorRT release differs (major.minor.patch), or the compute capability differs; the message says
            to rebuild the engine on the target.
    Warns:
        RuntimeWarning: same compute capability, another device name (TensorRT runs it, possibly slower).
    """
    rebuild = "rebuild it on this machine: `edgefer export MODEL --format engine ...` (engines are tied to the " \
              "TensorRT version and the GPU they were built on)"
    if not metadata.tensorrt_version or not metadata.compute_capability:
        raise MetadataError(f"{source}: the metadata does not record the TensorRT version and GPU the engine was "
                            f"built for; {rebuild}")
    if release(metadata.tensorrt_version) != release(tensorrt_version):
        raise MetadataError(f"{source} was built with TensorRT {metadata.tensorrt_version}, this machine has "
                            f"TensorRT {tensorrt_version}; {rebuild}")
    if metadata.compute_capability != compute_capability:
        raise MetadataError(f"{source} was built for compute capability {metadata.compute_capability} "
                            f"({metadata.device_name or 'unknown GPU'}), this GPU is {compute_capability} "
                            f"({device_name}); {rebuild}")
    if metadata.device_name and device_name and metadata.device_name != device_name:
        warnings.warn(f"{source} was built on {metadata.device_name}, this GPU is {device_name} (same compute "
                      f"capability {compute_capability}): it runs, possibly slower; rebuild it here for the best "
                      "kernels", RuntimeWarning, stacklevel=3)


def plugin_paths(metadata: ModelMetadata, engine: str | Path, given: Sequence[str | Path] | None) -> list[Path]:
    """The plugin libraries to load for an engine: ``given`` paths if any, else each library the metadata lists,
    found beside the engine or in the edgefer package folder (where the build installs it).

    Raises:
        BackendUnavailableError: a library is found in neither place (the message names it and how to build it).
    """
    if given is not None:
        paths = [Path(p) for p in given]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise BackendUnavailableError(f"TensorRT plugin library {', '.join(missing)} does not exist")
        return paths
    found = []
    package = Path(__file__).resolve().parent.parent
    for name in metadata.plugin_libraries:
        if Path(name).name != name:
            raise MetadataError(f"{engine}: plugin library {name!r} must be a file name, not a path")
        candidates = [Path(engine).resolve().parent / name, package / name]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise BackendUnavailableError(
                f"{engine} needs the TensorRT plugin library {name}, found neither beside the engine nor in "
                f"{package}: build edgefer with TensorRT (pip install . with -Ccmake.define.TensorRT_INCLUDE_DIR="
                "<TensorRT include folder>) or pass plugins=[path]")
        found.append(hit)
    return found


class _Logger:
    """A ``tensorrt.ILogger`` that keeps TensorRT's errors (for the message) and passes warnings on."""

    def __new__(cls, trt):
        class Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.errors: list[str] = []

            def log(self, severity, msg):
                if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                    self.errors.append(" ".join(str(msg).split()))
                elif severity == trt.ILogger.Severity.WARNING:
                    warnings.warn(f"TensorRT: {msg}", RuntimeWarning, stacklevel=2)

        return Logger()


#: Plugin libraries this process has loaded, by resolved path: TensorRT's plugin registry may refuse a second
#: ``load_library`` of the same file (its creators are registered already), so each is loaded once per process.
_LOADED_PLUGINS: dict[Path, object] = {}


def _load_plugin_library(trt, library: Path, logger) -> None:
    """Load ``library`` into TensorRT's plugin registry once per process (before any engine that uses it).

    Raises:
        BackendUnavailableError: TensorRT could not load it (its own errors in the message).
    """
    key = library.resolve()
    if key in _LOADED_PLUGINS:
        return
    try:
        handle = trt.get_plugin_registry().load_library(str(key))
    except Exception as exc:  # TensorRT raises its own exception types
        handle, why = None, str(exc)
    else:
        why = "; ".join(logger.errors) or "load_library returned nothing"
    if handle is None:
        raise BackendUnavailableError(f"TensorRT could not load the plugin library {library}: {why}")
    _LOADED_PLUGINS[key] = handle


class EngineRunner:
    """One deserialized engine, run on its own stream with reusable pinned and device buffers.

    Args:
        plan: the TensorRT plan's bytes.
        source: the file, for messages.
        plugins: plugin library paths to load before deserializing.
        trt: the tensorrt module (default: imported).
        cuda: a :class:`CudaRuntime` (default: created; it needs a CUDA device).

    Attributes:
        input_name, output_name: the engine's input tensor and first output tensor.
        item_shape: the input's dims after the batch.
        batch_range: (min, max) batch sizes of the engine's optimization profile 0.

    Raises:
        BackendUnavailableError: TensorRT or cuda-python missing, no CUDA device, a plugin library that does not
            load.
        ModelFileError: TensorRT cannot deserialize the plan (its own errors in the message), or the engine does
            not have one float32 input with a dynamic batch axis.
    """

    def __init__(self, plan: bytes, source: str, *, plugins: Sequence[Path] = (), trt=None,
                 cuda: CudaRuntime | None = None) -> None:
        self.trt = trt or import_tensorrt()
        self.cuda = cuda or CudaRuntime()
        self.source = source
        if self.cuda.device_count() < 1:
            raise BackendUnavailableError("no CUDA device is visible (cudaGetDeviceCount found none): a TensorRT "
                                          "engine needs an NVIDIA GPU; load the .onnx export on the CPU instead")
        self.logger = _Logger(self.trt)
        for library in plugins:
            _load_plugin_library(self.trt, Path(library), self.logger)
        self.runtime = self.trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(bytes(plan))
        if self.engine is None:
            raise ModelFileError(f"TensorRT cannot deserialize {source}: "
                                 f"{'; '.join(self.logger.errors) or 'no reason given'}")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise ModelFileError(f"TensorRT cannot create an execution context for {source} (out of GPU memory?): "
                                 f"{'; '.join(self.logger.errors) or 'no reason given'}")
        self._inspect()
        self.stream = self.cuda.stream()
        self._capacity = 0
        self._buffers: list[tuple[str, int]] = []

    def _inspect(self) -> None:
        trt, engine = self.trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise ModelFileError(f"{self.source}: edgefer runs engines with one input and an output; this one has "
                                 f"inputs {inputs} and outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        if engine.get_tensor_dtype(self.input_name) != trt.DataType.FLOAT:
            raise ModelFileError(f"{self.source}: the engine's input is {engine.get_tensor_dtype(self.input_name)}, "
                                 "edgefer feeds float32 clips")
        self.output_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.output_name)))
        shape = list(engine.get_tensor_shape(self.input_name))
        self.item_shape = tuple(int(d) for d in shape[1:])
        low, _, high = engine.get_tensor_profile_shape(self.input_name, 0)
        self.batch_range = (int(low[0]), int(high[0]))

    def _ensure(self, batch: int, out_item: tuple[int, ...]) -> None:
        """Pinned host and device buffers for ``batch`` clips, reused unless a larger batch arrives."""
        if batch <= self._capacity:
            return
        self._release()
        in_bytes = batch * int(np.prod(self.item_shape)) * 4
        out_bytes = batch * int(np.prod(out_item)) * self.output_dtype.itemsize
        self._out_item = out_item
        self._host_in_ptr = self.cuda.malloc_host(in_bytes)
        self._buffers.append(("host", self._host_in_ptr))
        self._host_out_ptr = self.cuda.malloc_host(out_bytes)
        self._buffers.append(("host", self._host_out_ptr))
        self._dev_in = self.cuda.malloc(in_bytes)
        self._buffers.append(("device", self._dev_in))
        self._dev_out = self.cuda.malloc(out_bytes)
        self._buffers.append(("device", self._dev_out))
        self._host_in = np.frombuffer((ctypes.c_uint8 * in_bytes).from_address(self._host_in_ptr),
                                      np.float32).reshape(batch, *self.item_shape)
        self._host_out = np.frombuffer((ctypes.c_uint8 * out_bytes).from_address(self._host_out_ptr),
                                       self.output_dtype).reshape(batch, *out_item)
        self.context.set_tensor_address(self.input_name, self._dev_in)
        self.context.set_tensor_address(self.output_name, self._dev_out)
        self._capacity = batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The engine's first output for a float32 ``batch`` of shape (N, *item_shape), as a new float32 array.

        Raises:
            ArgumentError: N outside the optimization profile's [min, max], or the wrong item shape.
            ModelFileError: TensorRT refused the shape or failed to run (its errors in the message).
            CudaError: a CUDA copy or synchronization failed.
        """
        n = len(batch)
        self.logger.errors.clear()  # the messages below report this call's errors only
        low, high = self.batch_range
        if not low <= n <= high:
            raise ArgumentError(f"a batch of {n} is outside {self.source}'s optimization profile (batch {low} to "
                                f"{high}); pass {low} to {high} clips a call, or rebuild the engine with "
                                f"`edgefer export --format engine --batch MIN:OPT:MAX`")
        if tuple(batch.shape[1:]) != self.item_shape:
            raise ArgumentError(f"{self.source} takes items of shape {self.item_shape}, got {tuple(batch.shape[1:])}")
        if not self.context.set_input_shape(self.input_name, (n, *self.item_shape)):
            raise ModelFileError(f"TensorRT refused input shape {(n, *self.item_shape)} for {self.source}: "
                                 f"{'; '.join(self.logger.errors) or 'no reason given'}")
        out_item = tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))[1:]
        if self._capacity and out_item != self._out_item:
            self._capacity = 0  # another output shape: new buffers
        self._ensure(n, out_item)
        np.copyto(self._host_in[:n], batch, casting="same_kind")
        in_bytes = self._host_in[:n].nbytes
        out_bytes = self._host_out[:n].nbytes
        self.cuda.copy_to_device(self._dev_in, self._host_in_ptr, in_bytes, self.stream)
        if not self.context.execute_async_v3(int(self.stream)):
            raise ModelFileError(f"TensorRT failed to run {self.source} on a batch of {n}: "
                                 f"{'; '.join(self.logger.errors) or 'no reason given'}")
        self.cuda.copy_to_host(self._host_out_ptr, self._dev_out, out_bytes, self.stream)
        self.cuda.synchronize(self.stream)
        return self._host_out[:n].astype(np.float32)

    def _release(self) -> None:
        for kind, ptr in reversed(self._buffers):
            (self.cuda.free_host if kind == "host" else self.cuda.free)(ptr)
        self._buffers, self._capacity = [], 0

    def close(self) -> None:
        """Free the buffers and the stream (also done when the runner is garbage-collected)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self.context = None
        self._release()
        self.cuda.destroy_stream(self.stream)

    _closed = False

    def __del__(self) -> None:
        try:
            if hasattr(self, "stream"):
                self.close()
        except Exception:  # interpreter shutdown: CUDA may be gone already
            pass


class TensorRTModel(LoadedModel):
    """An edgefer engine (``NAME.engine`` + ``NAME.engine.json``, written by ``edgefer export --format engine``).

    Args:
        path: the engine file.
        device: ``"cuda"`` (the current CUDA device); ``"cpu"`` is refused.
        plugins: plugin library paths to load instead of those the metadata lists (found beside the engine or in
            the edgefer package folder).

    Raises:
        ArgumentError: ``device`` is not ``"cuda"``.
        ModelFileError: a missing, truncated or foreign file (:func:`~edgefer.runtime.engine_file.read_engine`),
            or one TensorRT cannot deserialize.
        MetadataError: no edgefer metadata; metadata of another TensorRT version or GPU (rebuild on the target);
            or an engine input that contradicts the metadata.
        BackendUnavailableError: TensorRT or cuda-python missing, no CUDA device, a plugin library missing or not
            loadable.
    """

    backend = "tensorrt"

    def __init__(self, path: str | Path, *, device: str = "cuda", plugins: Sequence[str | Path] | None = None) -> None:
        path = str(path)
        if device != "cuda":
            raise ArgumentError(f"{path} is a TensorRT engine, which runs on a CUDA GPU: use device='cuda' (or load "
                                f"the .onnx export for {device!r})")
        engine = read_engine(path)
        metadata = engine.metadata
        trt = import_tensorrt()
        cuda = CudaRuntime()
        if cuda.device_count() < 1:
            raise BackendUnavailableError("no CUDA device is visible (cudaGetDeviceCount found none): a TensorRT "
                                          "engine needs an NVIDIA GPU; load the .onnx export on the CPU instead")
        capability, name = cuda.device()
        check_machine(metadata, trt.__version__, capability, name, path)
        self.runner = EngineRunner(engine.plan, path, plugins=plugin_paths(metadata, path, plugins), trt=trt,
                                   cuda=cuda)
        expected = ((metadata.clip_length, metadata.channels, *metadata.frame_size)
                    if metadata.input_layout == "BTCHW" else (metadata.channels, *metadata.frame_size))
        if self.runner.item_shape != tuple(expected):
            raise MetadataError(f"{path}: metadata describes inputs (batch, {', '.join(map(str, expected))}) but the "
                                f"engine's input is {['batch', *self.runner.item_shape]}")
        super().__init__(metadata, path)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self.runner.run(np.ascontiguousarray(batch, dtype=np.float32))
