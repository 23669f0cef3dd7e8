"""``edgefer zoo list`` and ``edgefer zoo fetch NAME``: the trained models of :mod:`edgefer.zoo`."""

from __future__ import annotations

import argparse

from .. import zoo


def register(subparsers) -> None:
    """Add the ``zoo`` subcommand (with ``list`` and ``fetch``) to the ``edgefer`` parser."""
    parser = subparsers.add_parser("zoo", help="list and fetch trained models converted from other packages",
                                   description=zoo.__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the zoo models, their source and whether they are cached")
    listing.set_defaults(func=_list)
    fetch = actions.add_parser("fetch", help="fetch and convert a zoo model; print its cached .onnx path")
    fetch.add_argument("name", choices=sorted(zoo.ZOO), metavar="NAME", help="zoo model name (see `edgefer zoo list`)")
    fetch.set_defaults(func=_fetch)


def _list(args: argparse.Namespace) -> int:
    for entry in zoo.list_entries():
        cached = zoo.artefact_path(entry)
        state = str(cached) if cached.is_file() else "not fetched yet"
        use = f"--detector {entry.name}" if entry.kind == "face-detector" else f"--model zoo:{entry.name}"
        print(f"zoo:{entry.name}\n  {entry.description}\n  source: {entry.source} ({entry.licence} licence)\n"
              f"  use: {use}\n  cached: {state}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    print(zoo.zoo_path(args.name))
    return 0
