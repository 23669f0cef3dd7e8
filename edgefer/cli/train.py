"""``edgefer train --config RECIPE --out DIR [--train LIST --test LIST] [--set KEY=VALUE] [--folds 1-5] [--resume]``.

One process, or several under torchrun: ``torchrun --nproc_per_node N -m edgefer train ...`` (gloo on the CPU,
nccl on GPUs). The recipe is a YAML file or a shipped one (msstnet, stt, fesnet, tiny); flags override it.
"""

from __future__ import annotations

from .argtypes import config_override, non_negative_int, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train msstnet, stt or fesnet (YAML recipe, flags override; torchrun for "
                                            "several processes or GPUs)")
    p.add_argument("--config", default=None, metavar="RECIPE",
                   help="YAML recipe file, or a shipped recipe: msstnet, stt, fesnet, tiny (default: the --model's)")
    p.add_argument("--model", choices=("msstnet", "stt", "fesnet"), default=None,
                   help="the model (default: the recipe's; picks the shipped recipe when --config is not given)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run's folder: checkpoints, metrics.csv, config")
    p.add_argument("--train", metavar="LIST", help="training list (data.train; '{fold}' is replaced with --folds)")
    p.add_argument("--test", metavar="LIST", help="test list (data.test), scored once with the selected checkpoint")
    p.add_argument("--root", metavar="DIR_OR_OLD=NEW", help="rewrite the lists' frame-folder paths (data.root)")
    p.add_argument("--format", choices=("annotation", "dfew-split", "folders", "spotting"), default=None,
                   help="dataset format (data.format)")
    p.add_argument("--set", action="append", type=config_override, default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a recipe value, e.g. --set optim.lr=0.05 --set schedule.name=cosine (JSON value)")
    p.add_argument("--model-config", action="append", type=config_override, default=[], metavar="FIELD=VALUE",
                   help="override a model config field, e.g. --model-config dim=256 (as export --config)")
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=None, help="global batch (all processes together)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (optim.lr)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=non_negative_int, default=None, help="DataLoader workers per process")
    p.add_argument("--kernels", choices=("auto", "triton", "cpp", "reference"), default=None,
                   help="op implementation of the models (default auto)")
    p.add_argument("--backbone-weights", metavar="PT", help="torchvision-layout ResNet-18 state dict (msstnet, stt)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--amp", choices=("auto", "on", "off"), default=None, help="mixed precision (CUDA only)")
    p.add_argument("--protocol", choices=("train-selection", "reference-test-selection"), default=None,
                   help="train-selection (default): select the epoch on a held-apart part of the training fold; "
                        "reference-test-selection: select ON THE TEST FOLD, only to compare with papers that did")
    p.add_argument("--skip-bad", action="store_true", help="skip bad dataset entries (and print how many)")
    p.add_argument("--folds", metavar="SPEC", help="several folds, e.g. 1-5 (DFEW): per-fold and mean WAR/UAR")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def overrides_from_args(args) -> list[tuple[str, object]]:
    """The flags as ``(key, value)`` overrides of the recipe, in the order they apply (flags after --set)."""
    pairs: list[tuple[str, object]] = list(args.overrides)
    pairs += [(f"model_config.{field}", value) for field, value in args.model_config]
    flags = {"model": args.model, "data.train": args.train, "data.test": args.test, "data.root": args.root,
             "data.format": args.format, "epochs": args.epochs, "batch_size": args.batch_size, "optim.lr": args.lr,
             "seed": args.seed, "data.num_workers": args.workers, "kernels": args.kernels,
             "backbone_weights": args.backbone_weights, "device": args.device, "amp": args.amp,
             "protocol": args.protocol}
    pairs += [(key, value) for key, value in flags.items() if value is not None]
    if args.skip_bad:
        pairs.append(("data.skip_bad", True))
    return pairs


def run(args) -> int:
    from ..errors import ArgumentError
    from ..train.config import apply_overrides, load_config, parse_folds, resolve

    recipe = args.config or args.model
    if recipe is None:
        raise ArgumentError("say what to train: --config RECIPE (a YAML file or msstnet, stt, fesnet, tiny) or --model")
    folds = parse_folds(args.folds) if args.folds else None
    raw = load_config(recipe)
    if args.config and args.model and raw.get("model", args.model) != args.model:
        raise ArgumentError(f"--model {args.model} contradicts the recipe {args.config}, which trains "
                            f"{raw.get('model')}")
    config = resolve(apply_overrides(raw, overrides_from_args(args)), source=f"config {recipe}")
    if folds:
        from ..train.folds import fold_table, train_folds

        results = train_folds(config, folds, args.out, resume=args.resume, progress=not args.no_progress)
        from ..train.distributed import launched_by_torchrun

        import os

        if not launched_by_torchrun() or os.environ.get("RANK") == "0":
            print(fold_table(results))
        return 0
    from ..train import train

    train(config, args.out, resume=args.resume, progress=not args.no_progress)
    return 0
