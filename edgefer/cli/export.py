"""``edgefer export MODEL --weights CKPT --out FILE.onnx`` (or ``--untrained --seed N``).

``--format engine`` builds a TensorRT engine (:func:`edgefer.export.tensorrt_build.build_engine`) from the checked
fp32 ONNX export; ``--format triton`` writes a Triton Inference Server model repository
(:func:`edgefer.export.triton_repository.write_repository`) holding the ONNX or, with ``--triton-backend tensorrt``,
the engine.
"""

from __future__ import annotations

from edgefer.export.int8_scope import DEFAULT_SCOPE, SCOPES

from ..outputs import check_output_path
from .argtypes import batch_profile, config_override, non_negative_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX (or a TensorRT engine, a Triton repository), "
                                             "checked against PyTorch",
                              description="Export an edgefer model to ONNX with metadata. The file is written only "
                                          "if onnx.checker passes and ONNX Runtime matches PyTorch within --atol.")
    p.add_argument("model", help="model name: msstnet, stt, fesnet; or zoo:NAME (zoo:fer-minixception) with --int8, "
                                 "which quantizes the zoo's converted ONNX file")
    source = p.add_mutually_exclusive_group()  # one of them is required, except for zoo:NAME (checked in run)
    source.add_argument("--weights", metavar="CKPT", help="edgefer checkpoint or bare state dict (.pt)")
    source.add_argument("--untrained", action="store_true", help="export freshly initialised weights (for testing)")
    p.add_argument("--seed", type=int, default=0, help="seed for --untrained weights and the random check clips")
    p.add_argument("--out", required=True, metavar="FILE.onnx",
                   help="the .onnx, the .engine (with FILE.engine.json beside it) or the Triton repository folder")
    p.add_argument("--format", choices=("onnx", "engine", "triton"), default="onnx",
                   help="onnx (default); engine: a TensorRT plan built and checked on this GPU; triton: a Triton "
                        "Inference Server model repository at --out")
    p.add_argument("--config", action="append", type=config_override, default=[], metavar="FIELD=JSON",
                   help="override a config field, e.g. --config dim=256 (value parsed as JSON, else a string)")
    p.add_argument("--check-video", metavar="VIDEO", help="also compare on real face clips from this video")
    p.add_argument("--face-align", action="store_true",
                   help="the model was trained on eye-aligned crops (eye line levelled with the detector's keypoints): "
                        "recorded in the metadata, so predict and spot crop the same way")
    p.add_argument("--face-margin", type=non_negative_float, default=None, metavar="FRACTION",
                   help="the crop margin per side the model was trained with, as a fraction of the face box "
                        "(default: the model's, 0.2)")
    p.add_argument("--split", action="store_true",
                   help="write a stream model: --out names a folder with encoder.onnx (per frame) and head.onnx "
                        "(per window), checked against the whole model (msstnet, stt); edgefer.stream caches "
                        "the encoder's per-frame features; with --int8, both parts are int8, checked together")
    p.add_argument("--custom-ops", action="store_true", help="emit edgefer custom ops (needs the custom-op library)")
    p.add_argument("--opset", type=positive_int, default=17)
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted max abs logit difference")
    q = p.add_argument_group("int8", "static int8 QDQ quantization with onnxruntime.quantization (CPU by default)")
    q.add_argument("--int8", action="store_true", help="write an int8 QDQ model (per-channel weights) to --out")
    q.add_argument("--calib", metavar="DIR_VIDEO_OR_LIST",
                   help="real face clips to calibrate on and to check against fp32 (held-apart clips): a video, a "
                        "folder of videos, or a Former-DFER annotation list (.txt: frame_dir num_frames label); "
                        "required with --int8")
    q.add_argument("--calib-method", choices=("minmax", "entropy", "percentile"), default="minmax")
    q.add_argument("--calib-clips", type=positive_int, default=8, metavar="N", help="clips per video (default 8)")
    q.add_argument("--int8-types", choices=("auto", "tensorrt"), default="auto",
                   help="auto: from this CPU's ISA (U8S8 on x86, +reduce_range without VNNI; S8S8 on ARM); "
                        "tensorrt: symmetric signed int8, zero point 0 (TensorRT explicit quantization)")
    q.add_argument("--int8-scope", choices=SCOPES, default=DEFAULT_SCOPE,
                   help="what is quantized: the convolutional path; plus the Linear layers (default: the residual "
                        "stream, LayerNorm, Softmax and attention stay fp32, which keeps a model that reads time "
                        "correct); or every op ONNX Runtime quantizes")
    q.add_argument("--keep-fp32", action="append", default=None, metavar="OP_OR_NODE",
                   help="op type, node name, first_conv or classifier to keep in fp32 as well (repeat; default: "
                        "LayerNormalization, Softmax, classifier; 'none' keeps nothing back)")
    q.add_argument("--min-agreement", type=non_negative_float, default=95.0, metavar="PERCENT",
                   help="refuse to write below this top-1 agreement with fp32 on held-out clips (default 95)")
    q.add_argument("--int8-debug", type=positive_int, default=None, metavar="N",
                   help="also print the N tensors with the worst quantization error (qdq_loss_debug SQNR)")
    t = p.add_argument_group("engine / triton", "TensorRT engine build (--format engine, or triton with "
                                                 "--triton-backend tensorrt)")
    t.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16",
                   help="engine precision (default fp16); int8 is symmetric QDQ calibrated on --calib")
    t.add_argument("--batch", type=batch_profile, default=None, metavar="MIN:OPT:MAX",
                   help="the batch axis's optimization profile (default 1:4:8)")
    t.add_argument("--min-batch", type=positive_int, default=None, metavar="N")
    t.add_argument("--opt-batch", type=positive_int, default=None, metavar="N")
    t.add_argument("--max-batch", type=positive_int, default=None, metavar="N")
    t.add_argument("--workspace", type=positive_int, default=None, metavar="MiB",
                   help="builder workspace limit in MiB (default: TensorRT's, the GPU's memory)")
    t.add_argument("--plugins", action="append", default=None, metavar="LIB.so",
                   help="TensorRT plugin library to load (repeat); default edgefer's with --custom-ops")
    t.add_argument("--triton-backend", choices=("onnxruntime", "tensorrt"), default="onnxruntime",
                   help="--format triton: serve the ONNX (onnxruntime_onnx) or an engine built here (tensorrt_plan)")
    t.add_argument("--name", default=None, help="--format triton: the model's name in the repository (default: "
                                                "the model's)")
    p.set_defaults(func=run, usage_error=p.error)


