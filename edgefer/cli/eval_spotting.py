"""``edgefer eval-spotting``: score MEGC spotting predictions against ground truth (thin CLI).

All the work is in :mod:`edgefer.spotting` (readers, length filters, :func:`edgefer.spotting.evaluate`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..outputs import check_output_path, write_atomically


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval-spotting`` subcommand."""
    parser = subparsers.add_parser(
        "eval-spotting", help="score expression-spotting intervals with the MEGC protocol",
        description="Score predicted macro-/micro-expression intervals against MEGC ground truth: TP/FP/FN, "
                    "precision, recall and F1 per class and overall, pooled over videos (IoU >= threshold).")
    parser.add_argument("--ground-truth", required=True, type=Path, metavar="GT.txt",
                        help="ground truth, 'subject video class onset apex offset' per line")
    parser.add_argument("--predictions", required=True, type=Path, metavar="DIR",
                        help="folder holding <dataset>_macro/ and <dataset>_micro/ (or macro/ and micro/), one "
                             "<subject>_<video>.txt of 'start end score' lines per video")
    parser.add_argument("--dataset", required=True, choices=("casme2", "samm_lv"),
                        help="dataset, which picks the baseline's length filters for the predictions")
    parser.add_argument("--variant", default="megc2020", choices=("megc2020", "megc2023", "both"),
                        help="counting variant (default megc2020)")
    parser.add_argument("--iou", type=_iou, default=0.5, help="IoU threshold of a hit (default 0.5)")
    parser.add_argument("--no-length-filter", action="store_true",
                        help="score every prediction, without the baseline's per-class length filters")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    parser.set_defaults(func=run)


def _iou(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Read the files, evaluate, print one table per variant; returns the exit code."""
    from ..spotting import evaluate, filter_by_length, read_ground_truth, read_predictions

    if args.json is not None:
        check_output_path(args.json, "--json output")  # before reading: the results are never lost to a bad path
    ground_truth = read_ground_truth(args.ground_truth)
    predictions = read_predictions(args.predictions, args.dataset)
    read = len(predictions)
    if not args.no_length_filter:
        predictions = filter_by_length(predictions, args.dataset)
    print(f"{args.dataset}: {len(ground_truth)} ground-truth intervals, {read} predictions read, "
          f"{len(predictions)} kept{' after the length filters' if not args.no_length_filter else ''}")
    variants = ("megc2020", "megc2023") if args.variant == "both" else (args.variant,)
    results = {}
    for variant in variants:
        result = evaluate(ground_truth, predictions, variant=variant, iou=args.iou)
        results[variant] = result.to_dict()
        print()
        print(result.table())
    if args.json is not None:
        report = {"dataset": args.dataset, "ground_truth": str(args.ground_truth),
                  "predictions": str(args.predictions), "length_filter": not args.no_length_filter,
                  "predictions_read": read, "predictions_kept": len(predictions), "results": results}
        write_atomically(args.json, json.dumps(report, indent=2) + "\n", "--json output")
    return 0
