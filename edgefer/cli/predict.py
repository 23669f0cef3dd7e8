"""``edgefer predict VIDEO [--model PATH] [--stride N] [--json OUT] [--plot OUT.png] [--annotate OUT.mp4]``: expressions over time, one row per window."""

from __future__ import annotations

import json

from ..outputs import check_output_path, write_atomically
from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from .argtypes import positive_int

#: The model ``predict`` uses without ``--model``: the zoo's trained per-frame model (real expressions at once).
DEFAULT_MODEL = "zoo:fer-minixception"


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="recognise expressions in a video, window by window")
    p.add_argument("video", help="video file")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f".onnx / .pt artefact, a split folder, or zoo:NAME (default: {DEFAULT_MODEL}, trained)")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="frames between window starts, >= 1 (default: window length)")
    p.add_argument("--window", type=positive_int, default=None,
                   help="frames per window, >= 1 (default: the model's clip length)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None,
                   help=f"face detector (default: {DEFAULT_DETECTOR}; haar = OpenCV's frontal-face cascade)")
    p.add_argument("--json", metavar="OUT", help="also write every window (frames, seconds, label, probabilities, "
                                                 "face_found) to this JSON file")
    p.add_argument("--annotate", metavar="OUT.mp4", help="also write a copy of the video with the face box, the label "
                                                        "and the probability bars on every frame")
    p.add_argument("--plot", metavar="OUT.png", help="also draw the probabilities over time (windows marked, face-less "
                                                     "spans shaded) into this PNG (needs matplotlib: edgefer[plots])")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import load
    from ..pipeline import predict_video

    if args.json:
        check_output_path(args.json, "--json output")  # before the run: a run is never lost to a bad path
    if args.annotate:
        check_output_path(args.annotate, "--annotate output")
    if args.plot:
        check_output_path(args.plot, "--plot output")
        from ..plots import _pyplot

        _pyplot()  # matplotlib missing: say so before the run
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
    if args.plot:
        from ..plots import plot_predictions

        print(f"wrote {plot_predictions(result, args.plot)}")
    if args.annotate:
        from ..video.annotate import annotate_video

        print(f"wrote {annotate_video(result, args.annotate)}")
    return 0
