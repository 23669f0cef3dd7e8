"""``edgefer info PATH``: print an artefact's metadata."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model artefact's metadata")
    p.add_argument("path", help=".onnx, .pt or zoo:NAME")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import load

    model = load(args.path)
    props = model.metadata.to_props()
    if args.json:
        print(json.dumps({k.removeprefix("edgefer."): v for k, v in props.items()}, indent=2))
        return 0
    width = max(len(k) for k in props) - len("edgefer.")
    print(f"{args.path}  ({model.backend})")
    for key, value in props.items():
        print(f"  {key.removeprefix('edgefer.'):<{width}}  {value if len(value) < 100 else value[:97] + '...'}")
    return 0
