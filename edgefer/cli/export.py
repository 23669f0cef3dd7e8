"""``edgefer export MODEL --weights CKPT --out FILE.onnx`` (or ``--untrained --seed N``)."""

from __future__ import annotations

from ..outputs import check_output_path
from .argtypes import config_override, non_negative_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX, checked against PyTorch",
                              description="Export an edgefer model to ONNX with metadata. The file is written only "
                                          "if onnx.checker passes and ONNX Runtime matches PyTorch within --atol.")
    p.add_argument("model", help="model name: msstnet, stt, fesnet")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", metavar="CKPT", help="edgefer checkpoint or bare state dict (.pt)")
    source.add_argument("--untrained", action="store_true", help="export freshly initialised weights (for testing)")
    p.add_argument("--seed", type=int, default=0, help="seed for --untrained weights and the random check clips")
    p.add_argument("--out", required=True, metavar="FILE.onnx")
    p.add_argument("--config", action="append", type=config_override, default=[], metavar="FIELD=JSON",
                   help="override a config field, e.g. --config dim=256 (value parsed as JSON, else a string)")
    p.add_argument("--check-video", metavar="VIDEO", help="also compare on real face clips from this video")
    p.add_argument("--face-align", action="store_true",
                   help="the model was trained on eye-aligned crops (eye line levelled with the detector's keypoints): "
                        "recorded in the metadata, so predict and spot crop the same way")
    p.add_argument("--face-margin", type=non_negative_float, default=None, metavar="FRACTION",
                   help="the crop margin per side the model was trained with, as a fraction of the face box "
                        "(default: the model's, 0.2)")
    p.add_argument("--custom-ops", action="store_true", help="emit edgefer custom ops (needs the custom-op library)")
    p.add_argument("--opset", type=positive_int, default=17)
    p.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted max abs logit difference")
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.out, "--out")  # before loading, reading --check-video or exporting

    import torch

    from edgefer.export.onnx_export import export_onnx

    from ..models import build_model
    from ..models.checkpoint import artefact_metadata, load_checkpoint, weights_sha256

    overrides = dict(args.config)
    if args.untrained:
        torch.manual_seed(args.seed)
        model = build_model(args.model, **overrides).eval()
        trained, digest = False, weights_sha256(model.state_dict())
    else:
        loaded = load_checkpoint(args.weights, args.model, **overrides)
        model, trained, digest = loaded.model, loaded.trained, loaded.weights_sha256
    metadata = artefact_metadata(model, trained=trained, weights_sha256=digest, custom_ops=args.custom_ops,
                                 face_align=args.face_align or None, face_margin=args.face_margin)
    real = None
    if args.check_video:
        from ..pipeline import reference_clips

        real = reference_clips(args.check_video, metadata)
    report = export_onnx(model, args.out, metadata, opset=args.opset, custom_ops=args.custom_ops, real_clips=real,
                         atol=args.atol, seed=args.seed, exporter=args.exporter)
    diffs = ", ".join(f"{k} clips {v:.2e}" for k, v in report.max_abs_diff.items())
    print(f"wrote {report.path} ({args.model}, opset {report.opset}, {'trained' if trained else 'UNTRAINED'} weights); "
          f"max abs diff ONNX Runtime vs PyTorch: {diffs}")
    return 0
