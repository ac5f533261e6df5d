"""The sharded layout: samples split across ``torch.distributed`` processes.

* Unlabeled shards: each process searches its own rows; :func:`all_distances` gathers every
  process's distances in row order, for the temperature.
* Labeled shards (``labeled_shard_indices``): :func:`search_labeled_shards` has each process
  in turn broadcast its labeled rows chunk by chunk, in increasing id order, and every
  process search its unlabeled rows against each chunk, keeping the nearer by float64
  distance with the package's one tie rule (:func:`rmlc.propagation.nearest.nearer`:
  smaller distance, then smaller id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rmlc.gather import first_per_index, gather_objects, world_size
from rmlc.propagation import chunks
from rmlc.propagation.checks import ArrayOrTensor, tensor_view
from rmlc.propagation.nearest import exact_distances, nearer
from rmlc.propagation.search import nearest_neighbors

__all__ = ["SearchSettings", "all_distances", "search_labeled_shards"]


@dataclass(frozen=True)
class SearchSettings:
    """How this process searches: computing device, resolved backend, unlabeled chunk rows,
    progress setting (as :func:`propagate_labels` takes them), the index and its settings."""

    device: torch.device
    backend: str
    chunk_size: int | None
    progress: bool | None
    index: str = "exact"
    index_settings: dict[str, int] | None = None


@dataclass(frozen=True)
class _LocalShard:
    """This process's labeled shard: features ``(l_local, d)``, label rows ``(l_local, ...)``
    as a tensor, ids ``(l_local,)`` int64 and ``order``, the rows in increasing id order."""

    features: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    order: torch.Tensor


@dataclass(frozen=True)
class _ShardLayout:
    """What every process agrees on before the labeled shards travel."""

    counts: list[int]  # labeled rows of each process, in rank order
    dim: int
    feature_dtype: torch.dtype  # float32, or float64 when some process's features are wider
    label_dtype: torch.dtype
    label_shape: tuple[int, ...]  # one label row's shape: () or (m,)
    n_labeled: int  # distinct labeled ids over all processes
    center: torch.Tensor  # (d,) float64 mean of the distinct labeled rows


@dataclass(frozen=True)
class _Nearest:
    """Running nearest labeled sample of each unlabeled row ``(u,)``: float64 distance, id
    and label row as its bytes ``(u, row bytes)`` uint8 (torch cannot assign rows of every
    dtype, e.g. uint16, by mask; bytes it can), updated in place."""

    distances: torch.Tensor
    ids: torch.Tensor
    labels: torch.Tensor


def all_distances(local: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Every process's distances, one per row of the whole unlabeled set, in row order
    (the order a single process computes them in, so that their mean is the same);
    ``rows`` ``(u_local,)`` int64, this process's rows (checked by ``shard_rows``)."""
    parts = gather_objects((local.cpu(), rows))
    distances = torch.cat([part[0] for part in parts])
    indices = torch.cat([part[1] for part in parts])
    return distances[first_per_index(indices)]


def _rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def _communication_device(device: torch.device) -> torch.device:
    """Where broadcast tensors live: a CUDA device under NCCL, the CPU otherwise."""
    if world_size() > 1 and dist.get_backend() == "nccl":
        return (
            device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        )
    return torch.device("cpu")


def _shard_layout(shard: _LocalShard) -> _ShardLayout:
    """Every process's shard sizes, dtypes and ids gathered (a collective), checked to agree;
    the centre is the float64 mean of the distinct labeled rows (each id's first row over
    the processes in rank order), summed per process and added in rank order."""
    features, labels = shard.features, shard.labels
    local = (len(features), features.shape[1], features.dtype, labels.dtype, labels.shape[1:])
    parts = gather_objects((*local, shard.ids))
    by_rank = [part[1] for part in parts]
    if len(set(by_rank)) > 1:
        raise ValueError(
            f"X_labeled must have the same number of features on every process; got {by_rank} "
            "(by rank)"
        )
    label_kinds = [(part[3], tuple(part[4])) for part in parts]
    if len(set(label_kinds)) > 1:
        raise ValueError(
            "Y_labeled must have the same dtype and row shape on every process; got "
            f"{label_kinds} (dtype, row shape by rank)"
        )
    all_ids = torch.cat([part[5] for part in parts])
    firsts = first_per_index(all_ids)
    if len(firsts) == 0:
        raise ValueError(
            "X_labeled is empty on every process: label propagation needs at least one "
            "labeled sample"
        )
    counts = [part[0] for part in parts]
    is_first = torch.zeros(len(all_ids), dtype=torch.bool)
    is_first[firsts] = True
    offset = sum(counts[: _rank()])
    mine = is_first[offset : offset + len(features)].to(features.device)
    sums = gather_objects(_masked_sum(features, mine).cpu())
    narrow = all(part[2] in (torch.float32, torch.float16, torch.bfloat16) for part in parts)
    return _ShardLayout(
        counts=counts,
        dim=features.shape[1],
        feature_dtype=torch.float32 if narrow else torch.float64,
        label_dtype=labels.dtype,
        label_shape=tuple(labels.shape[1:]),
        n_labeled=len(firsts),
        center=torch.stack(sums).sum(dim=0) / len(firsts),  # rank order on every process
    )


