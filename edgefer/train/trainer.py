"""The training loop: one code for 1 process, N CPU processes and N GPUs; resumable; selection on held-apart data.

Per epoch: the DistributedSampler's and the dataset's ``set_epoch``, one pass of the training split (each rank
reads ``batch_size / world_size`` clips a step; DDP averages the gradients, so a step sees the global batch),
autocast + GradScaler on CUDA when ``amp`` is on, optional gradient clipping, the scheduler's step, then scores on
the selection split (all ranks, summed). Rank 0 writes ``last.pt`` every epoch and ``best.pt`` when the selection
metric improves (both edgefer checkpoints, :func:`edgefer.models.checkpoint.save_checkpoint`, with the resumable
training state: optimizer, scheduler, scaler, every rank's RNG state, epoch, best metric, history and the
resolved config), ``metrics.csv`` (+ TensorBoard), ``steps.csv`` (the per-step global loss) and
``config.yaml``. At the end the best checkpoint is scored once on the test fold (``results.json``, a confusion
matrix PNG).

Repeatability: the weights are seeded with ``seed``; the sampler shuffles with ``seed + epoch``; the augmentation
draws from ``(seed, epoch, index)`` (:mod:`edgefer.data.clips`); dropout draws from the torch generator, seeded
``seed + rank`` after the weights are built and saved in every checkpoint. A CPU run is repeatable, and a run
resumed from ``last.pt`` after epoch k continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ..errors import ArgumentError, BackendUnavailableError
from ..outputs import write_atomically
from .config import TrainConfig, dump_config, select_metric, to_dict
from .datasets import Splits, build_splits
from .distributed import DistContext, all_gather_objects, all_reduce_sum, barrier, setup, teardown
from .evaluation import autocast, evaluate_dfer, worker_errors
from .tasks import TASKS, LossModule, set_batchnorm_eval


@dataclass
class TrainResult:
    """What a run reached.

    Attributes:
        out_dir: the run's folder (checkpoints, logs, config).
        select_metric: the selection metric (``war``, ``uar`` or ``f1``).
        best_epoch: 1-based epoch whose checkpoint was selected (``best.pt``).
        best_metric: its selection score.
        selection_is_test: the selection split was the test fold (``reference-test-selection``).
        test: the selected checkpoint's scores on the test fold (``war``/``uar``/``confusion`` or spotting
            ``f1``/``precision``/``recall`` ...), None without a test list.
        history: one dict per epoch (the rows of ``metrics.csv``).
        step_losses: the global training loss of every step, in order.
        seconds_per_epoch: mean wall time of the training passes of this process.
    """

    out_dir: Path
    select_metric: str
    best_epoch: int
    best_metric: float
    selection_is_test: bool
    test: dict | None
    history: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    seconds_per_epoch: float = 0.0


def train(config: TrainConfig, out_dir: str | Path, *, splits: Splits | None = None, resume: bool = False,
          progress: bool = True, log: Callable[[str], Any] = print) -> TrainResult:
    """Train ``config.model`` as ``config`` says, writing the run to ``out_dir``.

    Args:
        config: a resolved :class:`~edgefer.train.config.TrainConfig`.
        out_dir: the run's folder (created; must not already hold a run unless ``resume``).
        splits: the datasets to use instead of those ``config.data`` names (for callers holding datasets).
        resume: continue the run in ``out_dir`` from its ``last.pt`` (same config; ``epochs`` may grow).
        progress: show tqdm progress bars (rank 0 only).
        log: where rank 0's one-line messages go.

    Returns:
        :class:`TrainResult` (on every rank).

    Raises:
        ArgumentError: a config the machine cannot run (amp on without CUDA, a batch not divisible by the world
            size), ``out_dir`` already holding a run without ``resume``, a resumed run whose config differs.
        OutputPathError: ``out_dir`` cannot be written. DatasetError: bad data (file and line).
        ModelFileError: a bad ``--backbone-weights`` or ``last.pt``. BackendUnavailableError: no CUDA for cuda.
    """
    out_dir = Path(out_dir)
    ctx = setup(config.device)
    try:
        return _train(config, out_dir, ctx, splits, resume, progress, log if ctx.is_main else (lambda _m: None))
    finally:
        teardown(ctx)


def _check_out_dir(out_dir: Path, resume: bool) -> None:
    from ..errors import OutputPathError

    if out_dir.exists() and not out_dir.is_dir():
        raise OutputPathError(f"cannot write the run to --out {out_dir}: it is a file")
    if resume:
        if not (out_dir / "last.pt").is_file():
            raise ArgumentError(f"--resume: {out_dir} holds no last.pt to resume from")
    elif (out_dir / "last.pt").exists():
        raise ArgumentError(f"{out_dir} already holds a run (last.pt): pass --resume to continue it, or choose "
                            "another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create --out {out_dir}: {exc.strerror or exc}") from None


def _amp_enabled(config: TrainConfig, ctx: DistContext) -> bool:
    if config.amp == "on" and ctx.device.type != "cuda":
        raise ArgumentError("amp: on needs a CUDA device (mixed precision is for the GPU); use amp: auto or off")
    return config.amp == "on" or (config.amp == "auto" and ctx.device.type == "cuda")


def _build_model(config: TrainConfig, ctx: DistContext, log) -> torch.nn.Module:
    from ..models import build_model
    from .backbone import load_backbone_weights

    torch.manual_seed(config.seed)
    try:
        model = build_model(config.model, kernels=config.kernels, **config.model_config)
    except ValueError as exc:  # a kernels backend that is not available on this machine
        if "kernels" in str(exc):
            raise BackendUnavailableError(f"kernels {config.kernels}: {exc}") from None
        raise
    if config.kernels not in ("auto", "reference"):
        from .. import ops

        if not ops.backend_available(config.kernels, ctx.device):
            raise BackendUnavailableError(f"kernels {config.kernels} is not available on {ctx.device} (the "
                                          f"{config.kernels} ops are not built or do not run there); use "
                                          "--kernels reference or auto")
    if config.backbone_weights:
        count = load_backbone_weights(model, config.backbone_weights)
        log(f"backbone: loaded {count} tensors from {config.backbone_weights}")
    return model.to(ctx.device)


def _optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    o = config.optim
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def _scheduler(config: TrainConfig, optimizer):
    s = config.schedule
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=s.min_lr)
    if s.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)


def _evaluate(model, dataset, config: TrainConfig, ctx: DistContext, per_rank: int, amp: bool) -> dict:
    """Scores of ``model`` on ``dataset`` as a flat dict: war/uar/confusion, or the spotting figures."""
    options = dict(batch_size=per_rank, num_workers=config.data.num_workers, amp=amp, amp_dtype=config.amp_dtype)
    if TASKS[config.model] == "spotting":
        from .spotting import evaluate_spotting

        result = evaluate_spotting(model, dataset, ctx, fps=config.data.fps, gap=config.data.gap,
                                   variant=config.data.variant, length_ranges=config.data.length_ranges, **options)
        overall = result.overall
        return {"f1": overall.f1, "precision": overall.precision, "recall": overall.recall,
                "macro_f1": result["macro"].f1, "micro_f1": result["micro"].f1, "result": result.to_dict()}
    s = evaluate_dfer(model, dataset, ctx, num_classes=model.config.num_classes, **options)
    return {"war": s.war, "uar": s.uar, "confusion": s.confusion.tolist()}


def _train(config: TrainConfig, out_dir: Path, ctx: DistContext, splits: Splits | None, resume: bool,
           progress: bool, log) -> TrainResult:
    from ..models.checkpoint import load_checkpoint, read_training_state, save_checkpoint

    if config.batch_size % ctx.world_size:
        raise ArgumentError(f"batch_size {config.batch_size} (the global batch) is not divisible by the "
                            f"{ctx.world_size} processes")
    per_rank = config.batch_size // ctx.world_size
    if ctx.is_main:
        _check_out_dir(out_dir, resume)
    barrier(ctx)
    amp = _amp_enabled(config, ctx)
    metric_name = select_metric(config)
    model = _build_model(config, ctx, log)
    if splits is None:
        splits = build_splits(config, log)
        for note in splits.notes:
            log(note)
    if ctx.distributed and ctx.device.type == "cuda" and config.sync_bn and not config.freeze_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    step_module = LossModule(model)
    if ctx.distributed:
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module, device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None,
            find_unused_parameters=True)  # ResNet-18's fc (and C5 when unused) take no part in the forward
    optimizer = _optimizer(config, model)
    scheduler = _scheduler(config, optimizer)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and config.amp_dtype == "float16")

    start_epoch, best_metric, best_epoch = 0, -math.inf, 0
    history: list[dict] = []
    step_losses: list[float] = []
    if resume:
        state = read_training_state(out_dir / "last.pt")
        _check_resume_config(state.get("config"), config, out_dir)
        loaded = load_checkpoint(out_dir / "last.pt", config.model, kernels="reference")
        model.load_state_dict(loaded.model.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_metric, best_epoch = int(state["epoch"]), float(state["best_metric"]), int(state["best_epoch"])
        history, step_losses = list(state["history"]), list(state["step_losses"])
        rng = state["rng"]
        if len(rng) == ctx.world_size:
            torch.set_rng_state(rng[ctx.rank]["torch"])
            if ctx.device.type == "cuda" and rng[ctx.rank].get("cuda") is not None:
                torch.cuda.set_rng_state(rng[ctx.rank]["cuda"], ctx.device)
        log(f"resuming {out_dir} after epoch {start_epoch} (best {metric_name} {best_metric:.4f} at epoch "
            f"{best_epoch})")
    else:
        torch.manual_seed(config.seed + ctx.rank)
    if ctx.is_main:
        write_atomically(out_dir / "config.yaml", dump_config(config), "resolved config")

    from .metrics_log import MetricsLog

    metrics_log = MetricsLog(out_dir, history) if ctx.is_main else None
    sampler = DistributedSampler(splits.train, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    unit = "windows" if TASKS[config.model] == "spotting" else "clips"
    if start_epoch == 0:
        log(f"training {config.model} on {len(splits.train)} {unit}, selecting on {len(splits.selection)} "
            f"({'the TEST fold: reference-test-selection' if splits.selection_is_test else 'held apart from training'})"
            f", {ctx.world_size} process(es) on {ctx.device}, global batch {config.batch_size}, amp "
            f"{'on (' + config.amp_dtype + ')' if amp else 'off'}")
    epoch_times = []
    try:
        for epoch in range(start_epoch, config.epochs):
            sampler.set_epoch(epoch)
            if hasattr(splits.train, "set_epoch"):
                splits.train.set_epoch(epoch)
            loader = DataLoader(splits.train, batch_size=per_rank, sampler=sampler,
                                num_workers=config.data.num_workers, pin_memory=ctx.device.type == "cuda",
                                generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
            model.train()
            if config.freeze_bn:
                set_batchnorm_eval(model)
            started = time.perf_counter()
            epoch_loss, epoch_items = torch.zeros((), dtype=torch.float64), 0
            batches = _progress(loader, progress and ctx.is_main, f"epoch {epoch + 1}/{config.epochs}")
            for inputs, targets in _batches(batches):
                inputs = inputs.to(ctx.device, non_blocking=True)
                targets = targets.to(ctx.device, non_blocking=True)
                with autocast(ctx.device, amp, config.amp_dtype):
                    loss = step_module(inputs, targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                pair = torch.tensor([float(loss.detach()) * len(inputs), float(len(inputs))], dtype=torch.float64)
                all_reduce_sum(pair, ctx)
                step_losses.append(float(pair[0] / pair[1]))
                epoch_loss += pair[0]
                epoch_items += int(pair[1])
                if hasattr(batches, "set_postfix"):
                    batches.set_postfix(loss=f"{step_losses[-1]:.4f}")
            seconds = time.perf_counter() - started
            epoch_times.append(seconds)
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            selection = _evaluate(model, splits.selection, config, ctx, per_rank, amp)
            metric = float(selection[metric_name])
            improved = metric > best_metric
            if improved:
                best_metric, best_epoch = metric, epoch + 1
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": float(epoch_loss / max(epoch_items, 1)),
                   **{f"sel_{k}": v for k, v in selection.items() if isinstance(v, float)},
                   "seconds": seconds, "clips_per_s": epoch_items / seconds if seconds > 0 else 0.0}
            history.append(row)
            rng = all_gather_objects({"torch": torch.get_rng_state(),
                                      "cuda": torch.cuda.get_rng_state(ctx.device) if ctx.device.type == "cuda"
                                      else None}, ctx)
            if ctx.is_main:
                metrics_log.rows = history[:-1]
                metrics_log.log(row)
                _write_steps(out_dir, step_losses)
                training = {"epoch": epoch + 1, "best_metric": best_metric, "best_epoch": best_epoch,
                            "select_metric": metric_name, "config": to_dict(config),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(), "rng": rng, "history": history,
                            "step_losses": step_losses, "selection_is_test": splits.selection_is_test}
                save_checkpoint(model, out_dir / "last.pt", trained=True, training=training)
                if improved:
                    save_checkpoint(model, out_dir / "best.pt", trained=True, training=training)
                shown = ", ".join(f"{k[4:]} {v:.4f}" for k, v in row.items() if k.startswith("sel_"))
                log(f"epoch {epoch + 1}/{config.epochs}: loss {row['train_loss']:.4f}, selection {shown}, "
                    f"{seconds:.1f} s ({row['clips_per_s']:.1f} clips/s)" + (" *" if improved else ""))
            barrier(ctx)
    finally:
        if metrics_log is not None:
            metrics_log.close()

    best = load_checkpoint(out_dir / "best.pt", config.model, kernels="reference")
    model.load_state_dict(best.model.state_dict())
    test = None
    if splits.test is not None:
        test = _evaluate(model, splits.test, config, ctx, per_rank, amp)
    result = TrainResult(out_dir, metric_name, best_epoch, best_metric, splits.selection_is_test, test, history,
                         step_losses, float(np.mean(epoch_times)) if epoch_times else 0.0)
    if ctx.is_main:
        _write_results(result, model, config, log)
    barrier(ctx)
    return result


def _check_resume_config(saved: dict | None, config: TrainConfig, out_dir: Path) -> None:
    """A resumed run must be the same run: the saved config may differ only in ``epochs``."""
    if not isinstance(saved, dict):
        raise ArgumentError(f"--resume: {out_dir}/last.pt records no train config")
    now = to_dict(config)
    differing = [k for k in now if k != "epochs" and saved.get(k) != now[k]]
    if differing:
        raise ArgumentError(f"--resume: the config differs from the run in {out_dir} in {', '.join(differing)} "
                            f"(only epochs may change); see its config.yaml")


def _batches(loader):
    """Iterate a DataLoader with :func:`~edgefer.train.evaluation.worker_errors` around each fetch."""
    iterator = iter(loader)
    while True:
        with worker_errors():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def _progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True)


def _write_steps(out_dir: Path, losses: list[float]) -> None:
    text = "step,loss\n" + "".join(f"{i + 1},{v:.8g}\n" for i, v in enumerate(losses))
    write_atomically(out_dir / "steps.csv", text, "step log")


def _write_results(result: TrainResult, model, config: TrainConfig, log) -> None:
    out = result.out_dir
    payload = {"model": config.model, "select_metric": result.select_metric, "best_epoch": result.best_epoch,
               "best_selection": result.best_metric, "selection_is_test": result.selection_is_test,
               "protocol": config.protocol, "test": result.test, "seconds_per_epoch": result.seconds_per_epoch}
    write_atomically(out / "results.json", json.dumps(payload, indent=1), "results")
    if result.test is None:
        log(f"selected epoch {result.best_epoch} ({result.select_metric} {result.best_metric:.4f}); no test list")
        return
    caveat = " (selected ON the test fold: reference-test-selection, not a held-out estimate)" \
        if result.selection_is_test else ""
    if "war" in result.test:
        log(f"test (epoch {result.best_epoch}, selected on {result.select_metric}): WAR {result.test['war']:.4f} "
            f"UAR {result.test['uar']:.4f}{caveat}")
        try:
            from ..plots import plot_confusion

            labels = model.metadata_fields()["labels"]
            plot_confusion(np.asarray(result.test["confusion"]), labels, out / "confusion_test.png",
                           title=f"{config.model} test, epoch {result.best_epoch}")
        except BackendUnavailableError as exc:  # no matplotlib: the numbers are in results.json
            log(f"no confusion matrix PNG: {exc}")
    else:
        log(f"test (epoch {result.best_epoch}): MEGC {config.data.variant} F1 {result.test['f1']:.4f} (precision "
            f"{result.test['precision']:.4f}, recall {result.test['recall']:.4f}){caveat}")
