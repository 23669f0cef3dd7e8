"""Live expressions on a Jetson: a CSI or USB camera (or a video file) in, the face, label and bars on screen.

The frames come from a CSI camera through an ``nvarguscamerasrc`` GStreamer pipeline (OpenCV built with
GStreamer, as JetPack's is), from a USB camera through V4L2 (``/dev/videoN``), from any GStreamer pipeline string
ending in ``appsink``, or from a video file or RTSP URL. :func:`edgefer.stream` follows one face and classifies
the last 16 face frames (the model's clip length) every ``--stride`` face frames; each result is drawn onto the
frame it ends on with :func:`edgefer.video.annotate.draw_result` (box, label, probability bars) and shown,
printed, and optionally recorded. Camera frames are dropped (and counted) when the model is slower than the
camera; a file is read in full.

    python3 examples/jetson/live_camera.py --model msstnet_fp16.engine                 # CSI camera 0
    python3 examples/jetson/live_camera.py --model msstnet_fp16.engine --source /dev/video0
    python3 examples/jetson/live_camera.py --model msstnet.onnx --source clip.mp4 --no-display --record out.mp4

``--model`` takes a TensorRT engine (``.engine``: needs TensorRT and cuda-python, see README.md), an ``.onnx``
export, a split folder (``export --split``: per-frame feature cache) or a ``zoo:`` name. Press q (or Esc) in the
window to stop. Results lag the camera by at most the tracker's ``max_gap`` (12) frames.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import edgefer
from edgefer.cli.argtypes import positive_int

#: Source frames kept for drawing a result onto the frame it ends on: more than the tracker's latency (12
#: frames) plus the feed's buffer (4) plus the frames a detector run may take on a slow board.
RECENT_FRAMES = 64
_DEVICE = re.compile(r"^/dev/video(\d+)$")
_CSI = re.compile(r"^csi(?::(\d+))?$")


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """The GStreamer pipeline that hands a Jetson CSI camera's frames to OpenCV as BGR.

    ``nvarguscamerasrc`` (the Argus camera source of JetPack) writes NV12 frames into NVMM (device) memory;
    ``nvvidconv`` converts them to BGRx in system memory (and rotates them by ``flip``: 0 none, 2 = 180 degrees;
    see the element's ``flip-method``), ``videoconvert`` drops the x channel, and ``appsink`` keeps only the newest
    frame (``drop=true max-buffers=1``), so a slow reader sees fresh frames rather than a growing queue.

    Args:
        sensor_id: the camera (``sensor-id``), 0 for the first CSI port.
        width, height: the capture size in pixels (a mode the sensor offers, e.g. 1280 x 720, 1920 x 1080).
        fps: frames per second asked of the sensor.
        flip: ``nvvidconv flip-method``, 0..7.

    Raises:
        ValueError: a negative sensor id, a size or rate < 1, or a flip outside 0..7.
    """
    if sensor_id < 0 or width < 1 or height < 1 or fps < 1 or not 0 <= flip <= 7:
        raise ValueError(f"bad CSI camera settings: sensor {sensor_id}, {width}x{height} at {fps} fps, flip {flip}")
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, format=(string)NV12, "
            f"framerate=(fraction){fps}/1 ! nvvidconv flip-method={flip} ! "
            f"video/x-raw, width=(int){width}, height=(int){height}, format=(string)BGRx ! "
            f"videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1")


def resolve_source(text: str, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> int | str:
    """What ``--source`` names, as :func:`edgefer.stream` takes it.

    ``csi`` / ``csi:N`` -> :func:`csi_pipeline` for sensor N (default 0); ``/dev/videoN`` or ``N`` -> camera index N
    (OpenCV opens it through V4L2 on Linux); anything else (a video file, an ``rtsp://`` URL, a GStreamer pipeline
    ending in ``appsink``) is passed on as given.
    """
    csi = _CSI.match(text)
    if csi:
        return csi_pipeline(int(csi.group(1) or 0), width, height, fps, flip)
    device = _DEVICE.match(text)
    if device:
        return int(device.group(1))
    return int(text) if text.isdigit() else text


class RecentFrames:
    """The last ``size`` source frames by source index, filled by the frame reader (maybe another thread)."""

    def __init__(self, size: int = RECENT_FRAMES) -> None:
        self._frames: deque = deque(maxlen=size)
        self._lock = threading.Lock()

    def follow(self, frames: Iterable) -> Iterator:
        """Yield ``frames`` unchanged, remembering each under its index (0, 1, ... as :func:`edgefer.stream` counts)."""
        for index, frame in enumerate(frames):
            with self._lock:
                self._frames.append((index, frame))
            yield frame

    def get(self, index: int):
        """A copy of source frame ``index``, or None when it is no longer (or not yet) held."""
        with self._lock:
            for i, frame in reversed(self._frames):
                if i == index:
                    return frame.copy()
        return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="zoo:fer-minixception",
                   help="NAME.engine (TensorRT), NAME.onnx, a split folder or zoo:NAME (default: zoo:fer-minixception)")
    p.add_argument("--source", default="csi",
                   help="csi | csi:N (CSI camera through nvarguscamerasrc), /dev/videoN or N (USB camera, V4L2), a "
                        "video file, an rtsp:// URL or a GStreamer pipeline ending in appsink (default: csi)")
    p.add_argument("--width", type=positive_int, default=1280, help="CSI capture width (default 1280)")
    p.add_argument("--height", type=positive_int, default=720, help="CSI capture height (default 720)")
    p.add_argument("--fps", type=positive_int, default=30, help="CSI capture rate (default 30)")
    p.add_argument("--flip", type=int, choices=range(8), default=0, metavar="0..7", help="CSI nvvidconv flip-method, 0..7 (default 0; 2 = rotate 180)")
    p.add_argument("--stride", type=positive_int, default=2, help="face frames between results (default 2)")
    p.add_argument("--detect-every", type=positive_int, default=2, metavar="N",
                   help="run the face detector every N-th frame, tracking between (default 2)")
    p.add_argument("--smoothing", choices=("none", "ema", "vote"), default="ema")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where an .onnx model runs (default: cuda for an engine, cpu otherwise)")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many source frames")
    p.add_argument("--no-display", action="store_true", help="headless: print (and --record) only, no window")
    p.add_argument("--record", metavar="OUT.mp4", help="also write every shown frame (one per result) to this video")
    return p


def main(argv: list[str] | None = None) -> int:
    import cv2

    from edgefer.outputs import check_output_path, write_atomically
    from edgefer.runtime import Prediction
    from edgefer.stream import open_source
    from edgefer.video.annotate import draw_result

    args = _parser().parse_args(argv)
    record = check_output_path(args.record, "--record output") if args.record else None
    try:
        spec = resolve_source(args.source, args.width, args.height, args.fps, args.flip)
    except ValueError as exc:
        raise edgefer.ArgumentError(str(exc)) from None

    model = edgefer.load(args.model, device=args.device)  # None: the backend's own (cuda for an engine)
    source = open_source(spec)
    recent = RecentFrames()
    writer = tmp = None
    shown = 0
    print(f"{args.source} at {source.fps:.1f} fps; {model.metadata.model} on {model.backend}"
          + ("" if model.metadata.trained else " (UNTRAINED weights: labels are meaningless)"), flush=True)
    try:
        results = edgefer.stream(model, recent.follow(source.frames), stride=args.stride,
                                 detect_every=args.detect_every, smoothing=args.smoothing,
                                 on_slow="drop" if source.live else "block", fps=source.fps,
                                 max_frames=args.max_frames)
        for r in results:
            if r.tracked:
                print(f"frame {r.end_frame:6d}  {r.label:<9} {r.probabilities[r.index]:.2f}  ({r.ms:.1f} ms, "
                      f"{r.dropped} dropped)", flush=True)
            else:
                print(f"frame {r.end_frame:6d}  no face", flush=True)
            frame = recent.get(r.end_frame)
            if frame is None:
                continue
            prediction = (Prediction(r.label, r.index, r.probabilities, r.logits, tuple(model.labels))
                          if r.tracked else None)
            draw_result(frame, r.box, prediction, max(0.5, frame.shape[1] / 640))
            if record is not None:
                if writer is None:
                    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix=".live-", dir=record.parent)
                    os.close(fd)
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"),
                                             max(1.0, source.fps / args.stride), (frame.shape[1], frame.shape[0]))
                    if not writer.isOpened():
                        raise edgefer.OutputPathError(f"cannot write --record output {record}: OpenCV has no "
                                                      "mp4v video writer")
                writer.write(frame)
            shown += 1
            if not args.no_display:
                try:
                    cv2.imshow("edgefer", frame)
                    key = cv2.waitKey(1) & 0xFF
                except cv2.error as exc:
                    raise edgefer.VideoError(f"cannot open a window ({str(exc).strip().splitlines()[-1]}); "
                                             "run with --no-display") from None
                if key in (ord("q"), 27):
                    break
        if writer is not None:
            writer.release()
            writer = None
            write_atomically(record, Path(tmp).read_bytes(), "--record output")
            print(f"wrote {record} ({shown} frames)")
        elif record is not None:
            print(f"no result to record: {record} not written")
    finally:
        source.close()
        if writer is not None:
            writer.release()
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not args.no_display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:  # no window was ever opened (a headless OpenCV)
                pass
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except edgefer.EdgeferError as exc:  # no camera, a bad model file, an engine for another GPU: one line
        print(f"live_camera: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
