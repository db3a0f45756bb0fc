"""Training on several GPUs with ``torch.distributed``: one process per GPU, started by ``torchrun``.

The papers trained on 4 GPUs with ``nn.DataParallel`` (docs/methods.md, section 5); reidlab runs one process per
GPU with :class:`~torch.nn.parallel.DistributedDataParallel` instead (``python -m reidlab.train``, see
:mod:`reidlab.train`). Every helper here is a no-op in a single process, so the same training loop
(:class:`reidlab.training.Trainer`) runs with and without ``torchrun``. The only state is
``torch.distributed``'s own process group.

Collectives run on the CPU with the ``gloo`` backend and on the process's GPU with ``nccl``; tensors
come back on the device they were given on.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from reidlab.utils import resolve_device

logger = logging.getLogger(__name__)

__all__ = [
    "World",
    "all_gather_tensors",
    "barrier",
    "broadcast_array",
    "broadcast_object",
    "cleanup_distributed",
    "current_world",
    "data_parallel",
    "gather_shards",
    "init_distributed",
    "is_distributed",
    "rank_seed",
    "shard_bounds",
    "sync_buffers",
]

# Seeds of rank r are offset by r times this, so that rank 0 keeps the single-process seeds.
_RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes.

    Attributes:
        rank: this process's index, 0 .. world_size - 1 (``RANK`` under torchrun).
        world_size: number of processes (``WORLD_SIZE``); 1 without torchrun.
        local_rank: index on this machine (``LOCAL_RANK``), which picks the GPU.
        device: where this process trains: ``cuda:<local_rank>`` with CUDA, else the CPU.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that clusters, evaluates and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def is_distributed() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current_world(device: str | torch.device | None = None) -> World:
    """The :class:`World` of this process, read from the running process group (if any).

    Args:
        device: the training device; ``None`` picks ``cuda:<LOCAL_RANK>`` when CUDA is available
            (``cuda`` without a process group), else the CPU.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return World(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device is None and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    return World(dist.get_rank(), dist.get_world_size(), local_rank, resolve_device(device))


def init_distributed(
    backend: str | None = None, *, timeout: datetime.timedelta = datetime.timedelta(hours=1)
) -> World:
    """Join the process group that ``torchrun`` describes in the environment; a single process otherwise.

    ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
    Without them (or with ``WORLD_SIZE=1``) nothing is initialised and a one-process :class:`World`
    is returned. Calling it again in a process that has joined returns the same world.

    Args:
        backend: ``"nccl"`` (default with CUDA; one GPU per process, ``cuda:<LOCAL_RANK>``) or
            ``"gloo"`` (default without CUDA; CPU processes, as in the tests).
        timeout: how long a collective waits. Long, because the other ranks wait at a collective
            while rank 0 clusters (minutes on MSMT17) and evaluates.

    Raises:
        ValueError: an unknown backend, or ``"nccl"`` without CUDA.
    """
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return current_world()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend not in ("nccl", "gloo"):
            raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
        if backend == "nccl" and not torch.cuda.is_available():
            raise ValueError("backend 'nccl' needs CUDA, which is not available; use backend='gloo'")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend, timeout=timeout)
    world = current_world()
    logger.info("process %d of %d on %s", world.rank, world.world_size, world.device)
    return world


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def rank_seed(seed: int, rank: int) -> int:
    """A seed for ``rank`` derived from ``seed``; rank 0 keeps ``seed`` (the single-process run's)."""
    return seed + _RANK_SEED_STRIDE * rank


