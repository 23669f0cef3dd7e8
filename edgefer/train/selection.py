"""The selection split: a seeded, class-stratified fraction of the training fold, held apart to pick the epoch.

The reference DFER code picked its best epoch on the test fold, which reports an optimistic test score. edgefer
holds apart a fraction of the *training* fold instead (per class, so rare classes are represented), selects the
checkpoint on it, and scores the test fold once, at the end. numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ArgumentError


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices 0..N-1 into (train, selection), ``fraction`` of each class going to selection.

    Per class of n items, ``round(fraction * n)`` of them (at least 1 when n >= 2, never all n) are drawn with a
    ``numpy.random.default_rng(seed)`` permutation; the same labels and seed always give the same split.

    Args:
        labels: class index of each training item.
        fraction: in (0, 1).
        seed: the split's seed.

    Returns:
        (train indices, selection indices), each sorted; together they are 0..N-1, disjoint.

    Raises:
        ArgumentError: fraction outside (0, 1), or the split leaves the selection set empty (too few items).
    """
    if not 0 < fraction < 1:
        raise ArgumentError(f"selection fraction must lie in (0, 1), got {fraction}")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    rng = np.random.default_rng(seed)
    selection: list[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        n = members.size
        if n < 2:
            continue
        take = min(n - 1, max(1, int(round(fraction * n))))
        selection.extend(rng.permutation(members)[:take].tolist())
    if not selection:
        raise ArgumentError(f"a selection split of {fraction:g} of {labels.size} training items is empty: every "
                            "class needs at least 2 items")
    chosen = set(selection)
    return [i for i in range(labels.size) if i not in chosen], sorted(selection)


def split_items(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, selection) indices of ``count`` unlabelled items (spotting videos): a seeded ``fraction`` of them,
    at least 1 and never all.

    Raises:
        ArgumentError: fewer than 2 items, or fraction outside (0, 1).
    """
    if not 0 < fraction < 1:
        raise ArgumentError(f"selection fraction must lie in (0, 1), got {fraction}")
    if count < 2:
        raise ArgumentError(f"a selection split needs at least 2 training videos, got {count}")
    take = min(count - 1, max(1, int(round(fraction * count))))
    chosen = set(np.random.default_rng(seed).permutation(count)[:take].tolist())
    return [i for i in range(count) if i not in chosen], sorted(chosen)
