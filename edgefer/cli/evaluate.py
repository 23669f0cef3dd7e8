"""``edgefer evaluate CKPT_OR_ARTIFACT [MORE ...] --dataset LIST``: WAR/UAR of checkpoints and exported artefacts
on the same list, side by side (what the export cost)."""

from __future__ import annotations

from ..outputs import check_output_path
from .argtypes import non_negative_int


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="WAR/UAR of checkpoints (.pt) and exported artefacts (.onnx) on a "
                                               "list, side by side")
    p.add_argument("models", nargs="+", metavar="CKPT_OR_ARTIFACT",
                   help=".pt checkpoint (run in PyTorch) or .onnx artefact (run through the runtime)")
    p.add_argument("--dataset", required=True, metavar="LIST", help="annotation list (or DFEW split CSV / folder)")
    p.add_argument("--root", metavar="DIR_OR_OLD=NEW", help="rewrite the list's frame-folder paths")
    p.add_argument("--format", choices=("annotation", "dfew-split", "folders", "spotting"), default="annotation",
                   help="annotation list, DFEW split CSV, class folders, or spotting (a MEGC gt_*.txt + --root)")
    p.add_argument("--videos", metavar="LIST", help="spotting: every video, 'subject video' a line")
    p.add_argument("--fps", type=float, default=30.0, help="spotting: the videos' frame rate (default 30)")
    p.add_argument("--gap", type=non_negative_int, default=2, help="spotting: merge runs this many frames apart")
    p.add_argument("--variant", choices=("megc2020", "megc2023"), default="megc2020", help="MEGC counting")
    p.add_argument("--skip-bad", action="store_true", help="skip bad list entries (and print how many)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="runtime device of artefacts")
    p.add_argument("--kernels", choices=("auto", "triton", "cpp", "reference"), default="auto",
                   help="op implementation of checkpoints")
    p.add_argument("--json", metavar="OUT", help="also write the rows (figures, confusion matrices) as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..outputs import write_atomically
    from ..train.artefact import (evaluate_path, evaluate_spotting_path, read_dfer_list, read_spotting_list,
                                  spotting_table, table)

    if args.json:
        check_output_path(args.json, "--json output")
    if args.format == "spotting":
        records = read_spotting_list(args.dataset, root=args.root, videos=args.videos, skip_bad=args.skip_bad)
    else:
        records = read_dfer_list(args.dataset, root=args.root, data_format=args.format, skip_bad=args.skip_bad)
    if getattr(records, "skipped", 0):
        print(f"skipped {records.skipped} bad entries of {args.dataset} (--skip-bad); first: {records.problems[0]}")
    if args.format == "spotting":
        rows = [evaluate_spotting_path(path, records, fps=args.fps, gap=args.gap, variant=args.variant,
                                       device=args.device, kernels=args.kernels) for path in args.models]
        print(spotting_table(rows, args.dataset))
    else:
        rows = [evaluate_path(path, records, kernels=args.kernels, device=args.device) for path in args.models]
        print(table(rows, args.dataset))
    if args.json:
        payload = [{"path": r.path, "kind": r.kind, **r.figures, "clips": r.count,
                    "confusion": None if r.confusion is None else r.confusion.tolist()} for r in rows]
        write_atomically(args.json, json.dumps(payload, indent=1), "--json output")
        print(f"wrote {args.json}")
    return 0
