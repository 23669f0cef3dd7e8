"""The GPU kernel benchmark (edgefer.bench.gpu): the parts that run without a GPU.

The timing itself needs CUDA; here: every SDPA row computes the same contract as the op it is compared with,
the speedup column is relative to the fastest SDPA row, and run() refuses clearly without a CUDA device.
"""

from __future__ import annotations

import pytest
import torch

from edgefer.errors import BackendUnavailableError
from edgefer.ops import reference

pytest.importorskip("triton")
from edgefer.bench import gpu  # noqa: E402


def test_sdpa_rows_compute_the_temporal_attention_contract():
    qkv = torch.randn(2, 16, 3, 3 * 2 * 16, generator=torch.Generator().manual_seed(0))
    expected = reference.temporal_attention(qkv, 2)
    accepted = []
    for name, backend in gpu.sdpa_backends().items():
        try:
            out = gpu.sdpa_op(backend)(qkv, 2)
        except RuntimeError:  # e.g. efficient / cudnn have no CPU kernel
            continue
        accepted.append(name)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert "math" in accepted


def test_speedups_are_against_the_fastest_sdpa_op_row():
    rows = [gpu.Row("s", "triton", 0.01, 1.0, 0.03, 1.0), gpu.Row("s", "sdpa-flash", 0.04, 1.0, 0.09, 1.0),
            gpu.Row("s", "sdpa-math", 0.05, 1.0, 0.2, 1.0), gpu.Row("s", "sdpa-flash (core)", 0.001, 1.0),
            gpu.Row("s", "sdpa-cudnn", note="rejects: no kernel")]
    lines = {line.split()[0]: line for line in gpu.format_rows(rows, None).splitlines() if line.startswith(("triton", "sdpa"))}
    assert lines["triton"].split()[-2:] == ["4.00", "3.00"]  # 0.04 / 0.01 and 0.09 / 0.03
    assert "rejects: no kernel" in lines["sdpa-cudnn"]


def test_run_refuses_a_cpu_device():
    with pytest.raises(ValueError, match="CUDA device"):
        gpu.run("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_run_without_cuda_raises_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        gpu.run("cuda")
