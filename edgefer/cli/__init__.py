"""The ``edgefer`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package with ``register(subparsers)``, which adds its parser
and sets ``func(args) -> int``. Expected failures (:class:`edgefer.errors.EdgeferError`) print one line,
``edgefer: error: ...``, and exit 1, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from ..errors import EdgeferError, UntrainedWeightsWarning

#: Subcommand modules, in the order ``edgefer --help`` lists them.
COMMANDS = ("predict", "export", "info", "samples", "spot", "eval_spotting", "zoo", "bench")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="edgefer", description="Video facial expression analysis at the edge.")
    parser.add_argument("--version", action="version", version=f"edgefer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # that subcommand is not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgefer`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UntrainedWeightsWarning)  # every command reports trained/untrained itself
    try:
        return int(args.func(args) or 0)
    except EdgeferError as exc:
        print(f"edgefer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
