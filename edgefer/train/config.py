"""The training configuration: a YAML recipe, overridden by flags, resolved into typed dataclasses.

A recipe is a YAML mapping (PyYAML ``safe_load``) whose sections mirror :class:`TrainConfig`::

    model: msstnet
    model_config: {dim: 512}          # fields of the model's Config (edgefer.models.build_config checks them)
    data: {train: annotation/set_{fold}_train.txt, test: annotation/set_{fold}_test.txt}
    optim: {name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 1.0e-4}
    schedule: {name: step, step_size: 10, gamma: 0.1}

The default recipe is the design note's (``shared/design/models.md``; the DFEW family's Former-DFER recipe): SGD,
lr 0.01, momentum 0.9, weight decay 1e-4, StepLR. :func:`load_config` reads a file, :func:`apply_overrides`
applies ``section.field=value`` overrides (``--set optim.lr=0.05``), :func:`resolve` checks every value and
returns a :class:`TrainConfig`; :func:`dump_config` writes the resolved config as YAML beside the checkpoints.

Every failure is an :class:`~edgefer.errors.ArgumentError` with one line naming the file (and line, for YAML
syntax), the key and the accepted values. Imports no torch.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ArgumentError

#: Recipes shipped with edgefer (``edgefer train --config NAME``): ``configs/NAME.yaml`` beside this module.
RECIPE_DIR = Path(__file__).with_name("configs")

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "constant")
PROTOCOLS = ("train-selection", "reference-test-selection")
DATA_FORMATS = ("annotation", "dfew-split", "folders", "spotting")
AMP_MODES = ("auto", "on", "off")
AMP_DTYPES = ("float16", "bfloat16")


@dataclass
class DataConfig:
    """Where the clips come from and how they are read.

    Attributes:
        format: ``annotation`` (Former-DFER lists ``frame_dir num_frames label``), ``dfew-split`` (DFEW's
            ``EmoLabel_DataSplit`` CSVs, 1-based labels), ``folders`` (a folder per class), ``spotting`` (long
            frame sequences with MEGC ``gt_*.txt`` intervals).
        train, test: the training and test lists (files or folders, by format); ``{fold}`` is replaced by the
            fold number (``--folds 1-5``).
        root: rewrites the lists' path prefix (the datasets' ``root=``); None keeps the paths as written.
        skip_bad: skip (and count) bad entries instead of stopping at the first.
        selection_fraction: fraction of the training fold held apart, class-stratified and seeded, to select the
            epoch on (0 < f < 1). Never the test fold, unless ``protocol: reference-test-selection``.
        num_workers: DataLoader worker processes per rank (0 = load in the training process).
        window, stride: spotting windows (K frames every stride); None = the model's clip_length and K / 2.
        fps: spotting videos' frame rate, for the MEGC length ranges.
        gap: spotting post-processing: merge runs at most this many frames apart.
        variant: MEGC counting variant, ``megc2020`` or ``megc2023``.
        videos: spotting: a ``subject video`` list of every video (those without an expression included).
        length_ranges: spotting: ``{macro: [lo, hi], micro: [lo, hi]}`` interval lengths in frames at 30 fps
            (hi null = unbounded); null = CAS(ME)^2's (micro 7..16, macro >= 17).
        augment: DFER training augmentation (one random-resized crop + flip per clip, the papers' recipe);
            false keeps only the random frame sampling.
        crop_scale: the random-resized crop's area range (fractions of the frame; torchvision's 0.08..1).
        test_subject: spotting: hold this subject's videos of ``train`` out as the test fold (one
            leave-one-subject-out fold) instead of reading ``test``.
    """

    format: str = "annotation"
    train: str | None = None
    test: str | None = None
    root: str | None = None
    skip_bad: bool = False
    selection_fraction: float = 0.1
    num_workers: int = 0
    window: int | None = None
    stride: int | None = None
    fps: float = 30.0
    gap: int = 2
    variant: str = "megc2020"
    videos: str | None = None
    length_ranges: dict | None = None
    test_subject: str | None = None
    augment: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)


@dataclass
class OptimConfig:
    """Optimiser: ``sgd`` (momentum, nesterov off) or ``adamw`` (betas 0.9, 0.999); weight decay on all params."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped once per epoch: ``step`` (StepLR: times gamma every step_size epochs),
    ``cosine`` (CosineAnnealingLR over the epochs, down to min_lr) or ``constant``."""

    name: str = "step"
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0


@dataclass
class TrainConfig:
    """One training run. See the module doc for the YAML layout; every field has the design note's default.

    Attributes:
        model: ``msstnet``, ``stt`` or ``fesnet``.
        model_config: fields of the model's Config (checked by :func:`edgefer.models.build_config`).
        kernels: op implementation (``auto``, ``reference``, ``cpp``, ``triton``; the models' ``kernels=``).
        backbone_weights: a torchvision-layout ResNet-18 state dict (.pt) loaded into the backbone; None = random.
        epochs, batch_size: epochs; the GLOBAL batch (clips per step over all ranks; divisible by the world size).
        seed: seeds the weights, the sampler's shuffle, the augmentation and the selection split.
        protocol: ``train-selection`` (default) or ``reference-test-selection`` (select on the test fold, only to
            compare with papers that did).
        amp: mixed precision (torch.autocast + GradScaler) -- ``auto`` = on a CUDA device only.
        amp_dtype: ``float16`` (with GradScaler) or ``bfloat16``.
        grad_clip: max gradient L2 norm, None = no clipping.
        freeze_bn: keep the BatchNorm layers in eval mode (running statistics fixed, affine parameters still
            trained): the usual choice when fine-tuning from pretrained backbone weights, and what makes a
            multi-process CPU run equal to a 1-process run (SyncBatchNorm needs CUDA).
        sync_bn: convert BatchNorm to SyncBatchNorm when running distributed on CUDA.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``.
        select_metric: what picks the best epoch on the selection split: ``war`` or ``uar`` (DFER), ``f1``
            (spotting, MEGC overall F1); ``auto`` = war for DFER, f1 for spotting.
    """

    model: str = "msstnet"
    model_config: dict = field(default_factory=dict)
    kernels: str = "auto"
    backbone_weights: str | None = None
    epochs: int = 30
    batch_size: int = 16
    seed: int = 0
    protocol: str = "train-selection"
    amp: str = "auto"
    amp_dtype: str = "float16"
    grad_clip: float | None = None
    freeze_bn: bool = False
    sync_bn: bool = True
    device: str = "auto"
    select_metric: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: an existing path, else ``configs/NAME.yaml`` shipped with edgefer.

    Raises:
        ArgumentError: neither exists (the message lists the shipped recipes).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPE_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.yaml")))
    raise ArgumentError(f"config {name_or_path}: no such file, nor a shipped recipe (shipped: {names})")


def load_config(name_or_path: str | Path) -> dict:
    """Read a YAML recipe into a plain dict (not yet checked: see :func:`resolve`).

    Raises:
        ArgumentError: missing file, YAML syntax error (file, line and column), or a top level that is not a
            mapping.
    """
    import yaml

    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ArgumentError(f"config {path}: YAML error at {where}: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise ArgumentError(f"config {path}: cannot read it: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ArgumentError(f"config {path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(raw: Mapping, overrides: list[tuple[str, Any]]) -> dict:
    """``raw`` with ``("section.field", value)`` overrides applied (a nested copy; the original is untouched).

    ``("optim.lr", 0.05)`` sets ``raw["optim"]["lr"]``; ``("model_config.dim", 64)`` a model config field;
    ``("epochs", 3)`` a top-level field. Whether the key exists is :func:`resolve`'s to say.
    """
    out = _deep_copy(raw)
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def resolve(raw: Mapping, source: str = "config") -> TrainConfig:
    """Check a raw config dict and build the :class:`TrainConfig` (defaults for what it leaves out).

    Raises:
        ArgumentError: an unknown key (the message lists the section's keys), a value of the wrong kind, or one
            out of range; the model config is checked by :func:`edgefer.models.build_config`.
    """
    config = _build(TrainConfig, raw, source, "")
    _check(config, source)
    return config


def to_dict(config: TrainConfig) -> dict:
    """The config as plain YAML-ready data (tuples as lists)."""
    return _plain(dataclasses.asdict(config))


def dump_config(config: TrainConfig) -> str:
    """The resolved config as YAML text (what is saved as ``config.yaml`` beside the checkpoints)."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)


def select_metric(config: TrainConfig) -> str:
    """The selection metric ``auto`` stands for: ``f1`` for spotting (fesnet), ``war`` for DFER."""
    if config.select_metric != "auto":
        return config.select_metric
    return "f1" if config.model == "fesnet" else "war"


def for_fold(config: TrainConfig, fold: int) -> TrainConfig:
    """A copy of ``config`` with ``{fold}`` in the data paths replaced by ``fold``.

    Raises:
        ArgumentError: the train or test path has no ``{fold}`` placeholder (a fold would read the same files).
    """
    data = config.data
    for name in ("train", "test"):
        value = getattr(data, name)
        if value is None or "{fold}" not in value:
            raise ArgumentError(f"--folds needs '{{fold}}' in data.{name} (e.g. annotation/set_{{fold}}_{name}.txt), "
                                f"got {value!r}")
    new_data = dataclasses.replace(data, train=data.train.replace("{fold}", str(fold)),
                                   test=data.test.replace("{fold}", str(fold)))
    return dataclasses.replace(config, data=new_data)


def parse_folds(text: str) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,3"`` -> [1, 3]; ``"2"`` -> [2].

    Raises:
        ArgumentError: not of that form, or a fold < 1.
    """
    folds: list[int] = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            a = int(low)
            b = int(high) if sep else a
            if a < 1 or b < a:
                raise ValueError
            folds.extend(range(a, b + 1))
    except ValueError:
        raise ArgumentError(f"--folds expects folds >= 1 such as 1-5 or 1,3, got {text!r}") from None
    return sorted(set(folds))


# ---------------------------------------------------------------------------------------------------------------


def _build(cls, raw: Any, source: str, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ArgumentError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise ArgumentError(f"{source}: unknown key {prefix}{unknown[0]}; the keys of "
                            f"{prefix.rstrip('.') or 'the top level'} are {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, f"{prefix}{name}.")
        else:
            values[name] = _coerce(hint, value, source, f"{prefix}{name}")
    return cls(**values)


def _coerce(hint, value, source: str, key: str):
    """``value`` checked against the field's annotation (str, int, float, bool, dict, tuple, or X | None)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        if isinstance(value, bool):
            return value
        kind = "true or false"
    elif origin is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        kind = "an integer"
    elif origin is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        kind = "a number"
    elif origin is str:
        if isinstance(value, str):
            return value
        kind = "a string"
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
        kind = "a mapping"
    elif origin is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in value):
            return tuple(float(v) for v in value)
        kind = "a list of numbers"
    else:  # pragma: no cover - every field is one of the kinds above
        return value
    raise ArgumentError(f"{source}: {key} takes {kind}{' or null' if optional else ''}, got {value!r}")


def _check(c: TrainConfig, source: str) -> None:
    def bad(message: str) -> None:
        raise ArgumentError(f"{source}: {message}")

    from ..models import MODELS

    choices = {"model": (c.model, tuple(MODELS)), "kernels": (c.kernels, ("auto", "reference", "cpp", "triton")),
               "protocol": (c.protocol, PROTOCOLS), "amp": (c.amp, AMP_MODES), "amp_dtype": (c.amp_dtype, AMP_DTYPES),
               "device": (c.device, ("auto", "cpu", "cuda")),
               "select_metric": (c.select_metric, ("auto", "war", "uar", "f1")), "data.format": (c.data.format, DATA_FORMATS),
               "data.variant": (c.data.variant, ("megc2020", "megc2023")),
               "optim.name": (c.optim.name, OPTIMIZERS), "schedule.name": (c.schedule.name, SCHEDULES)}
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            bad(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    spotting = c.model == "fesnet"
    if c.select_metric != "auto" and (c.select_metric == "f1") != spotting:
        bad(f"select_metric {c.select_metric} does not fit {c.model}: use "
            f"{'f1' if spotting else 'war or uar'} (or auto)")
    if c.epochs < 1:
        bad(f"epochs must be >= 1, got {c.epochs}")
    if c.batch_size < 1:
        bad(f"batch_size must be >= 1, got {c.batch_size}")
    if not 0 < c.data.selection_fraction < 1:
        bad(f"data.selection_fraction must lie in (0, 1), got {c.data.selection_fraction}")
    if c.data.num_workers < 0:
        bad(f"data.num_workers must be >= 0, got {c.data.num_workers}")
    for key in ("window", "stride"):
        value = getattr(c.data, key)
        if value is not None and value < 1:
            bad(f"data.{key} must be >= 1, got {value}")
    low, high = (tuple(c.data.crop_scale) + (0.0, 0.0))[:2]
    if len(c.data.crop_scale) != 2 or not 0 < low <= high <= 1:
        bad(f"data.crop_scale must be [low, high] with 0 < low <= high <= 1, got {list(c.data.crop_scale)}")
    if c.data.fps <= 0 or c.data.gap < 0:
        bad(f"need data.fps > 0 and data.gap >= 0, got {c.data.fps}, {c.data.gap}")
    if c.optim.lr <= 0 or c.optim.weight_decay < 0 or not 0 <= c.optim.momentum < 1:
        bad(f"need optim.lr > 0, optim.weight_decay >= 0, 0 <= optim.momentum < 1; got {c.optim.lr}, "
            f"{c.optim.weight_decay}, {c.optim.momentum}")
    if len(c.optim.betas) != 2 or not all(0 <= b < 1 for b in c.optim.betas):
        bad(f"optim.betas must be two numbers in [0, 1), got {list(c.optim.betas)}")
    if c.schedule.step_size < 1 or not 0 < c.schedule.gamma <= 1 or c.schedule.min_lr < 0:
        bad(f"need schedule.step_size >= 1, 0 < schedule.gamma <= 1, schedule.min_lr >= 0; got "
            f"{c.schedule.step_size}, {c.schedule.gamma}, {c.schedule.min_lr}")
    if c.grad_clip is not None and c.grad_clip <= 0:
        bad(f"grad_clip must be > 0 or null, got {c.grad_clip}")
    from ..models import build_config

    try:
        build_config(c.model, **c.model_config)
    except ArgumentError as exc:
        bad(f"model_config: {exc}")


def _deep_copy(value):
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
