"""On the board: export ONNX, build the fp16 and int8 TensorRT engines there, and time each: ms per clip, clips/s.

Engines are tied to the TensorRT version and the GPU they were built on, so they are built on the Jetson itself.
The script runs these commands (each is printed before it runs; ``--dry-run`` only prints them), then loads every
artefact with :func:`edgefer.load` and times the model on random input of its shape, printing one table that
names the device:

    edgefer export MODEL --weights CKPT --out DIR/MODEL.onnx
    edgefer export MODEL --weights CKPT --format engine --precision fp16 --out DIR/MODEL_fp16.engine
    edgefer export MODEL --weights CKPT --format engine --precision int8 --calib VIDEOS --out DIR/MODEL_int8.engine

(``--untrained --seed N`` instead of ``--weights`` for a timing-only run.) Each ``edgefer export`` checks what it
writes: the ONNX against PyTorch, the fp16 engine against ONNX Runtime (logit cosine >= 0.999, same top-1), the
int8 engine by top-1 agreement on held-out real clips; it refuses to write on failure, and so this script stops.

    python3 examples/jetson/build_and_bench.py --model msstnet --weights msstnet.pt --calib calib_videos/
    python3 examples/jetson/build_and_bench.py --onnx msstnet.onnx --onnx-only     # a desktop: ONNX Runtime only

Timing: after 3 warm-up calls, ``--repeats`` timed calls of the backend's forward pass on one float32 batch
(B, T, 3, H, W) at each ``--batch`` size; preprocessing (the same numpy code for every backend) is excluded.
ms/clip = median ms per call / B; clips/s = B / median seconds per call.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import edgefer
from edgefer.cli.argtypes import config_override, positive_int

#: Engine precisions built by default, in this order.
PRECISIONS = ("fp16", "int8")
WARMUP = 3


@dataclass(frozen=True)
class Row:
    """One line of the table: an artefact at one batch size (times in milliseconds)."""

    model: str
    artefact: str
    precision: str
    backend: str
    batch: int
    median_ms: float
    min_ms: float

    @property
    def ms_per_clip(self) -> float:
        return self.median_ms / self.batch

    @property
    def clips_per_s(self) -> float:
        return 1e3 * self.batch / self.median_ms


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="msstnet", choices=("msstnet", "stt", "fesnet"), help="model (default msstnet)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--weights", metavar="CKPT", help="edgefer checkpoint to export")
    source.add_argument("--untrained", action="store_true", help="export seeded untrained weights (timing only)")
    source.add_argument("--onnx", metavar="FILE.onnx", help="use this ONNX export instead of exporting one (with "
                                                           "--onnx-only; engines need --weights or --untrained)")
    p.add_argument("--seed", type=int, default=0, help="seed of --untrained weights")
    p.add_argument("--config", action="append", type=config_override, default=[], metavar="FIELD=JSON",
                   help="override a config field of the exported model (edgefer export --config)")
    p.add_argument("--calib", metavar="DIR_OR_VIDEO", help="real face videos to calibrate int8 on (required for int8)")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                   help="engines to build (default: fp16 int8)")
    p.add_argument("--out-dir", default="jetson_artefacts", metavar="DIR",
                   help="where the artefacts go (default ./jetson_artefacts; created)")
    p.add_argument("--batch", type=positive_int, nargs="+", default=[1, 4], metavar="B",
                   help="batch sizes timed (default 1 4; an engine's profile must cover them)")
    p.add_argument("--repeats", type=positive_int, default=50, help="timed calls per row (default 50)")
    p.add_argument("--onnx-device", choices=("cpu", "cuda"), default="cpu",
                   help="ONNX Runtime's provider for the ONNX row (cuda needs onnxruntime-gpu; default cpu)")
    p.add_argument("--onnx-only", action="store_true",
                   help="no engines: export (or take --onnx) and time the ONNX model only (a desktop, or no TensorRT)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    return p


def _source_args(args) -> list[str]:
    if args.weights:
        return ["--weights", args.weights]
    return ["--untrained", "--seed", str(args.seed)]


def export_commands(args, out: Path) -> list[tuple[Path, list[str]]]:
    """The ``edgefer export`` commands to run, as (the artefact each writes, its argv after ``edgefer``)."""
    common = [*_source_args(args)] + [a for k, v in args.config for a in ("--config", f"{k}={_json(v)}")]
    commands = []
    if not args.onnx:
        onnx = out / f"{args.model}.onnx"
        commands.append((onnx, ["export", args.model, *common, "--out", str(onnx)]))
    if not args.onnx_only:
        for precision in args.precisions:
            engine = out / f"{args.model}_{precision}.engine"
            calib = ["--calib", str(args.calib)] if precision == "int8" else []
            commands.append((engine, ["export", args.model, *common, "--format", "engine", "--precision", precision,
                                      *calib, "--out", str(engine)]))
    return commands


def _json(value) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def tensorrt_missing() -> str | None:
    """Why engines cannot be built here (TensorRT or its builder missing), or None when they can."""
    if importlib.util.find_spec("tensorrt") is None:
        return ("TensorRT is not installed here (import tensorrt fails): on JetPack 6 it is `sudo apt install "
                "python3-libnvinfer` (see README.md); pass --onnx-only to time the ONNX model alone")
    try:
        from edgefer.export.tensorrt_build import tensorrt_available
    except ImportError as exc:
        return f"edgefer's TensorRT engine builder cannot be imported ({exc})"
    if not tensorrt_available():
        return "TensorRT is installed but cannot be used (import tensorrt failed); pass --onnx-only"
    return None


def jetson_model() -> str | None:
    """The board's name from the device tree (``/proc/device-tree/model``, e.g. "NVIDIA Jetson AGX Orin Developer
    Kit"), or None off a Jetson."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def time_artefact(path: Path, batches, repeats: int, device: str | None) -> tuple[list[Row], object]:
    """Load ``path`` with :func:`edgefer.load` and time its forward pass at each batch size (see the module doc).

    Returns:
        (one :class:`Row` per batch size, the artefact's :class:`~edgefer.metadata.ModelMetadata`).
    """
    import numpy as np

    model = edgefer.load(path, device=device)
    m = model.metadata
    frame = (m.channels, *m.frame_size)
    rows = []
    for batch in batches:
        shape = (batch, *frame) if m.input_layout == "NCHW" else (batch, m.clip_length, *frame)
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        for _ in range(WARMUP):
            model._forward(x)  # the backend's call on a prepared float batch, as edgefer.bench times it
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model._forward(x)
            times.append((time.perf_counter() - start) * 1e3)
        rows.append(Row(m.model, path.name, m.precision or "fp32", model.backend, batch, statistics.median(times),
                        min(times)))
    return rows, m