def run(args) -> int:
    if args.model.startswith("zoo:"):
        return _run_zoo_int8(args)
    if not (args.weights or args.untrained):
        args.usage_error("one of the arguments --weights --untrained is required")
    if getattr(args, "split", False):
        if args.format != "onnx":
            from ..errors import ArgumentError

            raise ArgumentError("--split writes ONNX encoder + head files; drop --format engine/triton")
        return _run_split(args)
    if args.format != "onnx":
        return _run_tensorrt_or_triton(args)
    check_output_path(args.out, "--out")  # before loading, reading --check-video or exporting
    if args.int8:
        return _run_int8(args)
    report, trained = _export_fp32(args, args.out)
    diffs = ", ".join(f"{k} clips {v:.2e}" for k, v in report.max_abs_diff.items())
    print(f"wrote {report.path} ({args.model}, opset {report.opset}, {'trained' if trained else 'UNTRAINED'} weights); "
          f"max abs diff ONNX Runtime vs PyTorch: {diffs}")
    return 0


def _model_and_metadata(args, *, custom_ops: bool = False):
    """(the PyTorch model, its artefact metadata, whether trained) from ``--weights`` or ``--untrained``."""
    from ..models.checkpoint import model_for_export

    return model_for_export(args.model, None if args.untrained else args.weights, seed=args.seed,
                            overrides=dict(args.config), custom_ops=custom_ops,
                            face_align=args.face_align or None, face_margin=args.face_margin)