def _masked_sum(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(d,)`` float64 sum of the rows where ``mask`` ``(n,)`` is true, block by block."""
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    block_rows = max(1, chunks.TILE_ELEMENTS // rows.shape[1])
    for start in range(0, rows.shape[0], block_rows):
        block = rows[start : start + block_rows][mask[start : start + block_rows]]
        total += block.sum(dim=0, dtype=torch.float64)
    return total


def _broadcast_chunk(
    source: int, start: int, size: int, shard: _LocalShard, layout: _ShardLayout, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows ``start:start+size`` (in id order) of process ``source``'s labeled shard, on every
    process (a collective): features ``(size, d)`` (``layout.feature_dtype``), ids
    ``(size,)`` and label rows ``(size, ...)``, on the communication device."""
    comm = _communication_device(device)
    if _rank() == source:
        picked = shard.order[start : start + size]
        features = shard.features.index_select(0, picked.to(shard.features.device))
        features = features.to(comm, layout.feature_dtype)
        ids = shard.ids[picked].to(comm)
        labels = shard.labels.index_select(0, picked.to(shard.labels.device)).to(comm)
    else:
        features = torch.empty(size, layout.dim, dtype=layout.feature_dtype, device=comm)
        ids = torch.empty(size, dtype=torch.int64, device=comm)
        labels = torch.empty(size, *layout.label_shape, dtype=layout.label_dtype, device=comm)
    if world_size() > 1:  # label rows travel as bytes, whatever their dtype (bool included)
        for tensor in (features, ids, labels.reshape(-1).view(torch.uint8)):
            dist.broadcast(tensor, src=source)
    return features, ids, labels


def _keep_nearer(
    nearest: _Nearest,
    chunk: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    search: SearchSettings,
) -> None:
    """Search the unlabeled rows against one chunk of labeled rows; where the chunk's
    nearest row is nearer in float64 (or as near, with a lower id: :func:`nearer`), it
    replaces the kept one."""
    device = search.device
    features, ids, labels = (tensor.to(device) for tensor in chunk)
    found = nearest_neighbors(
        features,
        unlabeled,
        device,
        search.backend,
        search.chunk_size,
        False,
        search.index,
        search.index_settings or {},
        center,
    )
    distances = exact_distances(features, unlabeled, found, device).to(device)
    candidates = ids[found]
    kept = nearer(distances, candidates, nearest.distances, nearest.ids)
    nearest.distances[kept] = distances[kept]
    nearest.ids[kept] = candidates[kept]
    nearest.labels[kept] = _row_bytes(labels)[found[kept]]


def _row_bytes(rows: torch.Tensor) -> torch.Tensor:
    """``(n, row bytes)`` uint8 view of the rows ``(n, ...)`` of a contiguous tensor."""
    return rows.reshape(rows.shape[0], -1).view(torch.uint8)


def search_labeled_shards(
    labeled: torch.Tensor,
    labels: ArrayOrTensor,
    ids: torch.Tensor,
    unlabeled: torch.Tensor,
    search: SearchSettings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Each unlabeled row's nearest labeled sample over every process's labeled shard (a
    collective): every process broadcasts its shard in chunks of ``LABELED_CHUNK_BYTES``, in
    rank order, and each searches its own unlabeled rows against each chunk. ``ids``:
    ``(l_local,)`` int64 CPU ids of this process's labeled rows (from ``labeled_ids``).

    Returns:
        the winners' ids ``(u,)`` int64, label rows ``(u, ...)`` (a tensor), float64
        distances ``(u,)``, all on the computing device, and ``l``, the distinct ids.
    """
    if not isinstance(labels, torch.Tensor):
        labels = tensor_view(np.ascontiguousarray(labels))
    # chunks travel in increasing id order: a tie inside a chunk goes to the lowest id
    shard = _LocalShard(labeled, labels, ids, torch.argsort(ids, stable=True))
    layout = _shard_layout(shard)
    n_unlabeled, device = unlabeled.shape[0], search.device
    nearest = _Nearest(
        distances=torch.full((n_unlabeled,), math.inf, dtype=torch.float64, device=device),
        ids=torch.full((n_unlabeled,), torch.iinfo(torch.int64).max, device=device),
        labels=torch.zeros(
            (n_unlabeled, math.prod(layout.label_shape) * layout.label_dtype.itemsize),
            dtype=torch.uint8,
            device=device,
        ),
    )
    row_bytes = layout.dim * layout.feature_dtype.itemsize
    chunk_rows = max(1, chunks.LABELED_CHUNK_BYTES // row_bytes)
    total = sum(layout.counts)
    show = n_unlabeled * total > chunks.AUTO_PROGRESS_PAIRS
    with tqdm(
        total=total,
        desc=f"propagate_labels ({search.backend}, labeled shards)",
        unit="labeled sample",
        disable=not (show if search.progress is None else search.progress),
    ) as bar:
        for source, count in enumerate(layout.counts):
            for start in range(0, count, chunk_rows):
                size = min(chunk_rows, count - start)
                chunk = _broadcast_chunk(source, start, size, shard, layout, device)
                if n_unlabeled:
                    _keep_nearer(nearest, chunk, unlabeled, layout.center, search)
                bar.update(size)
    labels = nearest.labels.view(layout.label_dtype).reshape(n_unlabeled, *layout.label_shape)
    return nearest.ids, labels, nearest.distances, layout.n_labeled
