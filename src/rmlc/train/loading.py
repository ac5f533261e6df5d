"""How a run's images reach the network: the epoch's sampler of each process (sharded,
shard-aware for WebDataset shards), the data loaders and their decoding workers."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from rmlc.train.config import TrainConfig
from rmlc.train.data import FileStore, ShardStore, TrainingData
from rmlc.train.distributed import DistributedContext
from rmlc.train.sampling import EpochOrder, FixedOrder, ShardedSampler

__all__ = [
    "batch_loader",
    "decoding_workers",
    "epoch_sampler",
    "evaluation_loader",
    "shard_of_positions",
]


def local_batch_size(config: TrainConfig, context: DistributedContext) -> int:
    """Images per step and process: ``batch_size`` shared by the processes (at least 1)."""
    return max(config.batch_size // context.world_size, 1)


def shard_of_positions(data: TrainingData) -> torch.Tensor | None:
    """``(n,)`` the shard each training position is read from, or None for images not in
    shards."""
    store = data.train.store
    if not isinstance(store, ShardStore):
        return None
    return torch.as_tensor(store.shards.members[:, 0])[data.train.rows]


def epoch_sampler(
    data: TrainingData, config: TrainConfig, context: DistributedContext, with_unlabeled: bool
) -> ShardedSampler:
    """This process's share of an epoch's training positions (labeled, and the unlabeled
    when ``with_unlabeled``), in the order of ``config.seed`` (set the epoch on it)."""
    order = EpochOrder(
        data.labeled,
        data.unlabeled if with_unlabeled else None,
        config.unlabeled_ratio,
        seed=config.seed,
        shards=shard_of_positions(data),
        readers=context.world_size,
    )
    batch = local_batch_size(config, context)
    return ShardedSampler(order, context.rank, context.world_size, batch)


def decoding_workers(num_workers: int | None, dataset: Dataset) -> int:
    """``num_workers``, or by default: none for images in memory, and for image files or
    shards one worker per core this process may use beside its own (at most 8)."""
    if num_workers is not None:
        return num_workers
    view = getattr(dataset, "dataset", dataset)  # a Subset's view
    if not isinstance(getattr(view, "store", None), FileStore | ShardStore):
        return 0
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(8, (os.cpu_count() or 1) // processes_here - 1))


def batch_loader(
    dataset: Dataset,
    config: TrainConfig,
    context: DistributedContext,
    sampler: Any = None,
    batch_size: int | None = None,
) -> DataLoader:
    """Batches of ``(uint8 images (B, C, H, W), indices (B,))`` of ``dataset`` in
    ``sampler``'s order (by default of this process's batch size)."""
    return DataLoader(
        dataset,
        batch_size=batch_size or local_batch_size(config, context),
        sampler=sampler,
        num_workers=decoding_workers(config.num_workers, dataset),
        pin_memory=context.device.type == "cuda",
        drop_last=False,
    )


def evaluation_loader(
    view: Dataset, config: TrainConfig, context: DistributedContext
) -> DataLoader:
    """This process's share of a view, in order, in batches twice the training ones."""
    batch = 2 * local_batch_size(config, context)
    sampler = ShardedSampler(FixedOrder(len(view)), context.rank, context.world_size, batch)
    return batch_loader(view, config, context, sampler=sampler, batch_size=batch)
