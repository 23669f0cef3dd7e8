"""Live dynamic facial expression recognition: a camera (or a file) in, one line per prediction out.

A thin demo of :func:`edgefer.stream`: it follows one face, caches the per-frame features of a split model
(``edgefer export msstnet --weights W.pt --split --out msstnet.split``), and prints a label every ``--every``
face frames. Results lag the camera by at most the tracker's ``max_gap`` (12) frames; a slow machine drops
camera frames (and says how many) rather than falling behind. Torch-free: ONNX Runtime on the CPU by default.

    python examples/live_dfer.py --source 0                                   # camera 0, the zoo's trained model
    python examples/live_dfer.py --model msstnet.split --source "$(edgefer samples single_face.mp4)"

``--source`` also takes an rtsp:// URL or (OpenCV built with GStreamer, e.g. on a Jetson) a pipeline string
ending in appsink.
"""

from __future__ import annotations

import argparse
import sys

import edgefer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:fer-minixception",
                        help="an exported model (.onnx, a split folder), or a zoo: name (default: zoo:fer-minixception)")
    parser.add_argument("--source", default="0", help="camera index, video file, RTSP URL or GStreamer pipeline")
    parser.add_argument("--every", type=int, default=8, help="classify every N face frames (default: 8)")
    parser.add_argument("--smoothing", choices=("none", "ema", "vote"), default="none")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()

    model = edgefer.load(args.model, device=args.device)
    source = int(args.source) if args.source.isdigit() else args.source
    for r in edgefer.stream(model, source, stride=args.every, smoothing=args.smoothing):
        if r.tracked:
            print(f"frame {r.end_frame:6d}  {r.label:<9} {r.probabilities[r.index]:.2f}  ({r.ms:.1f} ms, "
                  f"{r.dropped} dropped)", flush=True)
        else:
            print(f"frame {r.end_frame:6d}  no face", flush=True)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except edgefer.EdgeferError as exc:  # a missing video, no camera, a bad model file: one line, not a traceback
        print(f"live_dfer: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
