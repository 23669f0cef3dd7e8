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
    result = bench.run(batches=(1, 2), repeats=1, out=out, config=SMALL, gemm_size=64, settle_s=0.0, profile=True)
    return result, out.getvalue()


def test_one_table_names_the_machine_and_every_row(report):
    result, text = report
    from edgefer.bench.machine import cpu_isa

    assert cpu_isa() in text and "GFLOP per clip" in text and "MatMulInteger" in text
    for name in bench.ROWS:
        assert text.count(f"| {name:<17} |") == 2, name
    rows = {(r.name, r.batch): r for r in result.rows}
    assert not rows[("int8 + custom ops", 2)].note and rows[("int8 + custom ops", 2)].ms > 0  # a figure, not a reason
    assert [r.batch for r in result.rows] == [1] * len(bench.ROWS) + [2] * len(bench.ROWS)
    from edgefer.export.tensorrt_build import tensorrt_available

    if not tensorrt_available():  # no fake numbers: the rows say why
        assert text.count("TensorRT is not installed") == 4
    stream = [r for r in result.rows if r.name in bench.STREAM_ROWS]
    assert len(stream) == 4 and all(r.ms > 0 and not r.note for r in stream)  # MSSTNet has the split, fp32 and int8


def test_the_columns_are_consistent(report):
    result, _ = report
    assert 5 < result.gflop_per_clip < 30  # the ResNet-18 backbone on 16 frames dominates
    assert result.peaks["fp32"] > 0 and result.peaks["int8"] > 0
    eager = {r.batch: r for r in result.rows if r.name == "eager"}
    for r in result.rows:
        if r.note:
            assert math.isnan(r.ms)
            continue
        if r.name in bench.STREAM_ROWS:  # ms per new frame: the encoder + head calls
            assert r.ms > 0 and math.isnan(r.peak_gflops)
            continue
        assert r.ms > 0
        assert math.isclose(r.clips_per_s, r.batch * 1e3 / r.ms)
        assert math.isclose(r.gflops, r.gflop_per_clip * r.clips_per_s)
        assert math.isclose(r.vs_eager, eager[r.batch].ms / r.ms)
        assert r.peak_gflops == result.peaks["int8" if "int8" in r.name else "fp32"]
    # the fp32 graphs compute what eager computes; the int8 one approximately
    assert all(v < 1e-3 for k, v in result.max_abs_diff.items() if "int8" not in k)


def test_the_profile_counts_what_the_int8_graphs_left(report):
    result, text = report
    profiles = {p.name: p for p in result.profiles}
    assert set(profiles) == {f"{row} B=2" for row in ("ort fp32", "ort custom ops", "ort int8", "int8 + custom ops")}
    assert "per-node profile" in text
    fp32, int8 = profiles["ort fp32 B=2"], profiles["ort int8 B=2"]
    assert fp32.int8_convs == 0 and fp32.fp32_convs > 0 and fp32.unfused_dequantize == 0
    # the default scope quantizes every convolution: none falls back to fp32 after ORT's fusions
    assert int8.int8_convs == fp32.fp32_convs and int8.fp32_convs == 0
    assert sum(int8.dequantize_feeds.values()) >= int8.unfused_dequantize > 0  # LayerNorm, GELU... read fp32
    for p in result.profiles:
        assert p.kernel_ms > 0 and abs(sum(op.share for op in p.ops) - 1) < 1e-6
        assert p.ops == sorted(p.ops, key=lambda op: -op.ms)
    custom = {op.op_type for op in profiles["int8 + custom ops B=2"].ops}
    assert {"TemporalAttention", "MultiScaleEmbedding", "QLinearConv"} <= custom


def test_bad_arguments_are_refused():
    from edgefer.errors import ArgumentError

    with pytest.raises(ArgumentError, match="repeats"):
        bench.run(batches=(1,), repeats=0, config=SMALL)
    with pytest.raises(ArgumentError):
        bench.run(batches=(0,), config=SMALL)


def test_fesnet_rows_say_what_does_not_apply():
    import io

    out = io.StringIO()
    result = bench.run(batches=(1,), repeats=1, out=out, config={"clip_length": 4}, gemm_size=32, settle_s=0.0,
                       model="fesnet", tensorrt=False)
    text = out.getvalue()
    assert text.startswith("fesnet end to end")
    notes = {r.name: r.note for r in result.rows}
    assert "no edgefer custom op" in notes["ort custom ops"] and "no encoder/head split" in notes["stream/new frame"]
    assert notes["int8 stream/frame"] == notes["stream/new frame"]
    assert not notes["eager"] and not notes["ort fp32"] and not notes["ort int8"]
    with pytest.raises(bench.ArgumentError, match="unknown model"):
        bench.run(batches=(1,), model="resnet")


def test_onnx_flop_count_matches_torch(tmp_path):
    # the zoo's converted (per-frame, static-shape) models are counted from their ONNX graph: on a small per-frame
    # conv net, grouped conv and a classifier included, the count must equal torch's FlopCounterMode
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, stride=2, groups=4), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 15 * 15, 7)).eval()
    path = tmp_path / "frames.onnx"
    torch.onnx.export(net, (torch.zeros(16, 1, 32, 32),), str(path), dynamo=False, input_names=["frames"],
                      dynamic_axes={"frames": {0: "batch"}})
    shape = (16, 1, 32, 32)  # one "clip" of 16 frames
    counted = bench.onnx_gflop(path, shape, per_frame=True)
    assert counted > 0
    assert counted == pytest.approx(bench._count_gflop(torch, net, shape[1:]) * 16, rel=1e-6)
