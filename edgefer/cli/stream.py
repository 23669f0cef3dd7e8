"""``edgefer stream SOURCE [--model PATH] [--stride N]``: live expressions from a camera, file, URL or pipeline."""

from __future__ import annotations

import json

from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from ..outputs import check_output_path, write_atomically
from .argtypes import positive_int

#: The model a stream uses when none is given: the zoo's trained per-frame model.
DEFAULT_MODEL = "zoo:fer-minixception"


def source_arg(text: str):
    """A camera index (all digits) as an int, anything else (file, rtsp:// URL, GStreamer pipeline) as given."""
    return int(text) if text.isdigit() else text


def register(subparsers) -> None:
    p = subparsers.add_parser("stream", help="live expressions from a camera, video file, RTSP URL or GStreamer "
                                             "pipeline, one line per window")
    p.add_argument("source", type=source_arg,
                   help="camera index (0), video file, rtsp://... URL, or a GStreamer pipeline ending in appsink")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"model (default: {DEFAULT_MODEL}, trained); a split folder (export --split) caches "
                        "per-frame features")
    p.add_argument("--stride", type=positive_int, default=4, help="face frames between results (default 4)")
    p.add_argument("--detect-every", type=positive_int, default=1, metavar="N",
                   help="run the face detector every N-th frame, tracking between (default 1)")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None, help=f"face detector (default: {DEFAULT_DETECTOR})")
    p.add_argument("--smoothing", choices=("none", "ema", "vote"), default="none",
                   help="temporal smoothing of the probabilities (default none)")
    p.add_argument("--on-slow", choices=("drop", "block"), default=None,
                   help="when this process is slower than the source: drop frames (counted) or block (default: "
                        "drop for cameras and URLs, block for files)")
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many source frames")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--json", metavar="OUT", help="also write every result to this JSON file when the stream ends")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import load
    from ..stream import stream

    if args.json:
        check_output_path(args.json, "--json output")
    model = load(args.model, device=args.device)
    print(f"streaming {args.source} with {model.metadata.model} on {model.backend}"
          f"{' (feature cache)' if getattr(model, 'has_split', False) else ''}"
          + ("" if model.metadata.trained else " (UNTRAINED weights: labels are meaningless)"), flush=True)
    print(f"{'frames':>11}  {'time (s)':>13}  {'label':<9} {'prob':>5}  {'face':<7} {'ms':>7} {'det ms':>7} dropped")
    rows = []
    for r in stream(model, args.source, stride=args.stride, detect_every=args.detect_every, detector=args.detector,
                    smoothing=args.smoothing, on_slow=args.on_slow, max_frames=args.max_frames):
        prob = f"{r.probabilities[r.index]:.2f}" if r.tracked else "  -"
        print(f"{r.start_frame:>5}-{r.end_frame:<5}  {r.start_s:>6.2f}-{r.end_s:<6.2f}  {r.label or '-':<9} {prob:>5}  "
              f"{r.face:<7} {r.ms:>7.1f} {r.detect_ms:>7.1f} {r.dropped}", flush=True)
        if args.json:
            rows.append(r.as_dict())
    if args.json:
        write_atomically(args.json, json.dumps({"source": str(args.source), "results": rows}, indent=1),
                         "--json output")
        print(f"wrote {args.json}")
    return 0
