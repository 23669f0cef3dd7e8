"""The Jetson examples (examples/jetson/) run as a user runs them, on a real face video with an .onnx model.

Every example also runs on a desktop with ``.onnx``; that is what runs here. The engine paths (``.engine``
models, building fp16 / int8 engines) need TensorRT and a CUDA GPU: their test skips where ``import tensorrt``
fails, and on a board with TensorRT it builds the engines and runs both video examples on them.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_support import read_frames

REPO = Path(__file__).resolve().parents[1]
JETSON = REPO / "examples" / "jetson"
LINE = re.compile(r"^frame +(\d+)  (\w+) +(0\.\d\d|1\.00)  \((\d+\.\d) ms, (\d+) dropped\)$")
ROW = re.compile(r"^(\S+) +(fp32|fp16|int8) +(\S+) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)$")
DFER = {"Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"jetson_{name}", JETSON / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(JETSON / script), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def _last_line_error(proc: subprocess.CompletedProcess, prefix: str, needle: str) -> None:
    """Exit 1, no traceback, and the last stderr line is ``PREFIX: error: ...`` naming ``needle`` (an untrained
    model's warning may come before it)."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prefix}: error:") and needle in last, proc.stderr


@pytest.fixture(scope="module")
def small_msstnet(tmp_path_factory):
    """A small untrained MSSTNet (16-frame clips) exported to ONNX with the parity gate."""
    import torch

    from edgefer.export.onnx_export import export_onnx
    from edgefer.models import build_model
    from edgefer.models.checkpoint import artefact_metadata, weights_sha256

    torch.manual_seed(0)
    model = build_model("msstnet", kernels="reference", dim=64, num_heads=4, mlp_hidden=128).eval()
    metadata = artefact_metadata(model, trained=False, weights_sha256=weights_sha256(model.state_dict()))
    return export_onnx(model, tmp_path_factory.mktemp("jetson") / "msstnet.onnx", metadata, random_batches=(1,)).path


def test_live_camera_sources():
    live = _module("live_camera")
    csi = live.resolve_source("csi")
    assert csi.startswith("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM)") and csi.endswith("appsink "
                                                                                                       "drop=true max-buffers=1")
    assert "width=(int)1280, height=(int)720" in csi and "framerate=(fraction)30/1" in csi
    assert "format=(string)BGR ! appsink" in csi and "nvvidconv flip-method=0" in csi
    other = live.resolve_source("csi:1", width=1920, height=1080, fps=60, flip=2)
    assert "sensor-id=1" in other and "width=(int)1920, height=(int)1080" in other
    assert "framerate=(fraction)60/1" in other and "flip-method=2" in other
    assert live.resolve_source("/dev/video2") == 2 and live.resolve_source("0") == 0
    assert live.resolve_source("clip.mp4") == "clip.mp4"
    pipeline = "v4l2src device=/dev/video1 ! videoconvert ! appsink"
    assert live.resolve_source(pipeline) == pipeline
    assert live.resolve_source("rtsp://cam/stream") == "rtsp://cam/stream"
    with pytest.raises(ValueError, match="flip 8"):
        live.csi_pipeline(flip=8)


def test_recent_frames_keeps_the_newest_by_index():
    live = _module("live_camera")
    recent = live.RecentFrames(size=3)
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(5)]
    assert list(recent.follow(frames)) == frames  # passed through unchanged
    assert recent.get(0) is None and recent.get(1) is None and recent.get(5) is None
    got = recent.get(3)
    assert got is not None and (got == 3).all() and got is not frames[3]  # a copy: drawing leaves the source alone