def print_table(rows: list[Row], header: str) -> None:
    """One table: artefact, precision, backend, B, median and min ms per call, ms per clip, clips/s."""
    print(header)
    print(f"{'artefact':<24} {'precision':<9} {'backend':<16} {'B':>3} {'median ms':>10} {'min ms':>8} "
          f"{'ms/clip':>8} {'clips/s':>8}")
    for r in rows:
        print(f"{r.artefact:<24} {r.precision:<9} {r.backend:<16} {r.batch:>3} {r.median_ms:>10.2f} {r.min_ms:>8.2f} "
              f"{r.ms_per_clip:>8.2f} {r.clips_per_s:>8.1f}")


def main(argv: list[str] | None = None) -> int:
    from edgefer.bench.machine import describe

    parser = _parser()
    args = parser.parse_args(argv)
    if not (args.weights or args.untrained or args.onnx):
        parser.error("give --weights CKPT, --untrained or --onnx FILE.onnx")
    if args.onnx and not args.onnx_only:
        parser.error("--onnx takes an existing export for the ONNX row only; add --onnx-only, or give --weights / "
                     "--untrained to build engines")
    if not args.onnx_only and "int8" in args.precisions and not args.calib:
        parser.error("an int8 engine needs --calib DIR_OR_VIDEO (real face videos); or --precisions fp16")
    out = Path(args.out_dir)
    commands = export_commands(args, out)
    if args.dry_run:
        for _, argv_ in commands:
            print("$ edgefer " + shlex.join(argv_))
        return 0
    if not args.onnx_only:
        missing = tensorrt_missing()
        if missing:
            raise edgefer.BackendUnavailableError(missing)
    if args.onnx and not Path(args.onnx).is_file():
        raise edgefer.ModelFileError(f"--onnx {args.onnx}: no such file")
    out.mkdir(parents=True, exist_ok=True)
    for artefact, argv_ in commands:
        print("$ edgefer " + shlex.join(argv_), flush=True)
        done = subprocess.run([sys.executable, "-m", "edgefer", *argv_])
        if done.returncode != 0:
            raise edgefer.ExportError(f"`edgefer {' '.join(argv_[:2])}` failed (exit {done.returncode}) writing "
                                      f"{artefact}; see its message above")
    onnx = Path(args.onnx) if args.onnx else out / f"{args.model}.onnx"
    artefacts = [(onnx, args.onnx_device)]
    artefacts += [(a, None) for a, argv_ in commands if a.suffix == ".engine"]  # None: the engine's cuda
    rows, gpus = [], []
    for path, device in artefacts:
        timed, metadata = time_artefact(path, args.batch, args.repeats, device)
        rows += timed
        if metadata.device_name:  # an engine records the GPU and TensorRT it was built for (and runs on)
            gpus.append(f"gpu: {metadata.device_name} (compute capability {metadata.compute_capability}), "
                        f"TensorRT {metadata.tensorrt_version}")
    board = jetson_model()
    header = (f"build_and_bench: {rows[0].model}, median of {args.repeats} calls after {WARMUP} warm-up\n"
              f"machine: {board + '; ' if board else ''}{describe()}" + "".join(f"\n{g}" for g in sorted(set(gpus))))
    print_table(rows, header)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except edgefer.EdgeferError as exc:  # no TensorRT, a failed export, an engine for another GPU: one line
        print(f"build_and_bench: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
