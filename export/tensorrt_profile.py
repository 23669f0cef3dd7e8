"""The optimization profile of an engine's batch axis: (min, opt, max), checked, and the input shapes it gives.

TensorRT builds an engine with dynamic input dimensions for the shapes of its optimization profiles
(``IOptimizationProfile.set_shape(input, min, opt, max)``, added with ``IBuilderConfig.add_optimization_profile``):
every call must then set an input shape inside [min, max] (``IExecutionContext.set_input_shape``), and the
kernels are tuned for ``opt``. edgefer's graphs have one dynamic axis, the batch (clips per call); every other
dimension of the input is fixed by the metadata (clip length, channels, frame size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from edgefer.errors import ArgumentError

#: The largest batch a profile may name: the ONNX export's dynamic batch bound (``export.onnx_export``).
MAX_BATCH = 4096
#: TensorRT's limit on the elements of one tensor (a signed 32-bit volume for most layers).
MAX_TENSOR_ELEMENTS = 2**31 - 1
#: The profile used when none is given: single clips, the video pipelines' batch of 4, and room for 8.
DEFAULT_BATCH = (1, 4, 8)


@dataclass(frozen=True)
class BatchProfile:
    """An optimization profile on the batch axis.

    Attributes:
        min, opt, max: batch sizes with 1 <= min <= opt <= max <= :data:`MAX_BATCH`.

    Raises:
        ArgumentError: a size that is not an integer >= 1, min > opt, opt > max, or max > :data:`MAX_BATCH`.
    """

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        for name in ("min", "opt", "max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArgumentError(f"batch profile {name} must be an integer >= 1, got {value!r}")
        if not self.min <= self.opt <= self.max:
            raise ArgumentError(f"batch profile needs min <= opt <= max, got {self.min}:{self.opt}:{self.max}")
        if self.max > MAX_BATCH:
            raise ArgumentError(f"batch profile max {self.max} exceeds {MAX_BATCH}, the export's batch bound")

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.min, self.opt, self.max)

    def contains(self, batch: int) -> bool:
        """Whether a call with ``batch`` clips fits this profile."""
        return self.min <= batch <= self.max


def parse_batch(text: str) -> BatchProfile:
    """``"MIN:OPT:MAX"`` (or one size ``"N"``, meaning N:N:N) -> :class:`BatchProfile`.

    Raises:
        ArgumentError: not one or three integers separated by ``:``, or a profile :class:`BatchProfile` refuses.
    """
    parts = str(text).split(":")
    if len(parts) not in (1, 3):
        raise ArgumentError(f"a batch profile is MIN:OPT:MAX (or one size), got {text!r}")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise ArgumentError(f"a batch profile is MIN:OPT:MAX integers, got {text!r}") from None
    return BatchProfile(*(sizes * 3 if len(sizes) == 1 else sizes))


def make_profile(batch: BatchProfile | Sequence[int] | str | None = None, *, min_batch: int | None = None,
                 opt_batch: int | None = None, max_batch: int | None = None) -> BatchProfile:
    """The profile from ``batch`` (a profile, a (min, opt, max) triple or ``"MIN:OPT:MAX"``; default
    :data:`DEFAULT_BATCH`), with any of ``min_batch`` / ``opt_batch`` / ``max_batch`` replacing its part.

    When only some parts are given, the others follow the default and are clamped so that the profile stays
    ordered: ``max_batch=2`` alone gives 1:2:2, ``min_batch=16`` alone gives 16:16:16.

    Raises:
        ArgumentError: the resulting profile is invalid (:class:`BatchProfile`), or ``batch`` is not three sizes.
    """
    parts = {"min_batch": min_batch, "opt_batch": opt_batch, "max_batch": max_batch}
    for name, value in parts.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ArgumentError(f"{name} must be an integer >= 1, got {value!r}")
    if batch is not None:
        if isinstance(batch, BatchProfile):
            base = batch.as_tuple()
        elif isinstance(batch, str):
            base = parse_batch(batch).as_tuple()
        else:
            base = tuple(batch)
            if len(base) != 3:
                raise ArgumentError(f"batch must be (min, opt, max), got {batch!r}")
        return BatchProfile(*(v if v is not None else b for v, b in zip(parts.values(), base)))
    given = [v for v in parts.values() if v is not None]
    lo = min_batch if min_batch is not None else min([DEFAULT_BATCH[0], *given])
    hi = max_batch if max_batch is not None else max([DEFAULT_BATCH[2], *given])
    mid = opt_batch if opt_batch is not None else max(lo, min(DEFAULT_BATCH[1], hi))
    return BatchProfile(lo, mid, hi)


def profile_shapes(input_shape: Sequence, profile: BatchProfile) -> tuple[tuple[int, ...], ...]:
    """The (min, opt, max) input shapes for ``profile`` on an input of ``input_shape``.

    Args:
        input_shape: the network input's dims as TensorRT or ONNX reports them: the batch first (dynamic: -1, a
            symbolic name or None; or a fixed size), then the fixed dims of one item.

    Raises:
        ArgumentError: a non-batch dim is dynamic; the batch axis is fixed to a size the profile does not equal
            (min = opt = max = that size); a dim < 1; or the input at ``profile.max`` has more than
            :data:`MAX_TENSOR_ELEMENTS` elements.
    """
    dims = list(input_shape)
    if not dims:
        raise ArgumentError("the network input is a scalar; edgefer's models take a batch axis first")
    rest = dims[1:]
    if not all(isinstance(d, int) and d >= 1 for d in rest):
        raise ArgumentError(f"the network input {dims} has dynamic or empty dims besides the batch; edgefer exports "
                            "fix every dim but the first")
    batch = dims[0]
    if isinstance(batch, int) and batch >= 1 and profile.as_tuple() != (batch,) * 3:
        raise ArgumentError(f"the network input has a fixed batch of {batch}; the profile must be "
                            f"{batch}:{batch}:{batch}, got {profile}")
    volume = math.prod(rest) * profile.max
    if volume > MAX_TENSOR_ELEMENTS:
        raise ArgumentError(f"batch profile max {profile.max} makes an input of {volume} elements, more than "
                            f"TensorRT's {MAX_TENSOR_ELEMENTS}; use a max batch <= {MAX_TENSOR_ELEMENTS // math.prod(rest)}")
    return tuple((b, *rest) for b in profile.as_tuple())
