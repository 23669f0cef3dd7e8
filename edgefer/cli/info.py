"""``edgefer info PATH``: print an artefact's metadata."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model artefact's metadata")
    p.add_argument("path", help=".onnx, .pt or zoo:NAME")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _metadata(path: str):
    """(metadata, where it was read): an ``.onnx`` file's straight from the file, with no ONNX Runtime session,
    so a custom-op model's shows without its op library; anything else through :func:`edgefer.load`."""
    if Path(path).suffix.lower() == ".onnx":
        from ..metadata import ModelMetadata
        from ..runtime.onnx_metadata import read_metadata_props

        return ModelMetadata.from_props(read_metadata_props(path), source=path), "onnx file"
    from .. import load

    model = load(path)
    return model.metadata, model.backend


def run(args) -> int:
    metadata, where = _metadata(args.path)
    props = metadata.to_props()
    if args.json:
        print(json.dumps({k.removeprefix("edgefer."): v for k, v in props.items()}, indent=2))
        return 0
    width = max(len(k) for k in props) - len("edgefer.")
    print(f"{args.path}  ({where})")
    for key, value in props.items():
        print(f"  {key.removeprefix('edgefer.'):<{width}}  {value if len(value) < 100 else value[:97] + '...'}")
    return 0
