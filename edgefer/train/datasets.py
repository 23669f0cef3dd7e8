"""The datasets a training config names, built with :mod:`edgefer.data` (the one home of dataset reading).

:func:`dfer_records` reads a split's records by ``data.format`` (annotation list, DFEW split CSV, class folders);
:func:`dfer_dataset` wraps records in :class:`edgefer.data.clips.DferClipDataset` with the model's clip length
and frame size; :func:`build_splits` makes the (train, selection, test) triple of a run, the selection split carved
from the training fold (:mod:`edgefer.train.selection`) unless the protocol is ``reference-test-selection``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch.utils.data import Dataset

from ..errors import ArgumentError
from .config import TrainConfig
from .selection import stratified_split
from .tasks import TASKS


@dataclass
class Splits:
    """The datasets of one run: ``train`` (augmented), ``selection`` and ``test`` (deterministic clips).

    ``selection_is_test``: the selection split *is* the test fold (``reference-test-selection``). ``notes``: lines
    worth printing (skipped entries, split sizes).
    """

    train: Dataset
    selection: Dataset
    test: Dataset | None
    selection_is_test: bool = False
    notes: tuple[str, ...] = ()


def _root(data):
    from ..data.annotations import parse_root

    return None if data.root is None else parse_root(data.root)


def dfer_records(config: TrainConfig, which: str):
    """The records of split ``which`` (``"train"`` or ``"test"``) of a DFER config, by ``data.format``.

    Raises:
        ArgumentError: the split's path is not set. DatasetError (from :mod:`edgefer.data`): a bad list, naming
            its file and line.
    """
    data = config.data
    path = getattr(data, which)
    if path is None:
        raise ArgumentError(f"data.{which} is not set: give the {which} list (--{which} or data.{which} in the config)")
    if data.format == "annotation":
        from ..data.annotations import read_annotation_list

        return read_annotation_list(path, root=_root(data), skip_bad=data.skip_bad)
    if data.format == "dfew-split":
        from ..data.annotations import read_dfew_split

        if data.root is None:
            raise ArgumentError("data.format dfew-split needs data.root: the folder of DFEW's 00001/ ... frame folders")
        return read_dfew_split(path, data.root, skip_bad=data.skip_bad)
    if data.format == "folders":
        from ..data.annotations import scan_class_folders

        return scan_class_folders(path, skip_bad=data.skip_bad)
    raise ArgumentError(f"data.format {data.format!r} is not a DFER format (annotation, dfew-split, folders)")


def dfer_dataset(records, config: TrainConfig, *, train: bool) -> Dataset:
    """Records -> :class:`~edgefer.data.clips.DferClipDataset` shaped for ``config``'s model (T = clip_length
    as segments of 2 frames, S = frame_size)."""
    from ..data.clips import DferClipDataset
    from ..models import build_config

    model_config = build_config(config.model, **config.model_config)
    if model_config.clip_length % 2:
        raise ArgumentError(f"clip_length {model_config.clip_length} must be even (segments of 2 frames)")
    return DferClipDataset(records, train=train, frame_size=model_config.frame_size,
                           segments=model_config.clip_length // 2, frames_per_segment=2, seed=config.seed,
                           augment=config.data.augment, crop_scale=tuple(config.data.crop_scale))


def build_splits(config: TrainConfig, log: Callable[[str], Any] = print) -> Splits:
    """The (train, selection, test) datasets of ``config``.

    ``train-selection``: ``data.selection_fraction`` of the training fold, class-stratified with ``seed``, is the
    selection split (clips for DFER, whole videos for spotting); the test fold is only scored at the end.
    ``reference-test-selection``: all of the training fold trains, and the test fold selects.
    """
    if TASKS[config.model] == "spotting":
        from .spotting import build_spotting_splits

        return build_spotting_splits(config, log)
    train_records = dfer_records(config, "train")
    test_records = dfer_records(config, "test") if config.data.test is not None else None
    notes = []
    for name, records in (("train", train_records), ("test", test_records)):
        if records is not None and getattr(records, "skipped", 0):
            notes.append(f"{name} list: skipped {records.skipped} bad entries (--skip-bad); first: "
                         f"{records.problems[0]}")
    if config.protocol == "reference-test-selection":
        if test_records is None:
            raise ArgumentError("protocol reference-test-selection selects on the test fold: set data.test")
        return Splits(dfer_dataset(train_records, config, train=True), dfer_dataset(test_records, config, train=False),
                      dfer_dataset(test_records, config, train=False), True, tuple(notes))
    train_idx, sel_idx = stratified_split([r.label for r in train_records], config.data.selection_fraction,
                                          config.seed)
    notes.append(f"selection split: {len(sel_idx)} of {len(train_records)} training clips (class-stratified, "
                 f"seed {config.seed}); training on {len(train_idx)}")
    train_ds = dfer_dataset([train_records[i] for i in train_idx], config, train=True)
    sel_ds = dfer_dataset([train_records[i] for i in sel_idx], config, train=False)
    test_ds = dfer_dataset(test_records, config, train=False) if test_records is not None else None
    return Splits(train_ds, sel_ds, test_ds, False, tuple(notes))
