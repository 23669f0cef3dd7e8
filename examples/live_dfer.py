"""Live dynamic facial expression recognition: a camera (or a file) in, one line per prediction out.

The loop an embedded app runs (a Jetson demo, a kiosk): follow one face, keep the last ``clip_length`` face
crops of its track, and classify them every ``--every`` frames. The tracker decides a frame at most ``max_gap``
(12) frames after reading it (it bridges short detection dropouts), so the printed frame numbers lag the camera
by at most that. Everything it calls is edgefer's runtime path, so it runs
without torch: ONNX Runtime on the CPU by default (``--device cuda`` for its CUDA provider).

    python examples/live_dfer.py --model msstnet.onnx --source 0          # camera 0
    python examples/live_dfer.py --model msstnet.onnx --source "$(edgefer samples single_face.mp4)"

On a Jetson with OpenCV built with GStreamer, ``--source`` also takes a pipeline string ending in appsink.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import edgefer
from edgefer.video.track import iter_face_track


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported model (.onnx), or a zoo: name")
    parser.add_argument("--source", default="0", help="camera index, video file or GStreamer pipeline (default: 0)")
    parser.add_argument("--every", type=int, default=8, help="classify every N frames (default: 8)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()

    model = edgefer.load(args.model, device=args.device)
    length = model.metadata.clip_length
    source = int(args.source) if args.source.isdigit() else args.source
    crops: collections.deque = collections.deque(maxlen=length)
    for frame in iter_face_track(source, crop_size=max(model.metadata.frame_size)):
        if frame.crop is None or frame.new_track:
            crops.clear()  # the face is gone, or another one is tracked: start a new clip
        if frame.crop is None:
            continue
        crops.append(frame.crop)
        if len(crops) == length and frame.index % args.every == 0:
            start = time.perf_counter()
            result = model.predict(list(crops))
            ms = (time.perf_counter() - start) * 1e3
            print(f"frame {frame.index:6d}  {result.label:<9} {result.probability:.2f}  ({ms:.1f} ms)", flush=True)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except edgefer.EdgeferError as exc:  # a missing video, no camera, a bad model file: one line, not a traceback
        print(f"live_dfer: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
