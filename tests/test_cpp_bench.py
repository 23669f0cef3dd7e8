"""`edgefer bench kernels` machinery on tiny shapes: every implementation row is measured (none silently
missing), ratios are relative to the right baseline, and the CLI wiring parses. Skipped without edgefer._C."""

from __future__ import annotations

import pytest

from build_support import compiled_module

compiled_module()
from edgefer.bench import kernels as kb  # noqa: E402
from edgefer.cli import build_parser  # noqa: E402


def test_attention_and_embedding_rows_on_tiny_shapes():
    rows = kb.bench_attention(threads=1, repeats=1, shapes=(("tiny", 1, 4, 2, 32, 2),))
    impls = [r.impl for r in rows]
    assert impls == ["edgefer cpp (torch op)", "edgefer _C (numpy, out=)", "torch SDPA (+ permute copies)",
                     "reference op (torch)", "ONNX Runtime (standard ops)", "ONNX Runtime (edgefer custom op)"]
    assert all(r.ms is not None and r.ms > 0 for r in rows), [(r.impl, r.note) for r in rows]
    sdpa = rows[2]
    assert sdpa.ratio == pytest.approx(1.0)
    assert rows[0].ratio == pytest.approx(sdpa.ms / rows[0].ms)
    emb = kb.bench_embedding(threads=1, repeats=1, shapes=(("tiny", 1, 2, 3, 7, 2, 8),))
    assert [r.impl for r in emb] == ["edgefer cpp (torch op)", "reference op (pad+conv2d)",
                                     "ONNX Runtime (standard ops)", "ONNX Runtime (edgefer custom op)"]
    assert all(r.ms is not None for r in emb), [(r.impl, r.note) for r in emb]
    table = kb.format_table(rows + emb, kb.machine(), 1)
    assert "edgefer ISA" in table and "ONNX Runtime (standard ops)" in table and table.count("\n") > 8


def test_interleaved_timing_reports_failures_and_keeps_order():
    calls = []

    def fails_on_third():
        calls.append("b")
        if calls.count("b") == 3:  # warm-up call, first timed call, then this
            raise RuntimeError("third call broke\nsecond line")

    result = kb.interleaved_ms({"a": lambda: calls.append("a"), "b": fails_on_third, "c": lambda: None},
                               repeats=4, warmup=1, rounds=2, warmup_s=0)
    assert list(result) == ["a", "b", "c"]
    assert isinstance(result["a"], float) and isinstance(result["c"], float) and result["a"] >= 0
    assert result["b"] == "RuntimeError: third call broke"
    # blocks of one warm-up and two timed calls, a's then b's; b fails on its third call (the end of its first
    # block) and is dropped, while a goes on to its second block
    assert calls == ["a"] * 3 + ["b"] * 3 + ["a"] * 3


def test_cli_parses_bench_subcommands():
    parser = build_parser()
    args = parser.parse_args(["bench", "kernels", "--device", "cpu", "--threads", "2", "--repeats", "3"])
    assert (args.device, args.threads, args.repeats) == ("cpu", 2, 3) and callable(args.func)
    args = parser.parse_args(["bench", "model", "--batch", "1", "8", "--threads", "2"])
    assert args.batch == [1, 8] and args.threads == 2 and args.repeats is None
    assert parser.parse_args(["bench", "model", "--repeats", "40"]).repeats == 40
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "kernels", "--threads", "0"])


def test_run_rejects_bad_arguments():
    with pytest.raises(ValueError, match="device"):
        kb.run("tpu")
    with pytest.raises(ValueError, match="repeats"):
        kb.run("cpu", repeats=0)
