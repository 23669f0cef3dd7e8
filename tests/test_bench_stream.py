"""`edgefer bench stream` (issue 13): one table naming the machine, cache vs recompute per stride, on real video."""

import pytest
from cli_support import assert_one_line_error, run_cli


@pytest.mark.slow
def test_bench_stream_table_on_real_video(split_msstnet, sample_video):
    _, whole, split, _ = split_msstnet
    proc = run_cli("bench", "stream", sample_video("single_face.mp4"), "--whole", whole, "--split", split,
                   "--frames", "24", "--strides", "1", "8", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "CPUs available" in lines[0] and lines[1].split()[:2] == ["model", "stride"]
    rows = [line.split() for line in lines[2:6]]
    assert [(r[0], r[1]) for r in rows] == [("cache", "1"), ("recompute", "1"), ("cache", "8"), ("recompute", "8")]
    assert rows[0][2] == "9" and rows[2][2] == "2"  # windows: (24 - 16) / stride + 1
    assert rows[0][-1].endswith("x") and float(rows[0][-1][:-1]) > 1  # the cache is cheaper per frame at stride 1


def test_bench_stream_needs_both_models_or_none(tmp_path):
    assert_one_line_error(run_cli("bench", "stream", "--whole", tmp_path / "m.onnx"), "give both --whole and --split")
