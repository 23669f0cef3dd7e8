"""Fuzzing the ops' integer attributes and shapes (hypothesis), near the int32 and int64 limits.

- The shared C++ checks (edgefer/checks.h, reached through ``_C._check_*``) accept exactly what the Python
  reference accepts, over small random shapes (the reference checked on meta tensors: no memory);
- on any int64 shapes, strides and attributes they never crash, answer in one line, and whatever they accept has
  an output, a strided extent and a scratch that fit in int64 (worked out here in exact integers);
- the ops themselves, on real arrays with hostile attributes and on broadcast views with axes near the limits,
  return the right values or raise ValueError / MemoryError, never crash.

Each test runs its whole hypothesis loop in one child process, so that a crash fails the test, not the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys

from build_support import compiled_module

compiled_module()  # skips (or fails, under EDGEFER_REQUIRE_BUILD=1) when edgefer._C is not built

UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

PRELUDE = r"""
import re, resource, sys
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from edgefer import _C

SETTINGS = settings(max_examples=int(sys.argv[1]), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
INT64_MAX = 2**63 - 1
# values at and around the limits the kernels' arithmetic meets (int32 on CUDA, int64 everywhere)
LIMITS = [2**31 - 1, 2**31, 2**31 + 1, 2**32 + 1, 3037000499, 3037000500, 2**62, 2**62 + 2, 6148914691236517206,
          INT64_MAX - 1, INT64_MAX]
int64s = st.one_of(st.integers(-2**63, INT64_MAX), st.sampled_from(LIMITS + [-x for x in LIMITS] + [-2**63]),
                   st.integers(-3, 16))

def one_line(message):
    assert isinstance(message, str) and message and "\n" not in message, repr(message)
"""


def run_child(code: str, examples: int, timeout: float = 240) -> str:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code, str(examples)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"the fuzzing child failed (rc {proc.returncode}):\n{proc.stderr[-6000:]}"
    return proc.stdout


AGREEMENT = r"""
import torch
from edgefer.ops import reference

def reference_accepts(check, *args):
    try:
        check(*args)
        return True
    except ValueError:
        return False

def meta(shape):
    return torch.empty(shape, device="meta")

small = st.integers(0, 9)
dims = lambda n: st.lists(small, min_size=n, max_size=n)

@SETTINGS
@given(st.lists(small, min_size=0, max_size=6), st.integers(-2, 5))
def attention_agrees(shape, heads):
    ours = _C._check_temporal_attention((shape, None), heads)
    theirs = reference_accepts(reference._check_qkv, meta(shape), heads)
    assert (ours is None) == theirs, (shape, heads, ours)
    if ours is not None:
        one_line(ours)

@st.composite
def embedding_args(draw):
    # near-valid shapes: each drawn around the one the others imply, so that every rule is met or broken
    BT, C, H, W = draw(dims(4))
    G, P, T, D = draw(st.integers(-1, 4)), draw(small), draw(st.integers(0, 4)), draw(small)
    near = lambda v: draw(st.sampled_from([v, v, v, v + 1, max(v - 1, 0)]))
    feat = draw(st.sampled_from([[BT, C, H, W], [BT, C, H]]))
    weight = [near(D), near(C), near(P), near(P)]
    gg, b = max(G, 0) ** 2, BT // T if T else 0
    residual = draw(st.sampled_from([None, [near(b), near(T), near(gg), near(D)]]))
    return feat, weight, [near(D)], [near(T), near(D)], [near(gg), near(D)], residual, G

@SETTINGS
@given(embedding_args())
def embedding_agrees(args):
    feat, weight, bias, pos_t, pos_s, residual, grid = args
    ours = _C._check_multiscale_embedding((feat, None), (weight, None), (bias, None), (pos_t, None),
                                          (pos_s, None), None if residual is None else (residual, None), grid)
    theirs = reference_accepts(reference._check_embedding, *(meta(s) for s in (feat, weight, bias, pos_t, pos_s)),
                               None if residual is None else meta(residual), grid)
    assert (ours is None) == theirs, (args, ours)
    if ours is not None:
        one_line(ours)

attention_agrees()
embedding_agrees()
print("ok")
"""


def test_checks_agree_with_the_reference():
    assert run_child(AGREEMENT, 300).strip().endswith("ok")


LIMITS_CHECK = r"""
from hypothesis import assume

def span(shape, strides):  # elements from the lowest to the highest one addressed
    if 0 in shape:
        return 0
    if strides is None:
        n = 1
        for d in shape:
            n *= d
        return n
    return 1 + sum(abs(s) * (d - 1) for d, s in zip(shape, strides))

def fits(*products):
    return all(p <= INT64_MAX for p in products)

def up(v, m):
    return -(-v // m) * m

small = st.integers(0, 8)
size = st.one_of(*[small] * 6, st.sampled_from(LIMITS))  # mostly small: about one limit a shape
strides = st.one_of(st.none(), st.none(), st.lists(int64s, min_size=4, max_size=4))
random_tensor = st.tuples(st.lists(int64s, min_size=4, max_size=4), strides)

@st.composite
def consistent_attention(draw):
    # shapes the rules accept up to size: B, T, N, H, Dh each small or at a limit
    B, T, N, H, Dh = (draw(size) for _ in range(5))
    assume(H >= 1 and 3 * H * Dh <= INT64_MAX)
    return ([B, T, N, 3 * H * Dh], draw(strides)), H

@SETTINGS
@given(st.one_of(consistent_attention(), consistent_attention(), st.tuples(random_tensor, int64s)),
       st.sampled_from([2, 4]))
def attention_limits(args, itemsize):
    qkv, heads = args
    message = _C._check_temporal_attention(qkv, heads, itemsize)
    if message is not None:
        return one_line(message)
    (B, T, N, D3), _ = qkv
    D = D3 // 3
    Dh = D // heads
    assert heads >= 1 and min(qkv[0]) >= 0 and D3 % (3 * heads) == 0
    assert fits(span(*qkv) * itemsize, B * T * N * D * itemsize), qkv
    assert fits(4 * (Dh * up(T, 16) + up(T, 4) * up(T, 16) + up(T, 4) + 80)), qkv  # attention_scratch_floats

@st.composite
def consistent_embedding(draw):
    B, C, D = (draw(size) for _ in range(3))
    T, P, G = (max(draw(size), 1) for _ in range(3))
    H, W = (G * P - draw(st.integers(0, P - 1)) for _ in range(2))  # within the cut rule
    shapes = [[B * T, C, H, W], [D, C, P, P], [D], [T, D], [G * G, D], [B, T, G * G, D]]
    assume(all(v <= INT64_MAX for shape in shapes for v in shape))
    residual = draw(st.sampled_from([None, (shapes[5], None), (shapes[5], draw(strides))]))
    return [(shapes[0], draw(strides))] + [(s, None) for s in shapes[1:5]] + [residual, G]

@st.composite
def random_embedding(draw):
    feat, residual, grid = draw(random_tensor), draw(st.none() | random_tensor), draw(int64s)
    weight = draw(st.lists(int64s, min_size=4, max_size=4))
    return [feat, (weight, None), ([weight[0]], None), ([1, weight[0]], None), ([1, weight[0]], None), residual, grid]

@SETTINGS
@given(st.one_of(consistent_embedding(), consistent_embedding(), random_embedding()))
def embedding_limits(args):
    message = _C._check_multiscale_embedding(*args)
    if message is not None:
        return one_line(message)
    feat, (weight, _), _, (pos_t, _), _, residual, grid = args
    (BT, C, H, W), (D, _, _, P), T = feat[0], weight, pos_t[0]
    B, GG, K = BT // T, grid * grid, C * P * P
    assert grid >= 1 and grid * P >= max(H, W) and (grid - 1) * P < min(H, W)
    assert fits(span(*feat) * 4, D * K * 4, B * T * GG * D * 4), args
    assert residual is None or fits(span(*residual) * 4), args
    assert fits(4 * (64 * K + 16), 4 * (up(D, 32) * K + 16)), args  # tile and packed-weight scratch

attention_limits()
embedding_limits()
print("ok")
"""


def test_checks_hold_at_the_int64_limits():
    assert run_child(LIMITS_CHECK, 600).strip().endswith("ok")


OPS = r"""
if sys.argv[2] != "asan":
    now = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (now + (3 << 30), resource.RLIM_INFINITY))  # big allocations fail fast

def attention(qkv, heads):  # numpy statement of reference.temporal_attention
    B, T, N, D3 = qkv.shape
    q, k, v = qkv.astype(np.float64).reshape(B, T, N, 3, heads, D3 // 3 // heads).transpose(3, 0, 2, 4, 1, 5)
    s = q @ k.swapaxes(-1, -2) / np.sqrt(D3 // 3 // heads)
    p = np.exp(s - s.max(-1, keepdims=True))
    return ((p / p.sum(-1, keepdims=True)) @ v).transpose(0, 3, 1, 2, 4).reshape(B, T, N, D3 // 3)

def refused(call):
    try:
        call()
    except (ValueError, MemoryError) as exc:
        return one_line(str(exc))
    raise AssertionError("accepted")

rng = np.random.default_rng(0)
QKV = rng.standard_normal((2, 5, 3, 12)).astype(np.float32)

@SETTINGS
@given(int64s | st.integers(2**63, 2**70) | st.integers(-2**70, -2**63 - 1))
def attention_heads(heads):
    if 1 <= heads and 12 % (3 * heads) == 0:
        assert np.abs(_C.temporal_attention(QKV, heads) - attention(QKV, heads)).max() <= 1e-5
    else:
        refused(lambda: _C.temporal_attention(QKV, heads))

HUGE = [2**16 + 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 + 1, 2**40, 2**62]

@SETTINGS
@given(st.integers(0, 2), st.sampled_from(HUGE), st.sampled_from([3, 6, 12]), st.integers(1, 2))
def attention_broadcast(axis, huge, D3, heads):
    # one axis of B, T, N near a limit, stride 0: every element is the same row
    shape = [1, 1, 1, D3]
    shape[axis] = huge
    row = rng.standard_normal((1, 1, 1, D3)).astype(np.float32)
    try:
        qkv = np.broadcast_to(row, shape)
    except ValueError:
        return  # more elements than numpy indexes
    if D3 % (3 * heads):
        return refused(lambda: _C.temporal_attention(qkv, heads))
    try:
        out = _C.temporal_attention(qkv, heads)
    except (ValueError, MemoryError) as exc:
        return one_line(str(exc))
    # all keys alike: softmax is uniform and every output row is v
    v = row[0, 0, 0, 2 * D3 // 3:]
    assert np.array_equal(out[0, 0, 0], v) and np.array_equal(out[-1, -1, -1], v), (shape, heads)

FEAT = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
W, BIAS, POS_T = (rng.standard_normal(s).astype(np.float32) for s in ((5, 3, 2, 2), (5,), (2, 5)))

@SETTINGS
@given(int64s | st.integers(2**63, 2**70))
def embedding_grid(grid):
    pos_s = np.zeros((16, 5), np.float32)
    if grid == 4:
        assert _C.multiscale_embedding(FEAT, W, BIAS, POS_T, pos_s, None, grid).shape == (2, 2, 16, 5)
    else:
        refused(lambda: _C.multiscale_embedding(FEAT, W, BIAS, POS_T, pos_s, None, grid))

@SETTINGS
@given(st.sampled_from(HUGE), st.booleans())
def embedding_broadcast(huge, with_residual):
    # B*T near a limit (feat of stride 0), optionally a residual of stride 0 too
    try:
        feat = np.broadcast_to(FEAT[:1], (huge, 3, 8, 8))
        res = np.broadcast_to(np.ones((1, 1, 16, 5), np.float32), (huge, 1, 16, 5)) if with_residual else None
    except ValueError:
        return
    pos_t = POS_T[:1]
    pos_s = np.zeros((16, 5), np.float32)
    try:
        out = _C.multiscale_embedding(feat, W, BIAS, pos_t, pos_s, res, 4)
    except (ValueError, MemoryError) as exc:
        return one_line(str(exc))
    one = _C.multiscale_embedding(feat[:1], W, BIAS, pos_t, pos_s, None if res is None else res[:1], 4)
    assert out.shape == (huge, 1, 16, 5) and np.array_equal(out[0], one[0]) and np.array_equal(out[-1], one[0])

attention_heads()
attention_broadcast()
embedding_grid()
embedding_broadcast()
print("ok")
"""


def test_ops_survive_hostile_integers():
    proc = subprocess.run([sys.executable, "-c", PRELUDE + OPS, "150", "asan" if UNDER_ASAN else "plain"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"the fuzzing child failed (rc {proc.returncode}):\n{proc.stderr[-6000:]}"
    assert proc.stdout.strip().endswith("ok")