def _check_clips(args, metadata):
    """Real clips from ``--check-video`` for the parity check, or None."""
    if not args.check_video:
        return None
    from ..pipeline import reference_clips

    return reference_clips(args.check_video, metadata)


def _export_fp32(args, out):
    """The checked fp32 export of ``args.model`` to ``out``: (ExportReport, trained)."""
    from edgefer.export.onnx_export import export_onnx

    model, metadata, trained = _model_and_metadata(args, custom_ops=args.custom_ops)
    report = export_onnx(model, out, metadata, opset=args.opset, custom_ops=args.custom_ops,
                         real_clips=_check_clips(args, metadata), atol=args.atol, seed=args.seed,
                         exporter=args.exporter)
    return report, trained


def _run_int8(args) -> int:
    """``--int8``: fp32 export (checked as usual) into a temporary folder, then :func:`quantize_int8` to --out."""
    import tempfile
    from pathlib import Path

    from ..errors import ArgumentError

    _check_int8_args(args)
    out = check_output_path(args.out, "--out")

    from edgefer.export.calibration_clips import calibration_clips
    from edgefer.export.int8 import quantize_int8, sensitivity

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        if args.model.startswith("zoo:"):
            fp32, metadata = _zoo_fp32(args.model)
            print(f"fp32: {args.model}, the zoo's converted ONNX {fp32} ({metadata.extra.get('source', 'trained')})")
        else:
            fp32 = Path(tmp, "fp32.onnx")
            exported, trained = _export_fp32(args, fp32)
            metadata = exported.metadata
            print(f"fp32 export checked ({args.model}, {'trained' if trained else 'UNTRAINED'} weights): max abs "
                  f"diff ONNX Runtime vs PyTorch {max(exported.max_abs_diff.values()):.2e}")
        clips = calibration_clips(args.calib, metadata, clips_per_video=args.calib_clips)
        report = quantize_int8(fp32, out, metadata, clips, **_int8_options(args))
        _print_int8(args, report, clips, "with edgefer custom ops in fp32, " if metadata.custom_ops else "")
        if args.int8_debug:
            for name, sqnr in sensitivity(fp32, out, clips.held_out, args.int8_debug,
                                          per_frame=metadata.input_layout == "NCHW"):
                print(f"  SQNR {sqnr:7.2f} dB  {name}")
    return 0


def _check_int8_args(args) -> None:
    """The --int8 flags that can be checked before any export."""
    from pathlib import Path

    from ..errors import ArgumentError

    if not args.calib:
        raise ArgumentError("--int8 needs --calib DIR_OR_VIDEO (real videos to calibrate on)")
    if args.int8_debug and (args.custom_ops or args.split):
        raise ArgumentError("--int8-debug runs onnxruntime's qdq_loss_debug on one standard-op graph; drop "
                            "--custom-ops / --split for the debug run")
    if args.min_agreement > 100:
        raise ArgumentError(f"--min-agreement is a percentage in [0, 100], got {args.min_agreement}")
    if not Path(args.calib).exists():  # before the fp32 export
        raise ArgumentError(f"--calib {args.calib}: no such video, folder or annotation list")


def _int8_options(args) -> dict:
    """The keyword arguments of quantize_int8 / quantize_split that the flags set."""
    from edgefer.export.int8 import tensorrt_types
    from edgefer.export.int8_scope import DEFAULT_KEEP_FP32

    keep = DEFAULT_KEEP_FP32 if args.keep_fp32 is None else tuple(k for k in args.keep_fp32 if k != "none")
    return dict(method=args.calib_method, types=tensorrt_types() if args.int8_types == "tensorrt" else None,
                keep_fp32=keep, scope=args.int8_scope, min_agreement=args.min_agreement / 100,
                calib_source=str(args.calib))


def _print_int8(args, report, clips, what: str) -> None:
    print(f"wrote {report.path} (int8 QDQ {report.types.name}: {report.types.reason}; {what}scope {args.int8_scope}; "
          f"{args.calib_method} calibration on {report.calibration} clips); vs fp32 on {report.held_out} held-out "
          f"clips: top-1 agreement {report.agreement:.1%}, logit cosine mean {report.cosine_mean:.4f} min "
          f"{report.cosine_min:.4f}; also kept in fp32: {len(report.excluded)} nodes "
          f"({', '.join(_int8_options(args)['keep_fp32']) or 'none'})")
    print(f"calibration split: {clips.split}" + (f"; skipped {'; '.join(clips.skipped)}" if clips.skipped else ""))


