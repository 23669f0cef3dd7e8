"""Optimization-profile arithmetic for the engine's batch axis (issue 12)."""

import pytest

from cli_support import assert_usage_error, run_cli
from edgefer.errors import ArgumentError
from edgefer.export.tensorrt_profile import (DEFAULT_BATCH, MAX_BATCH, MAX_TENSOR_ELEMENTS, BatchProfile,
                                             make_profile, parse_batch, profile_shapes)

CLIP = (16, 3, 112, 112)


def test_parse_and_shapes():
    profile = parse_batch("1:4:8")
    assert profile.as_tuple() == (1, 4, 8) and str(profile) == "1:4:8"
    assert parse_batch("2").as_tuple() == (2, 2, 2)
    assert profile_shapes((-1, *CLIP), profile) == ((1, *CLIP), (4, *CLIP), (8, *CLIP))
    assert profile_shapes(("batch", *CLIP), profile)[2] == (8, *CLIP)  # an ONNX symbolic batch
    assert profile.contains(1) and profile.contains(8) and not profile.contains(9) and not profile.contains(0)


@pytest.mark.parametrize("kwargs,expected", [
    ({}, DEFAULT_BATCH),
    ({"max_batch": 2}, (1, 2, 2)),
    ({"min_batch": 16}, (16, 16, 16)),
    ({"opt_batch": 6}, (1, 6, 8)),
    ({"opt_batch": 32}, (1, 32, 32)),
    ({"batch": "2:4:16", "max_batch": 32}, (2, 4, 32)),
    ({"batch": (1, 1, 1)}, (1, 1, 1)),
])
def test_make_profile(kwargs, expected):
    assert make_profile(**kwargs).as_tuple() == expected


@pytest.mark.parametrize("call,needle", [
    (lambda: BatchProfile(4, 2, 8), "min <= opt <= max"),
    (lambda: BatchProfile(1, 8, 4), "min <= opt <= max"),
    (lambda: BatchProfile(0, 1, 1), ">= 1"),
    (lambda: BatchProfile(1, 1, MAX_BATCH + 1), "exceeds"),
    (lambda: BatchProfile(1, 2.5, 4), "integer"),
    (lambda: parse_batch("1:2"), "MIN:OPT:MAX"),
    (lambda: parse_batch("a:b:c"), "integers"),
    (lambda: make_profile(batch="1:4:8", max_batch=2), "min <= opt <= max"),
    (lambda: make_profile(min_batch=0), ">= 1"),
    (lambda: make_profile(batch=(1, 2)), "(min, opt, max)"),
])
def test_bad_profiles(call, needle):
    with pytest.raises(ArgumentError, match=needle):
        call()


def test_profile_against_the_graph():
    with pytest.raises(ArgumentError, match="fixed batch of 1"):
        profile_shapes((1, *CLIP), parse_batch("1:4:8"))
    assert profile_shapes((1, *CLIP), parse_batch("1")) == ((1, *CLIP),) * 3
    with pytest.raises(ArgumentError, match="dynamic"):
        profile_shapes((-1, -1, 3, 112, 112), parse_batch("1:4:8"))
    per_clip = 16 * 3 * 112 * 112
    ok = MAX_TENSOR_ELEMENTS // per_clip
    assert profile_shapes((-1, *CLIP), BatchProfile(1, 1, ok))[2][0] == ok
    with pytest.raises(ArgumentError, match=f"max batch <= {ok}"):
        profile_shapes((-1, *CLIP), BatchProfile(1, 1, ok + 1))


def test_cli_refuses_a_bad_profile_as_a_usage_error():
    assert_usage_error(run_cli("export", "msstnet", "--untrained", "--format", "engine", "--out", "x.engine",
                               "--batch", "8:4:1"), "--batch")