def test_live_camera_on_a_real_video(sample_video, small_msstnet, tmp_path):
    video = sample_video("single_face.mp4")  # 72 frames, one face throughout
    record = tmp_path / "live.mp4"
    proc = _run("live_camera.py", "--model", small_msstnet, "--source", video, "--stride", "2", "--no-display",
                "--record", record)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(f"{video} at 30.0 fps; msstnet on onnxruntime"), lines[0]
    assert lines[-1] == f"wrote {record} ({len(lines) - 2} frames)", lines[-1]
    matches = [LINE.match(line) for line in lines[1:-1]]
    assert all(matches), lines
    # the first 16-frame window ends at frame 15, then one result every 2 face frames; a file drops nothing
    assert [int(m.group(1)) for m in matches] == list(range(15, 72, 2))
    assert all(m.group(5) == "0" for m in matches) and {m.group(2) for m in matches} <= DFER
    recorded, source = read_frames(record), read_frames(video)
    assert len(recorded) == len(matches)  # one recorded frame per result
    assert recorded[0].shape == source[0].shape
    # the probability-bar panel is drawn (darkened to 40 % behind the bars) onto the frame the result ends on
    scale = max(0.5, source[0].shape[1] / 640)
    y0, x0 = int(10 * scale), int(10 * scale)
    panel = np.s_[y0 + 2:y0 + int(14 * scale) * 7, x0 + 2:x0 + int(60 * scale)]
    assert recorded[0][panel].mean() < 0.75 * source[15][panel].mean()


def test_live_camera_names_a_missing_video(small_msstnet, tmp_path):
    proc = _run("live_camera.py", "--model", small_msstnet, "--source", tmp_path / "missing.mp4", "--no-display")
    _last_line_error(proc, "live_camera", "missing.mp4")


def test_live_camera_checks_record_before_running(small_msstnet, tmp_path):
    proc = _run("live_camera.py", "--model", small_msstnet, "--source", "csi", "--no-display", "--record",
                tmp_path / "no" / "out.mp4")
    _last_line_error(proc, "live_camera", "does not exist")  # before opening the camera (none here)


def test_annotate_video_on_a_real_video(sample_video, small_msstnet, tmp_path):
    video = sample_video("single_face.mp4")
    out = tmp_path / "annotated.mp4"
    proc = _run("annotate_video.py", video, "--out", out, "--model", small_msstnet)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    # 72 frames in windows of 16 (the last one shorter, sampled by the DFEW protocol): 5 windows, every one a face
    assert lines == [f"{video}: 72 frames at 30.00 fps, 5 of 5 windows classified; msstnet on onnxruntime "
                     "(UNTRAINED weights: labels are meaningless)", f"wrote {out}"], lines
    annotated, source = read_frames(out), read_frames(video)
    assert len(annotated) == len(source) == 72
    assert annotated[0].shape == source[0].shape
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
    scale = max(0.5, source[0].shape[1] / 640)
    y0, x0 = int(10 * scale), int(10 * scale)
    panel = np.s_[y0 + 2:y0 + int(14 * scale) * 7, x0 + 2:x0 + int(60 * scale)]
    assert all(annotated[i][panel].mean() < 0.75 * source[i][panel].mean() for i in (0, 40, 71))


