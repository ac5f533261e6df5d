"""Rows gathered from every process of a ``torch.distributed`` group, one per dataset index.

Samplers that shard a dataset over ranks pad it by repeating samples, so gathered rows can
hold one index twice. :func:`gather_rows` collects every rank's row tensors with
``all_gather`` on tensors (sizes first, then rows padded to the longest shard: no pickling),
and :func:`first_per_index` keeps the first row of each index in index order: together they
give the rows one process would have computed (the trainer's features and scores).
:func:`gather_objects` collects one picklable object per rank, for small or irregular
payloads (:class:`rmlc.metrics.MultiLabelMeter`, sharded label propagation's pieces).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["first_per_index", "gather_objects", "gather_rows", "world_size"]

_MAX_DIMS = 8  # rows of at most this many dimensions travel through gather_rows


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


def _collective_device() -> torch.device:
    """Where tensors must be for the group's collectives: the current GPU under NCCL."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (all of one shape and dtype), in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor)
    return parts


def _gather_tensors(rows: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """Every rank's ``rows`` (its own length; the trailing shape of a rank with rows), CPU."""
    if rows.dim() > _MAX_DIMS:
        raise ValueError(
            f"gather_rows takes rows of at most {_MAX_DIMS} dimensions, got {rows.dim()}"
        )
    header = torch.zeros(_MAX_DIMS + 1, dtype=torch.int64)
    header[0], header[1 : rows.dim() + 1] = rows.dim(), torch.tensor(rows.shape)
    headers = [h.cpu() for h in _all_gather(header.to(device))]
    shapes = [tuple(h[1 : int(h[0]) + 1].tolist()) for h in headers]
    filled = [shape for shape in shapes if shape and shape[0] > 0]
    trailing = filled[0][1:] if filled else tuple(rows.shape[1:])
    longest = max((shape[0] if shape else 0) for shape in shapes)
    padded = rows.new_zeros((max(longest, 1), *trailing), device=device)
    if rows.numel():
        padded[: len(rows)] = rows.reshape(len(rows), *trailing).to(device)
    parts = _all_gather(padded)
    return [
        part[: shape[0] if shape else 0].cpu() for part, shape in zip(parts, shapes, strict=True)
    ]


def gather_rows(rows: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's rows, one per dataset index, ordered by index: the rows one process
    would have computed alone. Collective: every rank must call it.

    Tensors travel with ``all_gather`` (NCCL: on this process's GPU; gloo: on the CPU).
    A rank with no rows may pass any empty tensor (``torch.empty(0)``); ranks with rows
    must agree on their trailing shape and every rank on the dtype.

    Args:
        rows: ``(n, ...)`` this process's rows.
        indices: ``(n,)`` integer dataset indices of the rows (repeats allowed).

    Returns:
        ``(rows (u, ...), indices (u,))``, CPU tensors, one row per distinct index.
    """
    rows, indices = rows.detach().cpu(), indices.detach().cpu()
    if world_size() > 1:
        device = _collective_device()
        parts = _gather_tensors(rows, device)
        index_parts = _gather_tensors(indices.to(torch.int64), device)
        kept = [i for i, part in enumerate(index_parts) if len(part)] or [0]  # empty shards
        rows = torch.cat([parts[i] for i in kept])
        indices = torch.cat([index_parts[i] for i in kept])
    first = first_per_index(indices)
    return rows[first], indices[first]