def _zoo_fp32(model: str):
    """(path, metadata) of zoo model ``zoo:NAME``'s converted ONNX file, fetched and converted on first use."""
    from ..metadata import ModelMetadata
    from ..runtime.onnx_metadata import read_metadata_props
    from ..zoo import get_entry, zoo_path

    entry = get_entry(model[len("zoo:"):])
    if entry.kind != "expressions":
        from ..errors import ArgumentError

        raise ArgumentError(f"{model} is a {entry.kind}, not an expression model; --int8 quantizes expression models")
    path = zoo_path(entry.name)
    return path, ModelMetadata.from_props(read_metadata_props(path), source=str(path))


def _run_zoo_int8(args) -> int:
    """``zoo:NAME --int8``: quantize the zoo's cached converted ONNX (:func:`edgefer.zoo.zoo_path`) to --out with
    :func:`quantize_int8`, as for edgefer's own models (the fp32 graph is the converted file; no PyTorch)."""
    from ..errors import ArgumentError

    given = [flag for flag, on in (("--weights", args.weights), ("--untrained", args.untrained),
                                   ("--config", args.config), ("--split", args.split),
                                   ("--custom-ops", args.custom_ops), ("--check-video", args.check_video),
                                   (f"--format {args.format}", args.format != "onnx")) if on]
    if not args.int8 or given:
        raise ArgumentError(f"{args.model}: a zoo model is already a converted ONNX file; `edgefer export "
                            f"{args.model}` only writes its int8 QDQ model (--int8 --calib ...)"
                            + (f", without {', '.join(given)}" if given else ""))
    return _run_int8(args)


def _run_split(args) -> int:
    """``--split``: the checked encoder + head folder (:func:`edgefer.export.split.export_split`) at --out; with
    ``--int8``, that folder exported into a temporary one, then quantized part by part
    (:func:`edgefer.export.int8_split.quantize_split`) to --out."""
    import tempfile
    from pathlib import Path

    from ..errors import ArgumentError, OutputPathError

    if args.custom_ops:
        raise ArgumentError("--split exports standard ops only; drop --custom-ops")
    if args.int8:
        _check_int8_args(args)
    out = Path(args.out)
    if out.is_file():
        raise OutputPathError(f"cannot write --out {out}: it is a file; --split writes a folder (e.g. NAME.split)")
    check_output_path(out / "head.onnx" if out.is_dir() else out, "--out")

    from edgefer.export.split import SPLITTABLE, export_split

    if args.model not in SPLITTABLE:
        raise ArgumentError(f"--split: {args.model} has no encoder/head split (splittable: {', '.join(SPLITTABLE)})")
    model, metadata, trained = _model_and_metadata(args)
    real = _check_clips(args, metadata)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp, "fp32.split") if args.int8 else out
        report = export_split(model, fp32, metadata, opset=args.opset, real_clips=real, atol=args.atol, seed=args.seed)
        diffs = ", ".join(f"{k} clips {v:.2e}" for k, v in report.max_abs_diff.items())
        print(f"{'fp32 split checked' if args.int8 else f'wrote {report.path}/'} (encoder.onnx + head.onnx, "
              f"per-frame features {list(report.features)}; {'trained' if trained else 'UNTRAINED'} weights); max "
              f"abs logit diff split vs whole model: {diffs}")
        if args.int8:
            from edgefer.export.calibration_clips import calibration_clips
            from edgefer.export.int8_split import quantize_split

            clips = calibration_clips(args.calib, metadata, clips_per_video=args.calib_clips)
            int8 = quantize_split(fp32, out, clips, **_int8_options(args))
            _print_int8(args, int8, clips, "encoder + head, ")
    return 0


