"""The cuda-python import shim (issue 12): which module it selects, and how it reports CUDA errors.

Fake modules are injected into ``sys.modules`` to test the *selection* only; the shim is no backend, and nothing
here runs CUDA."""

import enum
import sys
import types

import pytest

from edgefer.errors import BackendUnavailableError
from edgefer.runtime.cuda_runtime import CudaError, CudaRuntime, import_cudart


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2
    cudaErrorNoDevice = 100


def _fake(name):
    module = types.ModuleType(name)
    module.cudaError_t = Err
    module.cudaGetErrorString = lambda err: (Err.cudaSuccess, f"text of {err.name}".encode())
    module.cudaGetDeviceCount = lambda: (Err.cudaSuccess, 1)
    module.cudaGetDevice = lambda: (Err.cudaSuccess, 0)
    module.cudaGetDeviceProperties = lambda i: (Err.cudaSuccess, types.SimpleNamespace(
        name=b"Orin\x00\x00\x00", major=8, minor=7))
    module.cudaMalloc = lambda n: (Err.cudaErrorMemoryAllocation, 0) if n > 100 else (Err.cudaSuccess, 4096)
    return module


@pytest.fixture
def modules(monkeypatch):
    """Hide any real cuda-python, then let the test add fake ``cuda.bindings.runtime`` / ``cuda.cudart``."""
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: the import fails

    def install(*names):
        parents = {"cuda": types.ModuleType("cuda"), "cuda.bindings": types.ModuleType("cuda.bindings")}
        for name in names:
            module = _fake(name)
            monkeypatch.setitem(sys.modules, name, module)
            parent, _, leaf = name.rpartition(".")
            monkeypatch.setitem(sys.modules, parent, parents[parent])
            setattr(parents[parent], leaf, module)
            if parent == "cuda.bindings":
                monkeypatch.setitem(sys.modules, "cuda", parents["cuda"])
                parents["cuda"].bindings = parents["cuda.bindings"]
        return parents

    return install


def test_prefers_cuda_bindings_runtime(modules):
    modules("cuda.bindings.runtime", "cuda.cudart")
    assert import_cudart().__name__ == "cuda.bindings.runtime"


def test_falls_back_to_cuda_cudart_of_the_12x_line(modules):
    modules("cuda.cudart")
    assert import_cudart().__name__ == "cuda.cudart"


def test_neither_gives_the_install_hint(modules):
    with pytest.raises(BackendUnavailableError, match="cuda-python is not installed.*JetPack 6"):
        import_cudart()


def test_calls_are_checked_and_decoded(modules):
    modules("cuda.bindings.runtime")
    cuda = CudaRuntime()
    assert cuda.module == "cuda.bindings.runtime"
    assert cuda.device() == ("8.7", "Orin") and cuda.device_count() == 1
    assert cuda.malloc(64) == 4096
    with pytest.raises(CudaError, match="cudaMalloc failed: cudaErrorMemoryAllocation \\(text of"):
        cuda.malloc(1 << 20)


def test_no_device_counts_zero(modules):
    modules("cuda.cudart")
    sys.modules["cuda.cudart"].cudaGetDeviceCount = lambda: (Err.cudaErrorNoDevice, 0)
    assert CudaRuntime().device_count() == 0
