"""A video file in, an annotated copy out: the face box, the label and the probability bars on every frame.

This is ``edgefer predict VIDEO --model MODEL --annotate OUT.mp4`` written as the three library calls it makes,
so that the same lines run in a user's own program on the board:

    model = edgefer.load("msstnet_fp16.engine")                      # or .onnx, a split folder, zoo:NAME
    result = edgefer.pipeline.predict_video(model, "clip.mp4")       # windows of 16 face frames, tracked
    edgefer.video.annotate.annotate_video(result, "annotated.mp4")   # one output frame per input frame

    python3 examples/jetson/annotate_video.py clip.mp4 --out annotated.mp4 --model msstnet_fp16.engine

The output has the input's frame count, size and frame rate (OpenCV's ``mp4v`` codec) and is written
atomically. Each frame shows the result of the newest window that covers it; face-less frames say "no face".
"""

from __future__ import annotations

import argparse
import sys

import edgefer
from edgefer.cli.argtypes import positive_int
from edgefer.detectors import DETECTOR_NAMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", help="the video file to annotate")
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="the annotated copy to write")
    p.add_argument("--model", default="zoo:fer-minixception",
                   help="NAME.engine (TensorRT), NAME.onnx, a split folder or zoo:NAME (default: zoo:fer-minixception)")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="frames between window starts (default: the window length, 16)")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None, help="face detector (default: blazeface-short)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="where an .onnx model runs (default: cuda for an engine, cpu otherwise)")
    return p


def main(argv: list[str] | None = None) -> int:
    from edgefer.outputs import check_output_path
    from edgefer.pipeline import predict_video
    from edgefer.video.annotate import annotate_video

    args = _parser().parse_args(argv)
    check_output_path(args.out, "--out")  # before the model runs: a run is never lost to a bad path
    model = edgefer.load(args.model, device=args.device)  # None: the backend's own (cuda for an engine)
    result = predict_video(model, args.video, stride=args.stride, detector=args.detector)
    labelled = [w for w in result.windows if w.prediction]
    print(f"{result.path}: {result.num_frames} frames at {result.fps:.2f} fps, {len(labelled)} of "
          f"{len(result.windows)} windows classified; {result.model} on {model.backend}"
          + ("" if result.trained else " (UNTRAINED weights: labels are meaningless)"))
    print(f"wrote {annotate_video(result, args.out)}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except edgefer.EdgeferError as exc:  # a missing video, a bad model file, an engine for another GPU: one line
        print(f"annotate_video: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
