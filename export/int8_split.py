"""int8 stream model: a split folder (``encoder.onnx`` per frame + ``head.onnx`` per window,
:mod:`export.split`) quantized part by part, checked as a whole against the fp32 split.

:func:`quantize_split` quantizes the encoder on the calibration clips' frames, then the head on the windows of
features the *int8* encoder gives for the same clips (so the head's ranges are those it meets in deployment), both
with :func:`export.int8.quantize_graph` (the same pre-processing, calibration, scope and types as a whole-model
int8 export). The check is the stream's own composition: int8 encoder then int8 head against fp32 encoder then
fp32 head, top-1 agreement and logit cosine on the held-out clips, with the same gate as
:func:`export.int8.quantize_int8`. Both files get the ``int8.*`` keys; the folder replaces ``out`` only once every
check passed. :mod:`edgefer.stream` and ``edgefer.load(folder)`` run it like the fp32 split.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from edgefer.errors import ArgumentError, OutputPathError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import folder_written_atomically
from edgefer.runtime.onnx_metadata import read_metadata_props

from .calibration_clips import CalibrationSet
from .int8 import Int8Report, QuantTypes, check_agreement, check_options, cpu_session, int8_figures, \
    quant_types_for_cpu, quantize_graph, write_int8
from .int8_scope import DEFAULT_KEEP_FP32, DEFAULT_SCOPE
from .split import ENCODER_FILE, HEAD_FILE


def split_logits(encoder: Path, head: Path, clips: np.ndarray) -> np.ndarray:
    """(N, K) logits of (N, T, C, H, W) clips through the encoder (the clip's frames as one batch) and the head
    (its window of features), clip by clip, as a stream sees them."""
    enc, hd = cpu_session(encoder, False), cpu_session(head, False)
    return np.concatenate([hd.run(None, {hd.get_inputs()[0].name: _features(enc, clip)[None]})[0] for clip in clips])


def _features(encoder, clip: np.ndarray) -> np.ndarray:
    return encoder.run(None, {encoder.get_inputs()[0].name: np.ascontiguousarray(clip, np.float32)})[0]


def quantize_split(fp32: str | Path, out: str | Path, clips: CalibrationSet, *, method: str = "minmax",
                   types: QuantTypes | None = None, keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32,
                   scope: str = DEFAULT_SCOPE, min_agreement: float = 0.95, calib_source: str = "") -> Int8Report:
    """Quantize the fp32 split folder ``fp32`` into the int8 split folder ``out``.

    Args:
        fp32: a folder written by :func:`export.split.export_split` (``encoder.onnx``, ``head.onnx``).
        out: the folder to write (replaced once every check passed; its parent must exist).
        clips: calibration and held-out clips, (N, T, C, H, W) float32 as the runtime prepares them
            (:func:`export.calibration_clips.calibration_clips`).
        method, types, keep_fp32, scope, min_agreement, calib_source: as :func:`export.int8.quantize_int8`; both
            parts get the same scope and ``keep_fp32`` (an entry other than the defaults must match a node of
            each part: op types such as ``MatMul`` do).

    Returns:
        :class:`export.int8.Int8Report` with ``path`` the folder, ``metadata`` the head's, and ``excluded`` the
        nodes kept in fp32 in both parts.

    Raises:
        ArgumentError: as :func:`export.int8.quantize_int8`; ``fp32`` lacks a part, or a part's metadata is not
            that part's.
        OutputPathError: ``out`` is a file, or its parent folder is missing or read-only.
        ExportError: quantization failed, or the composed agreement is below ``min_agreement`` (nothing written).
        MetadataError: a part is not an edgefer ONNX file.
    """
    check_options(method, min_agreement)
    fp32, out = Path(fp32), Path(out)
    if out.is_file():
        raise OutputPathError(f"cannot write {out}: it is a file; an int8 split model is a folder")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise OutputPathError(f"cannot write {out}: its folder {out.parent} is missing or not writable")
    types = types or quant_types_for_cpu()
    parts = {name: fp32 / name for name in (ENCODER_FILE, HEAD_FILE)}
    missing = [name for name, path in parts.items() if not path.is_file()]
    if missing:
        raise ArgumentError(f"{fp32} is not a split model folder: no {' or '.join(missing)} (edgefer export --split)")
    metadata = {name: ModelMetadata.from_props(read_metadata_props(path), source=str(path))
                for name, path in parts.items()}
    for name, part in ((ENCODER_FILE, "encoder"), (HEAD_FILE, "head")):
        if metadata[name].extra.get("split.part") != part:
            raise ArgumentError(f"{parts[name]} is not a split {part} (its metadata split.part is "
                                f"{metadata[name].extra.get('split.part')!r})")
    with folder_written_atomically(out, ".int8-split-") as tmp, tempfile.TemporaryDirectory(dir=out.parent) as work:
        scratch = Path(work)
        quant = {name: scratch / name for name in parts}
        options = dict(method=method, types=types, keep_fp32=keep_fp32, scope=scope, tmp=scratch, what=str(out))
        excluded = quantize_graph(parts[ENCODER_FILE], quant[ENCODER_FILE], clips.calibration, True, False,
                                  **options)
        int8_encoder = cpu_session(quant[ENCODER_FILE], False)
        windows = np.stack([_features(int8_encoder, clip) for clip in clips.calibration])
        excluded += quantize_graph(parts[HEAD_FILE], quant[HEAD_FILE], windows, False, False, **options)
        ref = split_logits(parts[ENCODER_FILE], parts[HEAD_FILE], clips.held_out)
        got = split_logits(quant[ENCODER_FILE], quant[HEAD_FILE], clips.held_out)
        top1, cos_mean, cos_min = check_agreement(ref, got, min_agreement, len(clips.held_out), str(out))
        written = {}
        for name in parts:
            model = onnx.load(str(quant[name]))
            figures = int8_figures(top1, cos_mean, cos_min, clips, method, calib_source, types, scope, excluded, model)
            written[name] = replace(metadata[name], extra={**dict(metadata[name].extra), **figures})
            write_int8(model, tmp / name, written[name])
    return Int8Report(out, written[HEAD_FILE], top1, cos_mean, cos_min, len(clips.held_out), len(clips.calibration),
                      types, excluded)
