"""Scoring a checkpoint and its exported artefact on the same list, side by side (``edgefer evaluate``).

- A ``.pt`` checkpoint is rebuilt (:func:`edgefer.models.checkpoint.load_checkpoint`) and run in PyTorch on the
  dataset's deterministic test clips (:class:`edgefer.data.clips.DferClipDataset` with ``train=False``).
- An exported ``.onnx`` (or any artefact :func:`edgefer.load` opens) is run through the runtime: every clip's
  frames are read from its frame folder (:func:`edgefer.data.records.list_frames`,
  :func:`edgefer.data.images.read_image`) and given to ``model.predict``, which samples and prepares them as its
  metadata says -- exactly what deployment does. The dataset's test clips are built with the same
  :func:`edgefer.sampling.dfew_test_indices` and :func:`edgefer.preprocess.prepare_frame`, so the two rows differ
  only by what the export changed. Spotting models are scored with ``spot_frames`` on the same windows.

The artefact path imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArgumentError
from .metrics import confusion_matrix, scores


@dataclass(frozen=True)
class EvaluationRow:
    """One model's scores on one list: ``kind`` (``checkpoint`` or the runtime backend), the figures
    (``war``/``uar`` or ``f1``/``precision``/``recall``), the number of clips (or windows) and the
    confusion matrix (DFER)."""

    path: str
    kind: str
    task: str
    figures: dict
    count: int
    confusion: np.ndarray | None = None


def read_dfer_list(dataset: str | Path, *, root: str | None = None, data_format: str = "annotation",
                   skip_bad: bool = False):
    """The records of an evaluation list (annotation list, DFEW split CSV with ``root``, or class folders)."""
    from ..data.annotations import parse_root, read_annotation_list, read_dfew_split, scan_class_folders

    if data_format == "annotation":
        return read_annotation_list(dataset, root=None if root is None else parse_root(root), skip_bad=skip_bad)
    if data_format == "dfew-split":
        if root is None:
            raise ArgumentError("--format dfew-split needs --root: the folder of DFEW's 00001/ ... frame folders")
        return read_dfew_split(dataset, root, skip_bad=skip_bad)
    if data_format == "folders":
        return scan_class_folders(dataset, skip_bad=skip_bad)
    raise ArgumentError(f"--format {data_format!r}: choose annotation, dfew-split or folders (DFER lists)")


def evaluate_checkpoint(path: str | Path, records, *, kernels: str = "auto", batch_size: int = 8) -> EvaluationRow:
    """WAR/UAR of an edgefer ``.pt`` checkpoint (PyTorch, eval mode) on ``records``' test clips."""
    from ..data.clips import DferClipDataset
    from ..models.checkpoint import load_checkpoint
    from .distributed import DistContext
    from .evaluation import dfer_confusion

    loaded = load_checkpoint(path, kernels=kernels)
    model = loaded.model
    if model.metadata_fields()["task"] != "dfer":
        raise ArgumentError(f"{path} is a {model.name} spotting checkpoint: evaluate it on a spotting dataset")
    c = model.config
    dataset = DferClipDataset(records, train=False, frame_size=c.frame_size, segments=c.clip_length // 2,
                              frames_per_segment=2)
    cm = dfer_confusion(model, dataset, DistContext(), batch_size=batch_size, num_classes=c.num_classes)
    s = scores(cm)
    return EvaluationRow(str(path), "checkpoint (PyTorch)", "dfer", {"war": s.war, "uar": s.uar}, s.clips, cm)


def evaluate_artefact(path: str | Path, records, *, device: str = "cpu") -> EvaluationRow:
    """WAR/UAR of an exported artefact (``.onnx``, a split folder, ...) through the runtime on ``records``."""
    from .. import load
    from ..data.images import read_image
    from ..data.records import list_frames

    model = load(path, device=device)
    model.check_task("dfer")
    num_classes = len(model.labels)
    targets, predictions = [], []
    for record in records:
        frames = [read_image(p, record.source) for p in list_frames(record.frame_dir)]
        predictions.append(model.predict(frames).index)
        targets.append(record.label)
    cm = confusion_matrix(targets, predictions, num_classes)
    s = scores(cm)
    return EvaluationRow(str(path), f"artefact ({model.backend})", "dfer", {"war": s.war, "uar": s.uar}, s.clips, cm)


def evaluate_path(path: str | Path, records, **options) -> EvaluationRow:
    """:func:`evaluate_checkpoint` for a ``.pt`` file, :func:`evaluate_artefact` for anything else."""
    if str(path).endswith(".pt"):
        return evaluate_checkpoint(path, records, kernels=options.get("kernels", "auto"))
    return evaluate_artefact(path, records, device=options.get("device", "cpu"))


