"""Hostile arguments to edgefer._C: integer attributes whose products overflow int64, views whose output or scratch
cannot be had, a thread count the process cannot start. Each call must come back as one clear exception, and the
call after it must work.

Every case runs in a child process (one per group), so that a crash -- a negative return code -- fails the test
instead of killing pytest. The child prints one JSON line: what each call gave. Cases that cap the child's
address space (RLIMIT_AS) are skipped under AddressSanitizer, which reserves terabytes of it
(tools/sanitize.sh runs this file under ASan and UBSan).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from build_support import compiled_module

compiled_module()  # skips (or fails, under EDGEFER_REQUIRE_BUILD=1) when edgefer._C is not built

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

#: Helpers every child starts with.
PRELUDE = r"""
import json, re, resource, sys
import numpy as np
from edgefer import _C

def attempt(fn, *args, **kwargs):
    # {"shape": ..., "sum": ...} of the result, or {"error": "Type: message"}
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"shape": list(out.shape), "sum": float(out.sum())}

def limit_address_space(extra_bytes):
    # RLIMIT_AS = what the process maps now + extra_bytes: bigger allocations and thread stacks fail
    now = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (now + extra_bytes, resource.RLIM_INFINITY))

ones = lambda *shape: np.ones(shape, np.float32)
"""


def run_child(code: str, *args: str, timeout: float = 120):
    """Runs PRELUDE + code in a fresh interpreter (sys.argv[1:] = args); returns the JSON of its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code, *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_one_line(error: str) -> None:
    assert "\n" not in error, f"not one line: {error!r}"


# ---- attributes whose products overflow int64 ---------------------------------------------------------------------

OVERFLOW_CASES = r"""
f = ones(1, 1, 8, 8)
w, b, ps = ones(1, 1, 4, 4), ones(1), ones(4, 1)  # pos_s (4, 1): what (2**62 + 2)**2 wraps to in int64
emb = lambda grid: attempt(_C.multiscale_embedding, f, w, b, ones(1, 1), ps, None, grid)
qkv = ones(1, 4096, 1, 6)
print(json.dumps({
    "heads_3h_wraps_to_2": attempt(_C.temporal_attention, qkv, 6148914691236517206),
    "heads_int64_max": attempt(_C.temporal_attention, qkv, 2**63 - 1),
    "heads_past_int64": attempt(_C.temporal_attention, qkv, 2**64 + 2),
    "heads_int64_min": attempt(_C.temporal_attention, qkv, -2**63),
    "heads_ok": attempt(_C.temporal_attention, qkv, 2),
    "grid_square_wraps_to_4": emb(2**62 + 2),
    "grid_square_just_overflows": emb(3037000500),
    "grid_square_just_fits": emb(3037000499),
    "grid_int64_min": emb(-2**63),
    "grid_ok": emb(2),
}))
"""


@pytest.fixture(scope="module")
def overflow_results() -> dict:
    return run_child(OVERFLOW_CASES)


@pytest.mark.parametrize("case,error", [
    ("heads_3h_wraps_to_2", "ValueError: num_heads 6148914691236517206 is too large: 3 * num_heads overflows int64"),
    ("heads_int64_max", "ValueError: num_heads 9223372036854775807 is too large: 3 * num_heads overflows int64"),
    ("heads_past_int64", "ValueError: num_heads is out of range"),
    ("heads_int64_min", "ValueError: num_heads must be >= 1, got -9223372036854775808"),
    ("grid_square_wraps_to_4", "ValueError: grid 4611686018427387906 is too large: grid * grid overflows int64"),
    ("grid_square_just_overflows", "ValueError: grid 3037000500 is too large: grid * grid overflows int64"),
    ("grid_square_just_fits", "ValueError: patch size 4 does not cut a 8x8 map into a 3037000499x3037000499 grid"),
    ("grid_int64_min", "ValueError: grid must be >= 1, got -9223372036854775808"),
])
def test_attribute_overflow_is_refused(overflow_results, case, error):
    assert overflow_results[case] == {"error": error}


def test_attributes_in_range_still_work(overflow_results):
    assert overflow_results["heads_ok"] == {"shape": [1, 4096, 1, 2], "sum": 4096 * 2.0}
    assert overflow_results["grid_ok"] == {"shape": [1, 1, 4, 1], "sum": 4 * (16 + 3.0)}  # 4 x 4 ones + 3 ones


# ---- sizes the kernels cannot address ----------------------------------------------------------------------------

SIZE_CASES = r"""
import torch
row = torch.ones(1, 1, 1, 3)
emb = [torch.ones(1, 1, 1, 1), torch.ones(1), torch.ones(1, 1), torch.ones(1, 1)]
print(json.dumps({
    # 2**61 tokens of stride 0: 24 bytes of qkv, but a (2**61, 1, 1, 1) float32 output is 2**63 bytes
    "attention_output": attempt(_C.temporal_attention, row.expand(2**61, 1, 1, 3), 1),
    # the same through the embedding: feat (2**61, 1, 1, 1) of stride 0 -> out (2**61, 1, 1, 1)
    "embedding_output": attempt(_C.multiscale_embedding, torch.ones(1, 1, 1, 1).expand(2**61, 1, 1, 1), *emb, None, 1),
    # T = 2**32 + 1: the attention's T x T scratch does not fit in int64 (strides 0 except the channels)
    "attention_scratch": attempt(_C.temporal_attention, row.expand(1, 2**32 + 1, 1, 3), 1),
}))
"""


