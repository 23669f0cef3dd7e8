"""edgefer's CUDA kernels (csrc/cuda): they compile wherever nvcc exists; numerics where a GPU exists.

- Compile: every ``csrc/cuda/*.cu`` through nvcc for sm_75, sm_87 (Jetson Orin), sm_90 and compute_90 PTX, and
  ``kernels_cuda.h`` through the host C++ compiler without any CUDA header. Skipped, with the reason, where
  nvcc (or a C++ compiler) is missing.
- Numerics: the kernels through ``edgefer._C`` / ``torch.ops.edgefer`` on CUDA tensors (fp32 and fp16, strided
  inputs, the tiled and the streaming attention kernels) against :mod:`edgefer.ops.reference`, and the ONNX
  Runtime custom ops on the CUDA execution provider against the CPU ones. Skipped where no GPU is visible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from build_support import cpp_ops

REPO = Path(__file__).resolve().parents[1]
CUDA_DIR = REPO / "csrc" / "cuda"
INCLUDE = REPO / "csrc" / "include"
GENCODES = ["-gencode=arch=compute_75,code=sm_75", "-gencode=arch=compute_87,code=sm_87",
            "-gencode=arch=compute_90,code=sm_90", "-gencode=arch=compute_90,code=compute_90"]


def _nvcc() -> str:
    for candidate in (shutil.which("nvcc"), os.environ.get("CUDACXX"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("nvcc not found (no CUDA toolkit on this machine): the CUDA sources cannot be compiled here")


@pytest.mark.parametrize("source", sorted(p.name for p in CUDA_DIR.glob("*.cu")))
def test_cuda_source_compiles_for_every_target(source, tmp_path):
    nvcc = _nvcc()
    obj = tmp_path / (source + ".o")
    proc = subprocess.run([nvcc, "-c", str(CUDA_DIR / source), "-o", str(obj), "-std=c++17", "-O3",
                           f"-I{INCLUDE}", "-Xcompiler=-fPIC", "-Werror=all-warnings", *GENCODES],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"nvcc failed on {source}:\n{proc.stderr[-4000:]}"
    assert obj.stat().st_size > 0


def test_cuda_sources_present():
    assert {p.name for p in CUDA_DIR.glob("*.cu")} >= {"temporal_attention.cu", "multiscale_embedding.cu"}
    assert "add_library(edgefer_cuda_kernels STATIC" in (CUDA_DIR / "CMakeLists.txt").read_text()


def test_cuda_header_needs_no_cuda_headers(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no host C++ compiler found")
    src = tmp_path / "use_header.cc"
    src.write_text('#include "edgefer/kernels_cuda.h"\n'
                   "int main() { return edgefer::cuda::kOk + edgefer::cuda::kFloat16 - 1; }\n")
    proc = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", f"-I{INCLUDE}", str(src)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---- numerics on a GPU -------------------------------------------------------------------------------------------

def _cuda_ops():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch: CUDA numeric tests need one")
    cpp = cpp_ops()
    if not cpp.is_available("cuda"):
        pytest.skip("edgefer._C was built without CUDA")
    return torch, cpp


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("B,T,N,H,Dh,strided", [
    (2, 16, 16, 8, 64, False),   # MSSTNet
    (1, 16, 49, 8, 64, True),    # STT, qkv a slice of a wider buffer
    (1, 1, 1, 1, 32, False),     # B*N = 1, T = 1
    (3, 32, 5, 2, 80, True),
    (1, 100, 3, 2, 64, False),   # tile too big for shared memory: streaming kernel
    (1, 40, 2, 1, 300, False),   # streaming kernel, head dim in two register passes
])
def test_cuda_temporal_attention_matches_reference(dtype, B, T, N, H, Dh, strided):
    torch, cpp = _cuda_ops()
    from edgefer.ops import reference

    dt = getattr(torch, dtype)
    g = torch.Generator(device="cuda").manual_seed(T * 100 + Dh)
    D3 = 3 * H * Dh
    base = torch.randn(B, T, N, D3 + (7 if strided else 0), device="cuda", generator=g, dtype=torch.float32)
    qkv = base[..., :D3].to(dt)
    got = cpp.temporal_attention(qkv, H)
    torch.cuda.synchronize()
    want = reference.temporal_attention(qkv.float(), H)
    assert got.dtype == dt and got.shape == (B, T, N, H * Dh) and got.is_contiguous()
    tol = 1e-4 if dtype == "float32" else 2e-2
    torch.testing.assert_close(got.float(), want, atol=tol, rtol=0)


def test_cuda_temporal_attention_propagates_nan():
    torch, cpp = _cuda_ops()
    qkv = torch.randn(1, 4, 2, 12, device="cuda")
    qkv[0, 1, 0, 0] = float("nan")  # query of frame 1, token 0, head 0
    out = cpp.temporal_attention(qkv, 2).cpu()
    assert torch.isnan(out[0, 1, 0, :2]).all()
    assert torch.isfinite(out[0, :, 1]).all() and torch.isfinite(out[0, 0]).all()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("B,T,C,S,D,grid,residual,channels_last", [
    (2, 16, 128, 14, 512, 4, True, False),   # MSSTNet C3
    (1, 16, 256, 7, 512, 4, False, True),    # MSSTNet C4, NHWC feat
    (2, 4, 512, 4, 96, 4, True, False),      # MSSTNet C5 (P = 1)
    (1, 3, 5, 11, 70, 3, True, True),        # padding, D not a multiple of the tile
])
def test_cuda_multiscale_embedding_matches_reference(dtype, B, T, C, S, D, grid, residual, channels_last):
    torch, cpp = _cuda_ops()
    from edgefer.ops import reference

    dt = getattr(torch, dtype)
    g = torch.Generator(device="cuda").manual_seed(C + S)
    P = -(-S // grid)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=g) * scale).to(dt)

    feat = rnd(B * T, C, S, S)
    if channels_last:
        feat = feat.to(memory_format=torch.channels_last)
    args = [feat, rnd(D, C, P, P, scale=(C * P * P) ** -0.5), rnd(D), rnd(T, D), rnd(grid * grid, D),
            rnd(B, T, grid * grid, D) if residual else None]
    got = cpp.multiscale_embedding(*args, grid=grid)
    torch.cuda.synchronize()
    want = reference.multiscale_embedding(*[a.float() if a is not None else None for a in args], grid=grid)
    assert got.dtype == dt and got.shape == (B, T, grid * grid, D)
    tol = 1e-4 if dtype == "float32" else 3e-2
    torch.testing.assert_close(got.float(), want, atol=tol, rtol=0 if dtype == "float32" else 1e-2)


def test_ort_cuda_execution_provider_matches_cpu():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA execution provider (onnxruntime-gpu not installed)")
    from edgefer import ortops
    from edgefer.errors import BackendUnavailableError

    try:
        if not ortops.has_cuda():
            pytest.skip("libedgefer_ortops was built without CUDA")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    from onnx import TensorProto, helper

    node = helper.make_node("TemporalAttention", ["qkv"], ["out"], domain="edgefer", num_heads=8)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("qkv", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                  helper.make_opsetid("edgefer", 1)])
    qkv = np.random.default_rng(0).standard_normal((2, 16, 16, 1536)).astype(np.float32)
    outs = {}
    for provider in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        options = ort.SessionOptions()
        ortops.register(options)
        session = ort.InferenceSession(model.SerializeToString(), options, providers=[provider])
        assert session.get_providers()[0] == provider
        outs[provider] = session.run(None, {"qkv": qkv})[0]
    np.testing.assert_allclose(outs["CUDAExecutionProvider"], outs["CPUExecutionProvider"], atol=1e-4, rtol=0)
