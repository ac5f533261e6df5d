"""Rows gathered from every process of a ``torch.distributed`` group, one per dataset index.

Samplers that shard a dataset over ranks pad it by repeating samples, so gathered rows can
hold one index twice. :func:`gather_objects` collects one picklable object per rank (CPU
tensors travel with gloo and NCCL alike), and :func:`first_per_index` keeps the first row of
each index in index order: together they give the rows one process would have computed.
Used by the trainer (features, scores) and :class:`rmlc.metrics.MultiLabelMeter`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["first_per_index", "gather_objects", "world_size"]


def world_size() -> int:
    """Processes in the initialised ``torch.distributed`` group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_objects(local: Any) -> list[Any]:
    """Every rank's ``local``, in rank order (``[local]`` with one process). Collective:
    every rank must call it."""
    if world_size() == 1:
        return [local]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return gathered


def first_per_index(indices: torch.Tensor) -> torch.Tensor:
    """``(u,)`` positions of the first row of each distinct index, ordered by index.

    Args:
        indices: ``(n,)`` integer dataset indices of gathered rows (repeats allowed).
    """
    order = torch.argsort(indices, stable=True)
    ordered = indices[order]
    first = torch.ones(len(ordered), dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]
