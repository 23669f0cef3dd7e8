"""One training code for 1 process, N CPU processes (gloo) and N GPUs (nccl), through torch.distributed.

``torchrun --nproc_per_node N -m edgefer train ...`` (or ``python -m torch.distributed.run``) starts N processes
and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them
through :func:`torch.distributed.init_process_group` with ``init_method="env://"`` (PyTorch's documented
torchrun contract) and picks the backend: nccl on CUDA, gloo on the CPU. Without those variables it is one
process, and nothing is initialised. The model is wrapped in
:class:`torch.nn.parallel.DistributedDataParallel` by the trainer, its data sharded by
:class:`torch.utils.data.distributed.DistributedSampler`, and metrics summed across ranks with
:func:`all_reduce_sum`. Only rank 0 writes files or prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ArgumentError, BackendUnavailableError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank, world_size, local_rank: as torchrun set them (0, 1, 0 for a single process).
        device: the torch device this rank computes on (``cuda:LOCAL_RANK`` on a GPU run).
        backend: ``"nccl"``, ``"gloo"`` or None (not distributed).
        owns_group: this context initialised the process group (and :func:`teardown` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and prints."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """Whether torchrun's environment (``WORLD_SIZE`` and ``RANK``) is set for this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device: str = "auto") -> DistContext:
    """Initialise torch.distributed from torchrun's environment, or describe a single process.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.

    Returns:
        The :class:`DistContext`; on CUDA the current device is set to ``cuda:LOCAL_RANK``.

    Raises:
        BackendUnavailableError: ``device="cuda"`` without a CUDA device, or fewer GPUs than local ranks.
        ArgumentError: an unknown device.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ArgumentError(f"device must be auto, cpu or cuda, got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise BackendUnavailableError("device cuda was asked for, but PyTorch sees no CUDA device")
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistContext(device=torch.device("cuda", 0) if use_cuda else torch.device("cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise BackendUnavailableError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible): "
                                          "start at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend, init_method="env://")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       device=torch.device("cuda", local_rank) if use_cuda else torch.device("cpu"), backend=backend,
                       owns_group=owns)


def teardown(ctx: DistContext) -> None:
    """Destroy the process group, if this context's :func:`setup` created it (a no-op for a single process, and
    for a context that found the group already initialised: its creator tears it down)."""
    if ctx.distributed and ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over all ranks (in place, and returned); a single process returns it unchanged.

    The tensor is moved to the rank's device for the collective (nccl reduces CUDA tensors only) and returned on
    the device it came from.
    """
    if not ctx.distributed:
        return tensor
    work = tensor.to(ctx.device)
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    tensor.copy_(work.to(tensor.device))
    return tensor


def all_gather_objects(obj, ctx: DistContext) -> list:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` for a single process."""
    if not ctx.distributed:
        return [obj]
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (a no-op for a single process)."""
    if ctx.distributed:
        dist.barrier()


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's ``obj`` on every rank (a no-op for a single process)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation sharding: rank r reads indices r, r + N, r + 2N, ... of a dataset, each index exactly once.

    :class:`~torch.utils.data.distributed.DistributedSampler` pads the dataset to a multiple of the world size by
    repeating samples, which would count those clips twice in a confusion matrix; evaluation needs every clip
    once, and the counts are then summed across ranks (:func:`all_reduce_sum`).
    """

    def __init__(self, length: int, ctx: DistContext) -> None:
        self.indices = list(range(ctx.rank, length, ctx.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