@pytest.fixture(scope="module")
def size_results() -> dict:
    return run_child(SIZE_CASES)


@pytest.mark.parametrize("case,error", [
    ("attention_output", "ValueError: the output (B, T, N, D) = (2305843009213693952, 1, 1, 1) is too large: more "
                         "than 2^63 - 1 bytes"),
    ("embedding_output", "ValueError: the output (B, T, G*G, D) = (2305843009213693952, 1, 1, 1) is too large: "
                         "more than 2^63 - 1 bytes"),
    ("attention_scratch", "ValueError: qkv's time axis (4294967297) is too long: the attention's scratch of about "
                          "T * T floats overflows int64"),
])
def test_sizes_past_int64_are_refused(size_results, case, error):
    assert size_results[case] == {"error": error}


# ---- allocation failures leave the pool usable -------------------------------------------------------------------

ALLOCATION_CASES = r"""
asan = sys.argv[1] == "asan"
if not asan:
    limit_address_space(2 << 30)  # under ASan, ASAN_OPTIONS=max_allocation_size_mb caps allocations instead
_C.set_num_threads(4)  # several workers, so that the attention's tasks run on the pool
good_qkv = np.random.default_rng(0).standard_normal((4, 16, 8, 3 * 32)).astype(np.float32)
want = _C.temporal_attention(good_qkv, 2)
f, w = ones(4, 3, 8, 8), np.full((5, 3, 2, 2), 0.1, np.float32)
emb = lambda: _C.multiscale_embedding(f, w, ones(5), ones(2, 5), ones(16, 5))
want_emb = emb()
rounds = []
for _ in range(3):
    rounds.append({
        # T = 300000: every thread's scratch is about T * T floats (360 GB), so each of the pool's tasks throws
        "attention": attempt(_C.temporal_attention, np.broadcast_to(ones(1, 1, 1, 3), (1, 300000, 2, 3)), 1),
        # K = C * P * P = 2**25: packing the weight needs 32 * K floats (4 GiB) in the calling thread
        "embedding": attempt(_C.multiscale_embedding, np.broadcast_to(ones(1, 1, 1, 1), (512, 2**25, 1, 1)),
                             np.full((1, 2**25, 1, 1), 1e-3, np.float32), ones(1), ones(1, 1), ones(1, 1), None, 1),
        "attention_after": bool(np.array_equal(_C.temporal_attention(good_qkv, 2), want)),
        "embedding_after": bool(np.array_equal(emb(), want_emb)),
        "threads": _C.get_num_threads(),
    })
print(json.dumps(rounds))
"""


def test_allocation_failures_raise_memory_error_and_the_next_call_works():
    rounds = run_child(ALLOCATION_CASES, "asan" if UNDER_ASAN else "plain")
    assert len(rounds) == 3
    for r in rounds:
        assert r["attention"] == {"error": "MemoryError: temporal_attention could not allocate its scratch memory"}
        assert r["embedding"] == {"error": "MemoryError: multiscale_embedding could not allocate its scratch memory"}
        assert r["attention_after"] and r["embedding_after"] and r["threads"] == 4, r


THREAD_START_FAILURE = r"""
_C.set_num_threads(2)
qkv = np.random.default_rng(1).standard_normal((4, 16, 8, 96)).astype(np.float32)
want = _C.temporal_attention(qkv, 2)
limit_address_space(1 << 30)  # 4096 thread stacks (8 MiB each) cannot fit
try:
    result = {"set_4096": _C.set_num_threads(4096)}
except Exception as exc:
    result = {"set_4096": f"{type(exc).__name__}: {exc}"}
result["threads_after"] = _C.get_num_threads()
result["call_after"] = bool(np.array_equal(_C.temporal_attention(qkv, 2), want))
result["set_3"] = _C.set_num_threads(3)
result["call_on_3"] = bool(np.array_equal(_C.temporal_attention(qkv, 2), want))
print(json.dumps(result))
"""


@pytest.mark.skipif(UNDER_ASAN, reason="RLIMIT_AS cannot be capped under AddressSanitizer (its shadow memory)")
def test_thread_start_failure_keeps_the_old_count():
    r = run_child(THREAD_START_FAILURE)
    error = r["set_4096"]
    assert isinstance(error, str), f"4096 threads started under a 1 GiB address-space cap: {r}"
    assert_one_line(error)
    assert error.startswith("RuntimeError: set_num_threads(4096) could not start the threads (")
    assert error.endswith("); the kernels keep 2")
    assert r["threads_after"] == 2 and r["call_after"]
    assert r["set_3"] == 3 and r["call_on_3"]