def test_annotate_video_names_a_missing_video(small_msstnet, tmp_path):
    proc = _run("annotate_video.py", tmp_path / "missing.mp4", "--out", tmp_path / "out.mp4", "--model",
                small_msstnet)
    _last_line_error(proc, "annotate_video", "missing.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_build_and_bench_times_the_onnx_model(small_msstnet, tmp_path):
    from edgefer.bench.machine import describe

    proc = _run("build_and_bench.py", "--onnx", small_msstnet, "--onnx-only", "--batch", "1", "2", "--repeats", "3",
                "--out-dir", tmp_path / "artefacts")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "build_and_bench: msstnet, median of 3 calls after 3 warm-up"
    assert lines[1] == f"machine: {describe()}"  # no /proc/device-tree/model off a Jetson
    rows = [ROW.match(line) for line in lines[3:]]
    assert len(rows) == 2 and all(rows), lines
    for row, batch in zip(rows, (1, 2)):
        name, precision, backend, b, median, low, per_clip, rate = row.groups()
        assert (name, precision, backend, int(b)) == ("msstnet.onnx", "fp32", "onnxruntime", batch)
        assert 0 < float(low) <= float(median)
        assert float(per_clip) == pytest.approx(float(median) / batch, abs=0.01)
        assert float(rate) == pytest.approx(1e3 * batch / float(median), rel=0.01)


def test_build_and_bench_dry_run_prints_the_board_commands(tmp_path):
    proc = _run("build_and_bench.py", "--weights", "msstnet.pt", "--calib", "calib/", "--out-dir", "art", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        "$ edgefer export msstnet --weights msstnet.pt --out art/msstnet.onnx",
        "$ edgefer export msstnet --weights msstnet.pt --format engine --precision fp16 --out art/msstnet_fp16.engine",
        "$ edgefer export msstnet --weights msstnet.pt --format engine --precision int8 --calib calib/ "
        "--out art/msstnet_int8.engine"]
    usage = _run("build_and_bench.py", "--untrained", "--dry-run")  # int8 without calibration videos
    assert usage.returncode == 2 and "int8 engine needs --calib" in usage.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_and_bench_refuses_engines_without_tensorrt(tmp_path):
    proc = _run("build_and_bench.py", "--untrained", "--precisions", "fp16", "--out-dir", tmp_path / "art")
    _last_line_error(proc, "build_and_bench", "TensorRT is not installed")
    assert "--onnx-only" in proc.stderr and not (tmp_path / "art").exists()  # refused before any work


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
@pytest.mark.parametrize("script", ["live_camera.py", "annotate_video.py"])
def test_video_examples_refuse_an_engine_without_tensorrt(script, sample_video, small_msstnet, tmp_path):
    """A well-formed engine file (plan magic, side-car metadata from the ONNX export) is refused with the line that
    says how to install TensorRT on JetPack, not a traceback."""
    import dataclasses

    from edgefer.metadata import ModelMetadata
    from edgefer.runtime.engine_file import write_engine
    from edgefer.runtime.onnx_metadata import read_metadata_props

    metadata = ModelMetadata.from_props(read_metadata_props(small_msstnet), source=str(small_msstnet))
    metadata = dataclasses.replace(metadata, precision="fp16", tensorrt_version="10.3.0.30", compute_capability="8.7",
                                   device_name="Orin", batch_profile=(1, 4, 8))
    engine = write_engine(tmp_path / "msstnet_fp16.engine", b"ftrt" + bytes(60), metadata)
    video = sample_video("single_face.mp4")
    args = ["--source", video, "--no-display"] if script == "live_camera.py" else [video, "--out", tmp_path / "a.mp4"]
    proc = _run(script, "--model", engine, *args)
    _last_line_error(proc, script[:-3], "TensorRT is not installed")
    assert "python3-libnvinfer" in proc.stderr and not (tmp_path / "a.mp4").exists()


def test_engine_examples_on_the_board(sample_video, tmp_path):
    """On a machine with TensorRT and a GPU: build the fp16 and int8 engines of a small MSSTNet with the script, time
    them, and run both video examples on the fp16 engine."""
    pytest.importorskip("tensorrt", reason="no TensorRT on this machine: the engine examples need it")
    video = sample_video("single_face.mp4")
    art = tmp_path / "art"
    proc = _run("build_and_bench.py", "--untrained", "--config", "dim=64", "--config", "num_heads=4", "--config",
                "mlp_hidden=128", "--calib", video, "--out-dir", art, "--batch", "1", "4", "--repeats", "5",
                timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [m for m in map(ROW.match, proc.stdout.strip().splitlines()) if m]
    assert [(m.group(1), m.group(2), int(m.group(4))) for m in rows] == [
        ("msstnet.onnx", "fp32", 1), ("msstnet.onnx", "fp32", 4), ("msstnet_fp16.engine", "fp16", 1),
        ("msstnet_fp16.engine", "fp16", 4), ("msstnet_int8.engine", "int8", 1), ("msstnet_int8.engine", "int8", 4)]
    engine = art / "msstnet_fp16.engine"
    out = tmp_path / "annotated.mp4"
    done = _run("annotate_video.py", video, "--out", out, "--model", engine)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(read_frames(out)) == 72
    live = _run("live_camera.py", "--model", engine, "--source", video, "--no-display")
    assert live.returncode == 0, live.stderr[-2000:]
    assert [int(m.group(1)) for m in map(LINE.match, live.stdout.strip().splitlines()[1:]) if m] == list(range(15, 72, 2))