def _comm_device() -> torch.device:
    """Where a collective needs its tensors: the process's GPU with nccl, the CPU with gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_tensors(tensor: torch.Tensor) -> torch.Tensor:
    """The ``tensor`` of every process, concatenated along dim 0 in rank order.

    Every process must pass the same shape and dtype (the P x K batches of the ranks do). No gradient
    flows through the result.

    Args:
        tensor: ``(B, ...)`` on any device.

    Returns:
        ``(world_size * B, ...)`` on ``tensor``'s device; ``tensor`` itself in a single process.
    """
    if not is_distributed():
        return tensor
    local = tensor.detach().to(_comm_device()).contiguous()
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return torch.cat(parts).to(tensor.device)


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank's contiguous share of ``n`` items; shares differ by at most one item."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return rank * n // world_size, (rank + 1) * n // world_size


def gather_shards(shard: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's :func:`shard_bounds` share of ``n`` rows, put back together in order.

    Args:
        shard: ``(stop - start, ...)``, this rank's rows.
        n: the total number of rows.

    Returns:
        ``(n, ...)`` on ``shard``'s device, identical on every rank; ``shard`` in a single process.
    """
    if not is_distributed():
        return shard
    world_size, rank = dist.get_world_size(), dist.get_rank()
    start, stop = shard_bounds(n, rank, world_size)
    if shard.shape[0] != stop - start:
        raise ValueError(f"rank {rank} holds rows {start}..{stop} of {n}: expected {stop - start} rows, "
                         f"got {shard.shape[0]}")
    longest = -(-n // world_size)
    padded = shard.new_zeros((longest, *shard.shape[1:]))
    padded[: shard.shape[0]] = shard
    gathered = all_gather_tensors(padded).view(world_size, longest, *shard.shape[1:])
    sizes = [shard_bounds(n, r, world_size) for r in range(world_size)]
    return torch.cat([gathered[r, : b - a] for r, (a, b) in enumerate(sizes)])


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (picklable objects; others may pass ``None``)."""
    if not is_distributed():
        return obj
    holder = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(holder, src=src, device=_comm_device())
    return holder[0]


def broadcast_array(array: np.ndarray | None, src: int = 0) -> np.ndarray:
    """Rank ``src``'s NumPy ``array`` on every rank (e.g. the pseudo-labels ``(N,)``).

    Args:
        array: the array on rank ``src``; ignored (``None`` is fine) on the others.
        src: the sending rank.

    Raises:
        TypeError: rank ``src`` passed something that is not a NumPy array.
    """
    sender = not is_distributed() or dist.get_rank() == src
    if sender and not isinstance(array, np.ndarray):
        raise TypeError(f"broadcast_array sends a NumPy array, got {type(array).__name__}")
    if not is_distributed():
        return array
    shape, dtype = broadcast_object((array.shape, array.dtype.str) if sender else None, src)
    dtype = np.dtype(dtype)
    if sender:
        data = torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    else:
        data = torch.empty(int(np.prod(shape)) * dtype.itemsize, dtype=torch.uint8)
    data = data.to(_comm_device())
    dist.broadcast(data, src=src)
    return data.cpu().numpy().view(dtype).reshape(shape).copy()


@torch.no_grad()
def sync_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) into every rank's ``module``, in place.

    DistributedDataParallel broadcasts rank 0's buffers at the start of each training forward, so
    after the last forward of an epoch every rank has updated its statistics with its own batch only.
    Syncing then gives every rank rank 0's statistics, which ``nn.DataParallel`` (the papers' setup)
    also keeps.
    """
    if not is_distributed():
        return
    for buffer in module.buffers():
        local = buffer.to(_comm_device())
        dist.broadcast(local, src=src)
        buffer.copy_(local)


def data_parallel(model: nn.Module, world: World, *, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel on ``world.device``; ``model`` itself in one process.

    The wrapper shares ``model``'s parameters: train through it, and extract, evaluate and save with
    ``model``. Its construction copies rank 0's parameters and buffers to every rank. Gradients are
    averaged over the ranks, so with a loss that is a mean over the local batch every rank steps with
    the gradient of the mean over the global batch, as one process with the whole batch would.
    BatchNorm normalises with the local batch statistics, as each GPU of ``nn.DataParallel`` did.

    Args:
        model: the module to train.
        world: this process's :class:`World`.
        find_unused_parameters: set it when the loss leaves some trainable parameters without a gradient
            (e.g. SCWM with only some of its loss terms, :class:`reidlab.training.parts.PartStage`). DDP then
            waits for no gradient of theirs and leaves their ``.grad`` as it is (``None``), as one
            process would; without it such a run stops with an error at its second step.
    """
    if not world.is_distributed:
        return model
    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)
