"""Spotting (FESNet) training data and scoring: MEGC videos -> K-frame windows; window scores -> MEGC F1.

Data: ``data.train`` / ``data.test`` are MEGC ground-truth files (``subject video class onset apex offset``),
``data.root`` the folder of the videos' frame folders, ``data.videos`` optionally every video of the dataset
(:func:`edgefer.data.read_spotting_dataset`); windows of K = ``data.window`` (default the model's clip_length)
frames every ``data.stride`` (default K / 2) by :class:`edgefer.data.windows.SpottingWindowDataset`. The
selection split is a seeded fraction of the training *videos* (a window never straddles the split).

Scoring (:func:`evaluate_spotting`): each rank scores its shard of the windows; the frame-wise softmax of the
final stage is gathered, averaged back per video (:func:`edgefer.spotting.merge_window_scores`), turned into
intervals (:func:`edgefer.spotting.scores_to_intervals`: runs, gap merging, length ranges) and scored with the
project's MEGC evaluator (:func:`edgefer.spotting.evaluate`, IoU >= 0.5, pooled over the videos).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import ArgumentError
from ..spotting import SpottingResult, evaluate, merge_window_scores, scores_to_intervals
from .config import TrainConfig
from .distributed import DistContext, ShardSampler, all_gather_objects
from .evaluation import autocast
from .selection import split_items


def _videos(config: TrainConfig, which: str):
    from ..data.spotting import read_spotting_dataset

    data = config.data
    path = getattr(data, which)
    if path is None:
        raise ArgumentError(f"data.{which} is not set: give the {which} ground-truth file (gt_*.txt)")
    if data.root is None:
        raise ArgumentError("spotting data needs data.root: the folder holding the videos' frame folders")
    return read_spotting_dataset(path, data.root, videos_file=data.videos, skip_bad=data.skip_bad)


def window_dataset(videos, config: TrainConfig):
    """:class:`~edgefer.data.windows.SpottingWindowDataset` of ``videos`` with the config's window and stride."""
    from ..data.windows import SpottingWindowDataset
    from ..models import build_config

    model_config = build_config(config.model, **config.model_config)
    window = config.data.window or model_config.clip_length
    if window != model_config.clip_length:
        raise ArgumentError(f"data.window {window} must equal the model's clip_length {model_config.clip_length}")
    stride = config.data.stride or max(1, window // 2)
    return SpottingWindowDataset(videos, window=window, stride=stride, frame_size=model_config.frame_size)


def build_spotting_splits(config: TrainConfig, log: Callable[[str], Any] = print):
    """The (train, selection, test) window datasets of a spotting config (see the module doc)."""
    from .datasets import Splits

    train_videos = list(_videos(config, "train"))
    test_videos = list(_videos(config, "test")) if config.data.test is not None else None
    subject = config.data.test_subject
    if subject is not None:
        if test_videos is not None:
            raise ArgumentError("give either data.test or data.test_subject, not both")
        subjects = list(dict.fromkeys(v.subject for v in train_videos))
        if subject not in subjects:
            raise ArgumentError(f"data.test_subject {subject!r} is not a subject of {config.data.train} "
                                f"(subjects: {', '.join(subjects)})")
        test_videos = [v for v in train_videos if v.subject == subject]
        train_videos = [v for v in train_videos if v.subject != subject]
    if config.protocol == "reference-test-selection":
        if test_videos is None:
            raise ArgumentError("protocol reference-test-selection selects on the test fold: set data.test")
        test = window_dataset(test_videos, config)
        return Splits(window_dataset(train_videos, config), test, test, True)
    train_idx, sel_idx = split_items(len(train_videos), config.data.selection_fraction, config.seed)
    note = (f"selection split: {len(sel_idx)} of {len(train_videos)} training videos (seed {config.seed}); "
            f"training on {len(train_idx)}")
    return Splits(window_dataset([train_videos[i] for i in train_idx], config),
                  window_dataset([train_videos[i] for i in sel_idx], config),
                  window_dataset(test_videos, config) if test_videos is not None else None, False, (note,))


def ground_truth(videos) -> list[tuple[str, int, int, str]]:
    """MEGC ground truth of :class:`~edgefer.data.spotting.SpottingVideo` s as 0-based inclusive frame indices
    (the indices :func:`edgefer.spotting.scores_to_intervals` gives)."""
    return [(v.name, onset - 1, offset - 1, label) for v in videos for onset, offset, label in v.intervals]


def intervals_from_scores(per_video: dict[int, np.ndarray], videos, *, fps: float, gap: int,
                          length_ranges=None) -> list[tuple[str, int, int, str, float]]:
    """Predicted intervals ``(video name, start, end, label, score)`` from each video's (F, 3) frame scores."""
    ranges = None if length_ranges is None else {k: (int(v[0]), None if v[1] is None else int(v[1]))
                                                 for k, v in length_ranges.items()}
    predictions = []
    for v, scores in sorted(per_video.items()):
        for i in scores_to_intervals(scores, fps, gap=gap, length_ranges=ranges):
            predictions.append((videos[v].name, i.start_frame, i.end_frame, i.label, i.score))
    return predictions


def merge_windows(dataset, window_probs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Per-video (F, C) frame scores from ``{window index: (K, C) probabilities}`` over all windows of
    ``dataset`` (a :class:`~edgefer.data.windows.SpottingWindowDataset`)."""
    by_video: dict[int, tuple[list, list]] = {}
    for index, probs in sorted(window_probs.items()):
        v, start = dataset.windows[index]
        entry = by_video.setdefault(v, ([], []))
        entry[0].append(probs)
        entry[1].append(start)
    return {v: merge_window_scores(np.stack(p), s, dataset.videos[v].num_frames) for v, (p, s) in by_video.items()}


@torch.no_grad()
def evaluate_spotting(model: torch.nn.Module, dataset, ctx: DistContext, *, fps: float = 30.0, gap: int = 2,
                      variant: str = "megc2020", length_ranges=None, batch_size: int = 4, num_workers: int = 0,
                      amp: bool = False, amp_dtype: str = "float16") -> SpottingResult:
    """MEGC spotting scores of ``model`` (frame-wise logits (B, K, 3)) on a window dataset, every rank taking
    part; see the module doc. Returns the :class:`~edgefer.spotting.SpottingResult` (identical on all ranks)."""
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), ctx),
                        num_workers=num_workers)
    indices = ShardSampler(len(dataset), ctx).indices
    mine: dict[int, np.ndarray] = {}
    position = 0
    for frames, _labels in loader:
        with autocast(ctx.device, amp, amp_dtype):
            logits = model(frames.to(ctx.device))
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        for p in probs:
            mine[indices[position]] = p
            position += 1
    window_probs: dict[int, np.ndarray] = {}
    for part in all_gather_objects(mine, ctx):
        window_probs.update(part)
    model.train(was_training)
    per_video = merge_windows(dataset, window_probs)
    predictions = intervals_from_scores(per_video, dataset.videos, fps=fps, gap=gap, length_ranges=length_ranges)
    return evaluate(ground_truth(dataset.videos), predictions, variant=variant)
