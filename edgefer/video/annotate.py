"""An annotated copy of a video (OpenCV): the face box, the current label and the probability bars on every frame.

Each frame shows the result of the window that covers it and started last (so at stride < window the label
follows the newest window); frames without a face get "no face" and no box. The video is written with OpenCV's
``mp4v`` codec at the source's frame size and frame rate, to a temporary file next to the output, then moved onto
it with :func:`edgefer.outputs.write_atomically`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputPathError
from ..outputs import check_output_path, write_atomically
from .reader import VideoReader

#: Probability bars: width and height of one bar in pixels at a 640-pixel-wide frame (scaled with the frame).
BAR_WIDTH, BAR_HEIGHT = 120, 14


def _window_per_frame(windows, num_frames: int) -> list:
    """For each frame, the window covering it that started last (None where none does)."""
    covering: list = [None] * num_frames
    for w in sorted(windows, key=lambda w: w.start_frame):
        for i in range(w.start_frame, min(w.end_frame, num_frames - 1) + 1):
            covering[i] = w
    return covering


def draw_result(frame: np.ndarray, box, prediction, scale: float = 1.0) -> np.ndarray:
    """Draw ``box`` (a FaceBox or None), the label and the probability bars of ``prediction`` (a
    :class:`~edgefer.runtime.base.Prediction` or None) onto a BGR uint8 (H, W, 3) frame, in place; return it."""
    thick = max(1, int(round(2 * scale)))
    font = 0.5 * scale
    if box is not None:
        x0, y0 = int(round(box.x)), int(round(box.y))
        x1, y1 = int(round(box.x + box.w)), int(round(box.y + box.h))
        cv2.rectangle(frame, (x0, y0), (x1, y1), (0, 220, 0), thick)
        if prediction is not None:
            text = f"{prediction.label} {prediction.probability:.2f}"
            cv2.putText(frame, text, (x0, max(0, y0 - int(8 * scale))), cv2.FONT_HERSHEY_SIMPLEX, 1.6 * font,
                        (0, 220, 0), thick, cv2.LINE_AA)
    if prediction is None:
        cv2.putText(frame, "no face" if box is None else "(window pending)", (int(10 * scale), int(24 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.4 * font, (0, 0, 255), thick, cv2.LINE_AA)
        return frame
    bw, bh = int(BAR_WIDTH * scale), int(BAR_HEIGHT * scale)
    x, y = int(10 * scale), int(10 * scale)
    panel = frame[y:y + bh * len(prediction.labels) + 4, x:x + bw + int(80 * scale)]
    panel[:] = (panel * 0.4).astype(np.uint8)  # darken behind the bars for legibility
    for k, (label, p) in enumerate(zip(prediction.labels, prediction.probabilities)):
        top = y + 2 + k * bh
        colour = (0, 220, 0) if k == prediction.index else (200, 200, 200)
        cv2.rectangle(frame, (x + int(70 * scale), top + 2), (x + int(70 * scale) + int(bw * float(p)), top + bh - 2),
                      colour, -1)
        cv2.putText(frame, label, (x + 2, top + bh - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * font, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return frame


def annotate_video(result, out: str | Path) -> Path:
    """Write an annotated copy of ``result.path`` to ``out`` (``.mp4``), one output frame per decoded frame.

    Args:
        result: a :class:`edgefer.pipeline.VideoPrediction` with ``boxes`` (as :func:`edgefer.pipeline.predict_video`
            returns).
        out: the video to write; checked first (:func:`edgefer.outputs.check_output_path`).

    Returns:
        ``out`` as a Path; it has ``result.num_frames`` frames at the source's size and frame rate.

    Raises:
        OutputPathError: ``out`` cannot be written, or OpenCV cannot open a writer for it.
        VideoError: the source video cannot be read again.
    """
    out = check_output_path(out, "--annotate output")
    covering = _window_per_frame(result.windows, result.num_frames)
    boxes = result.boxes or [None] * result.num_frames
    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix=".annotate-", dir=out.parent)
    os.close(fd)
    try:
        with VideoReader(result.path) as reader:
            size = (reader.width, reader.height)
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(result.fps), size)
            if not writer.isOpened():
                raise OutputPathError(f"cannot write --annotate output {out}: OpenCV has no mp4v video writer")
            scale = max(0.5, reader.width / 640)
            try:
                for i, frame in enumerate(reader):
                    if i >= result.num_frames:
                        break
                    w = covering[i]
                    draw_result(frame, boxes[i] if i < len(boxes) else None, w.prediction if w else None, scale)
                    writer.write(frame)
            finally:
                writer.release()
        return write_atomically(out, Path(tmp).read_bytes(), "--annotate output")
    finally:
        Path(tmp).unlink(missing_ok=True)
