"""``edgefer predict VIDEO --model PATH [--stride N] [--json OUT]``: expressions over time, one row per window."""

from __future__ import annotations

import json

from ..outputs import check_output_path, write_atomically
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from .argtypes import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="recognise expressions in a video, window by window")
    p.add_argument("video", help="video file")
    p.add_argument("--model", required=True, help=".onnx / .pt artefact, or zoo:NAME")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="frames between window starts, >= 1 (default: window length)")
    p.add_argument("--window", type=positive_int, default=None,
                   help="frames per window, >= 1 (default: the model's clip length)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None,
                   help=f"face detector (default: {DEFAULT_DETECTOR}; haar = OpenCV's frontal-face cascade)")
    p.add_argument("--json", metavar="OUT", help="also write every window (frames, seconds, label, probabilities, "
                                                 "face_found) to this JSON file")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import load
    from ..pipeline import predict_video

    if args.json:
        check_output_path(args.json, "--json output")  # before the run: a run is never lost to a bad path
    model = load(args.model, device=args.device)
    result = predict_video(model, args.video, stride=args.stride, window=args.window, detector=args.detector)
    print(f"{result.path}: {result.num_frames} frames at {result.fps:.2f} fps, face in {100 * result.face_fraction:.1f}% "
          f"of frames; model {result.model} on {model.backend}"
          + ("" if result.trained else " (UNTRAINED weights: labels are meaningless)"))
    print(f"{'frames':>11}  {'time (s)':>13}  {'label':<9} {'prob':>5}  face")
    for w in result.windows:
        label = w.prediction.label if w.prediction else "-"
        prob = f"{w.prediction.probability:.2f}" if w.prediction else "  -"
        face = "yes" if w.face_found else f"no ({w.face_frames}/{w.end_frame - w.start_frame + 1})"
        print(f"{w.start_frame:>5}-{w.end_frame:<5}  {w.start_s:>6.2f}-{w.end_s:<6.2f}  {label:<9} {prob:>5}  {face}")
    if args.json:
        write_atomically(args.json, json.dumps(result.as_dict(), indent=1), "--json output")
        print(f"wrote {args.json}")
    return 0