def table(rows: list[EvaluationRow], dataset: str) -> str:
    """The side-by-side table of ``edgefer evaluate``: one row per model, and each row's difference to the first."""
    lines = [f"{dataset}: {rows[0].count if rows else 0} clips",
             f"{'model':<40} {'kind':<30} {'WAR':>8} {'UAR':>8} {'dWAR':>8} {'dUAR':>8}"]
    for row in rows:
        d_war = 100 * (row.figures["war"] - rows[0].figures["war"])
        d_uar = 100 * (row.figures["uar"] - rows[0].figures["uar"])
        name = row.path if len(row.path) <= 40 else "..." + row.path[-37:]
        lines.append(f"{name:<40} {row.kind:<30} {100 * row.figures['war']:>7.2f}% {100 * row.figures['uar']:>7.2f}% "
                     f"{d_war:>+7.2f} {d_uar:>+7.2f}")
    return "\n".join(lines)


def read_spotting_list(gt_file: str | Path, *, root: str | None, videos: str | None = None, skip_bad: bool = False):
    """The videos of a spotting evaluation set (MEGC ground truth + the frame folders under ``root``)."""
    from ..data.spotting import read_spotting_dataset

    if root is None:
        raise ArgumentError("--format spotting needs --root: the folder holding the videos' frame folders")
    return read_spotting_dataset(gt_file, root, videos_file=videos, skip_bad=skip_bad)


def evaluate_spotting_path(path: str | Path, videos, *, fps: float = 30.0, gap: int = 2, variant: str = "megc2020",
                           length_ranges=None, device: str = "cpu", kernels: str = "auto") -> EvaluationRow:
    """MEGC F1 of a FESNet checkpoint (PyTorch) or artefact (runtime ``spot_frames``) on ``videos``: windows of
    the model's K frames every K / 2, frame scores merged per video, post-processed, scored
    (:mod:`edgefer.train.spotting`)."""
    from .spotting import ground_truth, intervals_from_scores

    if str(path).endswith(".pt"):
        from ..data.windows import SpottingWindowDataset
        from ..models.checkpoint import load_checkpoint
        from .distributed import DistContext
        from .spotting import evaluate_spotting

        model = load_checkpoint(path, kernels=kernels).model
        if model.metadata_fields()["task"] != "spotting":
            raise ArgumentError(f"{path} is a {model.name} DFER checkpoint: evaluate it on a DFER list")
        c = model.config
        dataset = SpottingWindowDataset(videos, window=c.clip_length, stride=max(1, c.clip_length // 2),
                                        frame_size=c.frame_size)
        result = evaluate_spotting(model, dataset, DistContext(), fps=fps, gap=gap, variant=variant,
                                   length_ranges=length_ranges)
        kind, count = "checkpoint (PyTorch)", len(dataset)
    else:
        from .. import load
        from ..data.images import read_image
        from ..data.records import list_frames
        from ..spotting import evaluate, merge_window_scores, window_frame_indices

        model = load(path, device=device)
        model.check_task("spotting")
        k = model.metadata.clip_length
        per_video, count = {}, 0
        for v, video in enumerate(videos):
            images = [read_image(p, video.source) for p in list_frames(video.frame_dir)]
            rows = window_frame_indices(len(images), k, max(1, k // 2))
            probs = np.stack([model.spot_frames([images[i] for i in row]).probabilities for row in rows])
            per_video[v] = merge_window_scores(probs, rows[:, 0], len(images))
            count += len(rows)
        predictions = intervals_from_scores(per_video, videos, fps=fps, gap=gap, length_ranges=length_ranges)
        result = evaluate(ground_truth(videos), predictions, variant=variant)
        kind = f"artefact ({model.backend})"
    o = result.overall
    return EvaluationRow(str(path), kind, "spotting", {"f1": o.f1, "precision": o.precision, "recall": o.recall},
                         count)


def spotting_table(rows: list[EvaluationRow], dataset: str) -> str:
    """``edgefer evaluate``'s table for spotting models: MEGC precision, recall, F1 and the F1 difference."""
    lines = [f"{dataset}: {rows[0].count if rows else 0} windows",
             f"{'model':<40} {'kind':<30} {'P':>8} {'R':>8} {'F1':>8} {'dF1':>8}"]
    for row in rows:
        f = row.figures
        name = row.path if len(row.path) <= 40 else "..." + row.path[-37:]
        lines.append(f"{name:<40} {row.kind:<30} {f['precision']:>8.4f} {f['recall']:>8.4f} {f['f1']:>8.4f} "
                     f"{f['f1'] - rows[0].figures['f1']:>+8.4f}")
    return "\n".join(lines)
