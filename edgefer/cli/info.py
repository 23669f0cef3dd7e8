"""``edgefer info PATH``: print an artefact's metadata."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print a model artefact's metadata")
    p.add_argument("path", help=".onnx, .pt or zoo:NAME")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _props(path: str) -> tuple[dict[str, str], str]:
    """(the ``edgefer.*`` metadata pairs, where they were read). An ``.onnx`` file's come straight from the file,
    with no ONNX Runtime session, so a custom-op model's show without its op library, and a face detector's
    (``edgefer.detector.*``) too; an expression model's are validated as :class:`ModelMetadata` first. Anything
    else goes through :func:`edgefer.load`."""
    from ..metadata import PREFIX, ModelMetadata

    if Path(path).suffix.lower() == ".onnx":
        from ..runtime.onnx_metadata import read_metadata_props

        props = {k: v for k, v in read_metadata_props(path).items() if k.startswith(PREFIX)}
        if f"{PREFIX}detector.model" in props:
            return props, "onnx file, face detector"
        ModelMetadata.from_props(props, source=path)  # one-line MetadataError when it is not edgefer's
        return props, "onnx file"
    from .. import load

    model = load(path)
    return model.metadata.to_props(), model.backend


def run(args) -> int:
    props, where = _props(args.path)
    if args.json:
        print(json.dumps({k.removeprefix("edgefer."): v for k, v in props.items()}, indent=2))
        return 0
    width = max(len(k) for k in props) - len("edgefer.")
    print(f"{args.path}  ({where})")
    for key, value in props.items():
        print(f"  {key.removeprefix('edgefer.'):<{width}}  {value if len(value) < 100 else value[:97] + '...'}")
    return 0
