"""CI export: every model to checked ONNX (and, where TensorRT is installed, to checked fp16 engines), one summary.

Run as ``python -m edgefer.export.ci_export --out DIR [--untrained --seed N | --weights MODEL=CKPT ...]``.

For each model (``msstnet``, ``stt``, ``fesnet`` by default) it takes the same path as ``edgefer export``: the
model and its metadata from a checkpoint (:func:`edgefer.models.checkpoint.load_checkpoint`) or freshly seeded
(``--untrained``), then :func:`edgefer.export.onnx_export.export_onnx`, which writes ``DIR/MODEL.onnx`` only if
``onnx.checker`` passes and ONNX Runtime matches PyTorch within ``--atol`` (the parity gate). Where
``import tensorrt`` works it also builds ``DIR/MODEL_fp16.engine`` with
:func:`edgefer.export.tensorrt_build.build_engine`, which reloads the engine and checks it against ONNX Runtime
(and refuses to write on a mismatch). Where TensorRT is absent the summary says ``"tensorrt": "skipped (not
installed)"`` (or, with TensorRT but no CUDA device, ``"skipped (... no CUDA device ...)"``); neither is a
failure.

The summary JSON (``DIR/summary.json`` unless ``--summary``) holds, per model: the artefact path, the opset, the
max abs difference against PyTorch (worst and per check set), pass/fail, the error if any, the seconds taken,
and the engine's entry; plus the machine (:func:`edgefer.bench.machine.describe`) and the library versions.

Exit status: 0 when every model (and every engine built) held; 1 when one failed, with the failing models named
on stderr (``ci_export: error: failed: stt (...)``); 2 for a usage error (argparse). A model that fails does not
stop the others: the summary always covers them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from edgefer.cli.argtypes import config_override, non_negative_float, positive_int
from edgefer.errors import ArgumentError, EdgeferError, OutputPathError
from edgefer.outputs import check_output_path, write_atomically

#: The models exported by default, in this order.
MODELS = ("msstnet", "stt", "fesnet")
#: The summary's ``tensorrt`` field where TensorRT cannot be imported.
TENSORRT_SKIPPED = "skipped (not installed)"


def model_config(text: str) -> tuple[str | None, str, Any]:
    """``[MODEL:]FIELD=JSON`` -> ``(MODEL or None, FIELD, value)``; without ``MODEL:`` it applies to every model."""
    head, sep, _ = text.partition("=")
    model, colon, _ = head.partition(":")
    if not colon:
        return (None, *config_override(text))
    if model not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {model!r} in {text!r}; models are {', '.join(MODELS)}")
    return (model, *config_override(text[len(model) + 1:]))


def model_weights(text: str) -> tuple[str, str]:
    """``MODEL=CKPT`` -> ``(MODEL, CKPT)``."""
    model, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expects MODEL=CKPT, got {text!r}")
    if model not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {model!r} in {text!r}; models are {', '.join(MODELS)}")
    return model, path


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m edgefer.export.ci_export``."""
    p = argparse.ArgumentParser(prog="python -m edgefer.export.ci_export",
                                description="Export every model to ONNX with the parity gate (and fp16 TensorRT "
                                            "engines where TensorRT is installed); write a summary JSON; exit 0 only "
                                            "if everything held.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for MODEL.onnx, MODEL_fp16.engine and the "
                                                              "summary (created if missing; its parent must exist)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL",
                   help=f"models to export (default: {' '.join(MODELS)})")
    p.add_argument("--weights", action="append", type=model_weights, default=[], metavar="MODEL=CKPT",
                   help="checkpoint of a model (repeat per model)")
    p.add_argument("--untrained", action="store_true",
                   help="export freshly initialised weights (seeded with --seed) for every model without --weights")
    p.add_argument("--seed", type=int, default=0, help="seed of --untrained weights and of the random check clips")
    p.add_argument("--config", action="append", type=model_config, default=[], metavar="[MODEL:]FIELD=JSON",
                   help="override a config field of one model (msstnet:dim=64) or of every model (dim=64); repeat")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--atol", type=non_negative_float, default=1e-4, help="largest accepted max abs logit difference (default 1e-4)")
    p.add_argument("--check-video", metavar="VIDEO", help="also compare on real face clips from this video (ONNX and "
                                                          "engines)")
    p.add_argument("--skip-tensorrt", action="store_true", help="do not build engines even where TensorRT is installed")
    p.add_argument("--summary", metavar="FILE.json", help="where to write the summary (default: DIR/summary.json)")
    return p


