"""PyTorch model -> ONNX file with edgefer metadata, checked before it is written.

The export (1) traces the model with ``torch.onnx.export`` and a dynamic batch axis, (2) embeds the
:class:`edgefer.metadata.ModelMetadata` in ``metadata_props``, (3) runs ``onnx.checker`` (full check, with shape
inference), and (4) compares ONNX Runtime against PyTorch on random clips and on any real clips given. If the
max abs difference of the outputs exceeds ``atol`` (default 1e-4) it raises :class:`edgefer.errors.ExportError`
and writes nothing: the file appears at ``out`` only once every check passed.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from edgefer.errors import ExportError
from edgefer.metadata import ModelMetadata
from edgefer.outputs import check_output_path

DEFAULT_OPSET = 17
EXPORTERS = ("torchscript", "dynamo")


@dataclass
class ExportReport:
    """What an export wrote and measured.

    Attributes:
        path: the ONNX file written.
        metadata: the metadata embedded in it.
        max_abs_diff: largest |ONNX Runtime - PyTorch| output difference per check set ("random", "real").
        opset: the ONNX opset of the default domain.
    """

    path: Path
    metadata: ModelMetadata
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    opset: int = DEFAULT_OPSET


def export_onnx(model: torch.nn.Module, out: str | Path, metadata: ModelMetadata, *, opset: int = DEFAULT_OPSET,
                custom_ops: bool = False, real_clips: np.ndarray | None = None, random_batches: Sequence[int] = (1, 2),
                atol: float = 1e-4, seed: int = 0, exporter: str = "torchscript") -> ExportReport:
    """Export ``model`` to ``out`` and check it; write nothing unless every check passes.

    Args:
        model: an edgefer model taking (B, T, C, H, W) float32 clips (``metadata.input_layout == "BTCHW"``).
        out: destination ``.onnx`` path; its folder must exist. It is replaced in one ``os.replace`` once every
            check passed, so a reader never sees a partial file.
        metadata: embedded in ``metadata_props`` (see :func:`edgefer.models.checkpoint.artefact_metadata`).
        opset: ONNX opset of the default domain.
        custom_ops: emit edgefer's kernels as ``edgefer``-domain custom nodes (needs the compiled ops and the
            ONNX Runtime custom-op library); standard ops otherwise, loadable by any runtime.
        real_clips: (B, T, C, H, W) float32 clips preprocessed as the runtime would, compared too.
        random_batches: batch sizes of the uniform-random clips compared (several sizes check the dynamic axis).
        atol: the largest max abs output difference accepted.
        seed: seed of the random clips.
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``) or ``"dynamo"``.

    Returns:
        An :class:`ExportReport` with the measured differences.

    Raises:
        ExportError: tracing, the ONNX checker or the parity check failed (the message gives the difference).
        OutputPathError: ``out`` cannot be written (a directory, a missing or read-only folder); raised before
            the export starts.
        ValueError: unknown exporter, or a model layout this exporter does not handle.
    """
    import onnx

    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; choose one of {EXPORTERS}")
    if metadata.input_layout != "BTCHW":
        raise ValueError(f"export_onnx exports clip models (BTCHW); this one is {metadata.input_layout}")
    out = check_output_path(out, "ONNX output")
    model = model.eval()
    previous_kernels = model.kernels
    model.kernels = "cpp" if custom_ops else "reference"
    try:
        shape = (metadata.clip_length, metadata.channels, *metadata.frame_size)
        example = torch.rand(1, *shape, generator=torch.Generator().manual_seed(seed))
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            raw = Path(tmp, "raw.onnx")
            _torch_export(model, example, raw, opset, custom_ops, exporter)
            proto = onnx.load(str(raw))
            del proto.metadata_props[:]
            for key, value in metadata.to_props().items():
                proto.metadata_props.add(key=key, value=value)
            final = Path(tmp, "final.onnx")
            onnx.save(proto, str(final))
            try:
                onnx.checker.check_model(str(final), full_check=not custom_ops)
            except onnx.checker.ValidationError as exc:
                raise ExportError(f"the exported graph fails onnx.checker: {exc}") from None
            diffs = _parity(model, final, shape, random_batches, real_clips, seed, custom_ops)
            worst = max(diffs.values())
            if not worst <= atol:  # also catches NaN
                raise ExportError(f"ONNX Runtime disagrees with PyTorch: max abs output difference {worst:.3g} "
                                  f"> {atol:g} ({diffs}); {out} was not written")
            os.replace(final, out)
    finally:
        model.kernels = previous_kernels
    return ExportReport(out, metadata, diffs, opset)


@contextmanager
def tracing():
    """``torch.no_grad()`` with the warnings an edgefer trace is expected to give silenced: the ops' shape checks
    read static sizes (``TracerWarning``: constant per export, only the batch axis is dynamic), and the MELayer's
    constant pads (:func:`edgefer.ops.reference.multiscale_embedding`), which ``F.pad``'s symbolic reverses with a
    step -1 Slice that torch's constant folding leaves to ONNX Runtime's (it folds it when a session loads the
    graph)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        yield


def _torch_export(model, example, path: Path, opset: int, custom_ops: bool, exporter: str) -> None:
    kwargs: dict = dict(input_names=["clip"], output_names=["output"], opset_version=opset)
    if custom_ops:
        from .custom_ops import export_kwargs

        kwargs.update(export_kwargs(exporter))
    try:
        with tracing():
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                                  dynamic_shapes={"clip": {0: batch}}, **kwargs)
            else:
                torch.onnx.export(model, (example,), str(path), dynamo=False,
                                  dynamic_axes={"clip": {0: "batch"}, "output": {0: "batch"}}, **kwargs)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({exporter}): {type(exc).__name__}: {exc}") from exc


def _parity(model, path: Path, shape, random_batches, real_clips, seed, custom_ops) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if custom_ops:
        from edgefer import ortops

        ortops.register(options)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return max_abs_diff(model, lambda clip: session.run(None, {"clip": clip.numpy()})[0], shape, random_batches,
                        real_clips, seed)


def max_abs_diff(model, run, shape, random_batches, real_clips, seed: int) -> dict[str, float]:
    """The largest ``|run(clip) - model(clip)|`` over random clips and, when given, real ones.

    Args:
        model: the PyTorch model (eval mode), the reference.
        run: the exported artefact on a (B, *shape) float32 torch clip -> numpy output of the model's shape.
        shape: one clip's input shape (without the batch).
        random_batches: the batch sizes of the uniform-random clips (seeded with ``seed + 1``).
        real_clips: (N, *shape) float32 preprocessed real clips, or None.

    Returns:
        ``{"random": d}``, plus ``"real": d`` when real clips were given.
    """
    generator = torch.Generator().manual_seed(seed + 1)
    sets = {"random": [torch.rand(b, *shape, generator=generator) for b in random_batches]}
    if real_clips is not None and len(real_clips):
        sets["real"] = [torch.from_numpy(np.ascontiguousarray(real_clips, dtype=np.float32))]
    diffs = {}
    for name, clips in sets.items():
        worst = 0.0
        for clip in clips:
            with torch.no_grad():
                expected = model(clip).numpy()
            worst = max(worst, float(np.max(np.abs(run(clip) - expected))))
        diffs[name] = worst
    return diffs
