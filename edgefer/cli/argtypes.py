"""Argument types shared by the subcommands: bad values are usage errors (exit 2) caught by argparse itself.

Each is a ``type=`` callable: it returns the parsed value or raises :class:`argparse.ArgumentTypeError`, which
argparse reports as ``edgefer COMMAND: error: argument --stride: must be >= 1, got 0`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (frames, batch sizes, repeats, threads)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a gap in frames)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a crop margin, as a fraction of the face box)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def config_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` -> ``(FIELD, VALUE)``, the value parsed as JSON when it is JSON, else kept as a string.

    Whether FIELD exists is the model's to say (:func:`edgefer.models.build_config`), once the model is known.
    """
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"expects FIELD=VALUE, got {text!r}")
    try:
        return field, json.loads(value)
    except json.JSONDecodeError:
        return field, value


def batch_profile(text: str):
    """``MIN:OPT:MAX`` (or one size) -> :class:`edgefer.export.tensorrt_profile.BatchProfile` (the batch axis's
    optimization profile); ``argparse.ArgumentTypeError`` (exit 2) otherwise."""
    from ..errors import ArgumentError
    from edgefer.export.tensorrt_profile import parse_batch

    try:
        return parse_batch(text)
    except ArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