def _jsonable(value: Any) -> Any:
    """``value`` with dataclasses, paths, numpy scalars and arrays turned into JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def engine_support() -> tuple[str | None, str]:
    """Whether fp16 engines can be built here: (TensorRT's version or None, the summary's ``tensorrt`` field).

    They can where ``import tensorrt`` works (:func:`edgefer.export.tensorrt_build.tensorrt_available`),
    cuda-python imports and a CUDA device is visible (:class:`edgefer.runtime.cuda_runtime.CudaRuntime`): then
    ``(version, version)``. Otherwise ``(None, "skipped (...)")`` with the reason: :data:`TENSORRT_SKIPPED`
    where TensorRT is not installed. Neither is a failure.
    """
    from edgefer.export.tensorrt_build import tensorrt_available

    if not tensorrt_available():
        return None, TENSORRT_SKIPPED
    import tensorrt

    version = str(tensorrt.__version__)
    try:
        from edgefer.runtime.cuda_runtime import CudaRuntime

        devices = CudaRuntime().device_count()
    except EdgeferError as exc:  # cuda-python missing, or the CUDA driver refuses
        return None, f"skipped (TensorRT {version} installed, but {exc})"
    if devices < 1:
        return None, f"skipped (TensorRT {version} installed, no CUDA device visible)"
    return version, version


def export_one(name: str, out: Path, *, weights: str | None, overrides: dict, seed: int, opset: int, atol: float,
               check_video: str | None, engines: bool) -> dict[str, Any]:
    """Export ``name`` to ``out/NAME.onnx`` (and ``out/NAME_fp16.engine`` when ``engines``) and report it.

    Returns:
        The model's summary entry: ``model``, ``weights`` (the checkpoint, or ``"untrained (seed N)"``),
        ``trained``, ``path`` (None on failure), ``opset``, ``max_abs_diff`` (worst over the check sets, float or
        None), ``max_abs_diff_by_set`` ({"random": d, "real": d}), ``atol``, ``passed``, ``error`` (one line or
        None), ``seconds`` (the ONNX export, wall clock) and ``engine`` (a dict: ``passed``, ``path``,
        ``seconds``, ``error``, ``report``: the builder's figures, cosine and top-1 against ONNX Runtime; or the
        summary's ``"skipped (...)"`` reason).
        Expected failures (an :class:`~edgefer.errors.EdgeferError`, including the parity gate's
        :class:`~edgefer.errors.ExportError`) are recorded, never raised.
    """
    from edgefer.export.onnx_export import export_onnx

    entry: dict[str, Any] = {"model": name, "weights": weights or f"untrained (seed {seed})", "trained": None,
                             "path": None, "opset": opset, "max_abs_diff": None, "max_abs_diff_by_set": None,
                             "atol": atol, "passed": False, "error": None, "seconds": None,
                             "engine": None}
    start = time.perf_counter()
    real = None
    try:
        from edgefer.models.checkpoint import model_for_export

        model, metadata, trained = model_for_export(name, weights, seed=seed, overrides=overrides)
        entry["trained"] = trained
        if check_video:
            from edgefer.pipeline import reference_clips

            real = reference_clips(check_video, metadata)
        report = export_onnx(model, out / f"{name}.onnx", metadata, opset=opset, real_clips=real, atol=atol, seed=seed)
        entry.update(path=str(report.path), opset=report.opset, max_abs_diff=max(report.max_abs_diff.values()),
                     max_abs_diff_by_set=dict(report.max_abs_diff), passed=True)
    except EdgeferError as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry["seconds"] = round(time.perf_counter() - start, 3)
    if engines and entry["passed"]:
        entry["engine"] = build_fp16_engine(Path(entry["path"]), out / f"{name}_fp16.engine", real)
        entry["passed"] = entry["engine"]["passed"]
    elif engines:
        entry["engine"] = "skipped (the ONNX export failed)"
    return entry


def build_fp16_engine(onnx_path: Path, engine_path: Path, check_clips) -> dict[str, Any]:
    """Build and check an fp16 engine with :func:`edgefer.export.tensorrt_build.build_engine` (TensorRT needed).

    Returns:
        ``{"path", "passed", "error", "seconds", "report"}``: the engine written and the builder's figures
        (precision, TensorRT version, compute capability, device name, the smallest logit cosine and the top-1
        agreement against ONNX Runtime, the batch profile, which clips were compared, the precision rule), or the
        one-line error with which the builder refused to write.
    """
    from edgefer.export.tensorrt_build import build_engine

    start = time.perf_counter()
    entry: dict[str, Any] = {"path": None, "passed": False, "error": None, "seconds": None, "report": None}
    try:
        report = build_engine(onnx_path, engine_path, precision="fp16", check_clips=check_clips)
        fields = ("precision", "tensorrt_version", "compute_capability", "device_name", "cosine", "top1_agreement",
                  "profile", "check_clips")
        entry.update(path=str(report.path), passed=True,
                     report={name: _jsonable(getattr(report, name)) for name in fields} | {"rule": report.plan.reason})
    except EdgeferError as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry["seconds"] = round(time.perf_counter() - start, 3)
    return entry


def run(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """Export what ``args`` asks for; return (the summary, the path it was written to).

    Raises:
        ArgumentError: a model has neither ``--weights`` nor ``--untrained``, or ``--weights`` names a model
            twice; OutputPathError: ``--out`` or ``--summary`` cannot be written (checked before any export).
    """
    import onnxruntime
    import torch

    from edgefer import __version__
    from edgefer.bench.machine import describe

    weights = {}
    for model, path in args.weights:
        if model in weights:
            raise ArgumentError(f"--weights names {model} twice")
        weights[model] = path
    missing = [m for m in args.models if m not in weights and not args.untrained]
    if missing:
        raise ArgumentError(f"no weights for {', '.join(missing)}: give --weights MODEL=CKPT or --untrained")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"cannot write --out {out}: it is a file, not a folder")
    if not out.parent.is_dir():
        raise OutputPathError(f"cannot write --out {out}: its folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    summary_path = check_output_path(args.summary or out / "summary.json", "--summary")

    trt, tensorrt = (None, "skipped (--skip-tensorrt)") if args.skip_tensorrt else engine_support()
    engines = trt is not None
    entries = []
    for name in args.models:
        overrides = {field: value for model, field, value in args.config if model in (None, name)}
        entry = export_one(name, out, weights=weights.get(name), overrides=overrides, seed=args.seed,
                           opset=args.opset, atol=args.atol, check_video=args.check_video, engines=engines)
        entries.append(entry)
        _print_entry(entry)
    for entry in entries:
        if entry["engine"] is None:
            entry["engine"] = tensorrt if not engines else "skipped (not built)"
    summary = {"edgefer": __version__, "machine": describe(), "torch": torch.__version__,
               "onnxruntime": onnxruntime.__version__,
               "tensorrt": tensorrt,
               "opset": args.opset, "atol": args.atol, "check_video": args.check_video,
               "models": entries, "failed": [e["model"] for e in entries if not e["passed"]],
               "passed": all(e["passed"] for e in entries)}
    write_atomically(summary_path, json.dumps(_jsonable(summary), indent=1), "--summary")
    return summary, summary_path


def _print_entry(entry: dict[str, Any]) -> None:
    if entry["passed"] or entry["max_abs_diff"] is not None:
        diff = f"max abs diff {entry['max_abs_diff']:.2e}" if entry["max_abs_diff"] is not None else ""
        line = f"{entry['model']:<8} {'PASS' if entry['passed'] else 'FAIL'}  opset {entry['opset']}  {diff}  " \
               f"{entry['seconds']:.1f} s  {entry['path']}"
    else:
        line = f"{entry['model']:<8} FAIL  {entry['error']}  ({entry['seconds']:.1f} s)"
    print(line, flush=True)
    engine = entry["engine"]
    if isinstance(engine, dict):
        state = f"PASS {engine['path']}" if engine["passed"] else f"FAIL {engine['error']}"
        print(f"{'':<8} fp16 engine {state}  ({engine['seconds']:.1f} s)", flush=True)


def _reason(entry: dict[str, Any]) -> str:
    engine = entry["engine"]
    if entry["error"]:
        return entry["error"]
    if isinstance(engine, dict) and engine["error"]:
        return f"fp16 engine: {engine['error']}"
    return "failed"


def main(argv: Sequence[str] | None = None) -> int:
    """The command: 0 when every export held, 1 on a failed model or an expected error, 2 on a usage error."""
    args = parser().parse_args(argv)
    try:
        summary, path = run(args)
    except EdgeferError as exc:
        print(f"ci_export: error: {exc}", file=sys.stderr)
        return 1
    print(f"tensorrt: {summary['tensorrt']}")
    print(f"machine: {summary['machine']}")
    print(f"wrote {path}")
    if not summary["passed"]:
        failed = "; ".join(f"{e['model']} ({_reason(e)})" for e in summary["models"] if not e["passed"])
        print(f"ci_export: error: failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
