"""``edgefer bench model`` machinery (issue 15) on a small MSSTNet: the rows, the columns, the peaks.

Performance claims come from the table a full run prints, not from this test; here the figures only have to be
consistent with each other.
"""

import io
import math

import pytest

from edgefer.bench import model as bench

SMALL = {"dim": 64, "num_heads": 4, "mlp_hidden": 128}


@pytest.fixture(scope="module")
def report():
    out = io.StringIO()
    result = bench.run(batches=(1, 2), repeats=1, out=out, config=SMALL, gemm_size=64, settle_s=0.0)
    return result, out.getvalue()


def test_one_table_names_the_machine_and_every_row(report):
    result, text = report
    from edgefer.bench.machine import cpu_isa

    assert cpu_isa() in text and "GFLOP per clip" in text and "MatMulInteger" in text
    for name in bench.ROWS:
        assert text.count(f"| {name:<17} |") == 2, name
    assert "not available" in text  # int8 + custom ops, with the reason
    assert [r.batch for r in result.rows] == [1] * 5 + [2] * 5


def test_the_columns_are_consistent(report):
    result, _ = report
    assert 5 < result.gflop_per_clip < 30  # the ResNet-18 backbone on 16 frames dominates
    assert result.peaks["fp32"] > 0 and result.peaks["int8"] > 0
    eager = {r.batch: r for r in result.rows if r.name == "eager"}
    for r in result.rows:
        if r.note:
            assert math.isnan(r.ms)
            continue
        assert r.ms > 0
        assert math.isclose(r.clips_per_s, r.batch * 1e3 / r.ms)
        assert math.isclose(r.gflops, r.gflop_per_clip * r.clips_per_s)
        assert math.isclose(r.vs_eager, eager[r.batch].ms / r.ms)
        assert r.peak_gflops == result.peaks["int8" if "int8" in r.name else "fp32"]
    # the fp32 graphs compute what eager computes; the int8 one approximately
    assert all(v < 1e-3 for k, v in result.max_abs_diff.items() if "int8" not in k)


def test_bad_arguments_are_refused():
    from edgefer.errors import ArgumentError

    with pytest.raises(ArgumentError, match="repeats"):
        bench.run(batches=(1,), repeats=0, config=SMALL)
    with pytest.raises(ArgumentError):
        bench.run(batches=(0,), config=SMALL)
