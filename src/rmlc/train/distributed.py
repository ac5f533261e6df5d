"""Multi-process training through torch.distributed (``torchrun``): set-up and barriers
(rows are gathered by :func:`rmlc.gather.gather_rows`).

``torchrun --nproc_per_node=N -m rmlc train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_distributed` then joins the process group (NCCL on GPUs, gloo
on CPUs). With one process nothing is initialised and every helper degrades to a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistributedContext",
    "barrier",
    "init_distributed",
    "shutdown_distributed",
    "training_network",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank, world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", timeout_s: float = 600.0) -> DistributedContext:
    """Join the process group when launched by torchrun, and pick this process's device.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        timeout_s: collective timeout; a crashed peer makes the others fail within it.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", local_rank if world_size > 1 else 0)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        # A crashed peer makes torchrun stop the others; a hung one makes the survivors'
        # collectives fail after timeout_s instead of waiting forever.
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(
            backend,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=(chosen if chosen.type == "cuda" else None),
        )
    return DistributedContext(rank, world_size, local_rank, chosen)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op with one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def training_network(
    model: nn.Module, channels_last: bool, compile_network: bool, context: DistributedContext
) -> tuple[nn.Module, nn.Module]:
    """``(model, network)``: ``model`` on this process's device (channels-last if asked),
    and the module trained: the model, wrapped for DDP when distributed, compiled if asked."""
    device = context.device
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    network = model
    if context.enabled:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if compile_network:
        network = torch.compile(network)
    return model, network
