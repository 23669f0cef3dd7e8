"""The ``edgefer`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package with ``register(subparsers)``, which adds its parser
and sets ``func(args) -> int``; shared argument types live in :mod:`.argtypes`. Every entry point follows one rule:

- a usage error (a flag value argparse can check: ``--stride 0``, an unknown choice) exits 2, through argparse;
- an expected failure (:class:`edgefer.errors.EdgeferError`) prints one line, ``edgefer: error: ...``, and
  exits 1;
- any other exception prints one line, ``edgefer: internal error: TYPE: ... (rerun with --debug for the
  traceback)``, and exits 1;
- ``--debug`` (before or after the subcommand) lets the exception through, traceback and all (exit 1);
- a closed output pipe (``edgefer info F | head``) ends the command quietly, exit 141 (128 + SIGPIPE).

Warnings that edgefer issues (for instance a video shorter than its container promises) print as one line,
``edgefer: warning: ...``; other packages' warnings keep Python's format.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from ..errors import EdgeferError, UntrainedWeightsWarning

#: Subcommand modules, in the order ``edgefer --help`` lists them.
COMMANDS = ("predict", "stream", "export", "prepare", "train", "evaluate", "info", "samples", "spot", "eval_spotting", "zoo",
            "bench")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose every (sub)command takes ``--debug``, so it may follow the subcommand too.

    Subparsers are built with the parent's class, so nested actions (``bench kernels``) get it as well. The flag
    is suppressed when absent, so that a subcommand's parser does not reset a ``--debug`` given before it.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="on an error, show the Python traceback instead of one line")


def build_parser() -> argparse.ArgumentParser:
    """The ``edgefer`` parser, with every subcommand of :data:`COMMANDS` that this build has."""
    from .._version import __version__

    parser = _Parser(prog="edgefer", description="Video facial expression analysis at the edge.")
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
    """Entry point of the ``edgefer`` console script; returns the process exit code (0, 1, 2 or 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWeightsWarning)  # every command reports trained/untrained itself
        warnings.showwarning = _show_warning
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at interpreter exit
            return code
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # the reader went away (`edgefer info F | head`): stop quietly, as `cat` does
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (Python flushes stdout again at exit)
            return 141
        except EdgeferError as exc:
            if debug:
                raise
            print(f"edgefer: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except Exception as exc:
            if debug:
                raise
            print(f"edgefer: internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the "
                  "traceback)", file=sys.stderr)
            return 1


def _one_line(exc: BaseException) -> str:
    """An exception's message as one line: its first non-empty line, joined with the next while that line only
    introduces what follows (ends with ``:``); the exception's type name when the message is empty."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines.pop(0)
    while text.endswith(":") and lines:
        text = f"{text} {lines.pop(0)}"
    return text


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: edgefer's own warnings as one ``edgefer: warning:`` line."""
    if category.__module__.partition(".")[0] == "edgefer":
        print(f"edgefer: warning: {_one_line(message)}", file=sys.stderr if file is None else file)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