def _profile(args):
    from edgefer.export.tensorrt_profile import make_profile

    return make_profile(args.batch, min_batch=args.min_batch, opt_batch=args.opt_batch, max_batch=args.max_batch)


def _run_tensorrt_or_triton(args) -> int:
    """``--format engine`` / ``--format triton``: the checked fp32 export into a temporary folder, then the engine
    build and/or the repository."""
    import tempfile
    from pathlib import Path

    from ..errors import ArgumentError, BackendUnavailableError, OutputPathError
    from ..runtime.engine_file import sidecar_path

    if args.int8:
        raise ArgumentError(f"--int8 writes an int8 ONNX; for an int8 engine use --format {args.format} "
                            "--precision int8 --calib DIR_OR_VIDEO")
    profile = _profile(args)
    engine_wanted = args.format == "engine" or args.triton_backend == "tensorrt"
    if args.format == "engine":
        out = check_output_path(args.out, "--out")
        check_output_path(sidecar_path(out), "--out's metadata")
        work_dir = out.parent
    else:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise OutputPathError(f"cannot write --out {out}: it is a file; --format triton writes a repository "
                                  "folder")
        check_output_path(out / "config.pbtxt" if out.is_dir() else out, "--out")
        work_dir = out if out.is_dir() else out.parent
        if args.custom_ops:
            raise ArgumentError("--format triton exports standard ops only; drop --custom-ops")
    if engine_wanted:
        from edgefer.export.tensorrt_build import tensorrt_available

        if not tensorrt_available():  # before the export's minutes
            from ..runtime.tensorrt_backend import TENSORRT_HINT

            raise BackendUnavailableError(TENSORRT_HINT)
        if args.precision == "int8" and not args.calib:
            raise ArgumentError("--precision int8 needs --calib DIR_OR_VIDEO (real videos for the QDQ scales)")
        if args.min_agreement > 100:
            raise ArgumentError(f"--min-agreement is a percentage in [0, 100], got {args.min_agreement}")
    if args.calib and not Path(args.calib).exists():
        raise ArgumentError(f"--calib {args.calib}: no such video, folder or annotation list")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        fp32 = Path(tmp, "fp32.onnx")
        exported, trained = _export_fp32(args, fp32)
        print(f"fp32 export checked ({args.model}, opset {exported.opset}, {'trained' if trained else 'UNTRAINED'} "
              f"weights): max abs diff ONNX Runtime vs PyTorch {max(exported.max_abs_diff.values()):.2e}")
        engine = None
        if engine_wanted:
            engine = out if args.format == "engine" else Path(tmp, "model.engine")
            report = _build(args, fp32, engine, profile, exported.metadata)
            print(f"wrote {report.path} + {report.sidecar.name} ({report.precision}, TensorRT {report.tensorrt_version} "
                  f"on {report.device_name} sm {report.compute_capability}, batch {report.profile}): vs ONNX "
                  f"Runtime on {report.check_clips} clips logit cosine min {report.cosine:.5f}, top-1 agreement "
                  f"{report.top1_agreement:.1%}")
        if args.format == "triton":
            from edgefer.export.triton_repository import write_repository

            repo = write_repository(fp32, out, name=args.name, engine=engine, max_batch_size=profile.max,
                                    preferred_batch_sizes=[profile.opt])
            print(f"wrote Triton model repository {out}/: {repo.model_dir.name}/config.pbtxt ({repo.platform}, "
                  f"max_batch_size {repo.max_batch_size}, dynamic batching), {repo.model_dir.name}/1/"
                  f"{repo.model_file.name}; serve it with `tritonserver --model-repository {out}`")
    return 0


def _build(args, fp32, engine, profile, metadata):
    from edgefer.export.tensorrt_build import build_engine

    calib = None
    if args.precision == "int8":
        from edgefer.export.calibration_clips import calibration_clips

        calib = calibration_clips(args.calib, metadata, clips_per_video=args.calib_clips)
    return build_engine(fp32, engine, precision=args.precision, batch=profile, workspace_mib=args.workspace,
                        plugins=args.plugins, calib=calib, check_clips=_check_clips(args, metadata),
                        min_agreement=args.min_agreement / 100)
