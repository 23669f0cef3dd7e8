"""``edgefer spot VIDEO --model fesnet.onnx [--stride N] [--json OUT]``: macro/micro-expression intervals."""

from __future__ import annotations

import json

from ..outputs import check_output_path, write_atomically
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from .argtypes import non_negative_int, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("spot", help="spot macro- and micro-expression intervals in a long video",
                              description="Spot macro- and micro-expression intervals in a video with a frame-wise "
                                          "spotting model (FESNet): windows of K frames, overlapping scores "
                                          "merged, intervals per class (lengths scaled by the video's fps).")
    p.add_argument("video", help="video file")
    p.add_argument("--model", required=True, help="spotting model: .onnx / .pt artefact, or zoo:NAME")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="frames between window starts, 1..K (default: K / 2, K = the model's window)")
    p.add_argument("--gap", type=non_negative_int, default=2,
                   help="merge runs of one class at most this many frames apart (>= 0)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None,
                   help=f"face detector (default: {DEFAULT_DETECTOR}; haar = OpenCV's frontal-face cascade)")
    p.add_argument("--json", metavar="OUT", help="also write the intervals and frame-wise scores to this JSON file")
    p.add_argument("--plot", metavar="OUT.png", help="also draw the intervals on a timeline over the frame-wise scores "
                                                     "into this PNG (needs matplotlib: edgefer[plots])")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import load
    from ..spotting.video import spot_video

    if args.json:
        check_output_path(args.json, "--json output")  # before the run: a run is never lost to a bad path
    if args.plot:
        check_output_path(args.plot, "--plot output")
        from ..plots import _pyplot

        _pyplot()  # matplotlib missing: say so before the run
    model = load(args.model, device=args.device)
    result = spot_video(model, args.video, stride=args.stride, gap=args.gap, detector=args.detector)
    print(f"{result.path}: {result.num_frames} frames at {result.fps:.2f} fps, face in {100 * result.face_fraction:.1f}% "
          f"of frames; model {result.model} on {model.backend}, {result.num_windows} windows of {result.window} "
          f"frames, stride {result.stride}"
          + ("" if result.trained else " (UNTRAINED weights: intervals are meaningless)"))
    if not result.intervals:
        print("no intervals found")
    else:
        print(f"{'frames':>13}  {'time (s)':>15}  {'class':<5}  score")
        for i in result.intervals:
            start_s, end_s = i.seconds(result.fps)
            print(f"{i.start_frame:>6}-{i.end_frame:<6}  {start_s:>7.2f}-{end_s:<7.2f}  {i.label:<5}  {i.score:.3f}")
    if args.json:
        write_atomically(args.json, json.dumps(result.as_dict(), indent=1), "--json output")
        print(f"wrote {args.json}")
    if args.plot:
        from ..plots import plot_spotting

        print(f"wrote {plot_spotting(result, args.plot)}")
    return 0
