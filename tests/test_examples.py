"""The examples run as a user runs them: a subprocess on a real face video, output checked line by line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^frame +(\d+)  (\w+) +(0\.\d\d|1\.00)  \((\d+\.\d) ms, (\d+) dropped\)$")


def test_live_dfer_on_a_real_video(sample_video, msstnet_export):
    _, model_path, _ = msstnet_export
    video = sample_video("single_face.mp4")  # 72 frames, one face throughout
    proc = subprocess.run([sys.executable, "examples/live_dfer.py", "--model", str(model_path), "--source", str(video),
                           "--every", "8"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    matches = [LINE.match(line) for line in lines]
    assert lines and all(matches), lines
    frames = [int(m.group(1)) for m in matches]
    # a full 16-crop window first ends at frame 15; then one every 8 face frames (the face stays tracked)
    assert frames == list(range(15, 72, 8)), frames
    assert all(m.group(5) == "0" for m in matches)  # a file blocks: nothing dropped
    assert len(frames) >= 5, frames
    labels = {m.group(2) for m in matches}
    assert labels <= {"Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"}, labels


def test_live_dfer_names_a_missing_video(msstnet_export, tmp_path):
    _, model_path, _ = msstnet_export
    proc = subprocess.run([sys.executable, "examples/live_dfer.py", "--model", str(model_path), "--source",
                           str(tmp_path / "missing.mp4")], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()  # the untrained-weights warning comes first
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("live_dfer: error:") and "missing.mp4" in lines[-1], proc.stderr
