"""The order of training samples: one seeded permutation per epoch, sharded over processes.

Every epoch's order is a function of ``(seed, epoch)`` alone, so a run resumed at any step
replays exactly the batches an uninterrupted run would see. Under ``torch.distributed``,
rank ``r`` of ``w`` takes positions ``r, r + w, r + 2w, ...``: the ``k``-th global batch
of ``w * b`` samples is then the union of the ranks' ``k``-th local batches of ``b``, the
same samples a single process would use with batch ``w * b``.

Samples read from shards (:class:`~rmlc.train.data.ShardStore`) by more than one process are
ordered so that each process reads its own shards: the epoch's samples are grouped by shard
in a random order of the shards and cut into ``w`` runs, one per process (neighbouring
processes share at most the shard at their boundary). The property above then holds
for a given ``w`` only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochOrder", "FixedOrder", "ShardedSampler", "by_shard"]


class EpochOrder:
    """Which samples an epoch visits, and in which order.

    Args:
        labeled: indices of labeled samples (always visited once per epoch).
        unlabeled: indices of unlabeled samples in use this phase.
        unlabeled_ratio: ``None`` mixes them at their natural ratio (each visited once);
            a fraction ``r`` in ``(0, 1)`` draws ``n_l r / (1 - r)`` unlabeled samples per
            epoch (with replacement when more than there are) so batches hold a fraction
            ``r`` of unlabeled samples on average.
        seed: base seed.
        shards: ``(n,)`` the shard each dataset index is read from, or None.
        readers: the processes that share the epoch (rank ``r`` takes positions ``r``,
            ``r + readers``, ...). With ``shards`` and more than one reader, each reader's
            positions come from its own run of shards (:func:`by_shard`).
    """

    def __init__(
        self,
        labeled: torch.Tensor,
        unlabeled: torch.Tensor | None = None,
        unlabeled_ratio: float | None = None,
        seed: int = 0,
        shards: torch.Tensor | None = None,
        readers: int = 1,
    ) -> None:
        if unlabeled_ratio is not None and not 0.0 < unlabeled_ratio < 1.0:
            raise ValueError(f"unlabeled_ratio must lie in (0, 1), got {unlabeled_ratio}")
        self.labeled = labeled
        self.unlabeled = unlabeled if unlabeled is not None else labeled[:0]
        self.unlabeled_ratio = unlabeled_ratio
        self.seed = seed
        self.shards, self.readers = shards, readers

    def __len__(self) -> int:
        return len(self.labeled) + self._unlabeled_count()

    def _unlabeled_count(self) -> int:
        if len(self.unlabeled) == 0:
            return 0
        if self.unlabeled_ratio is None:
            return len(self.unlabeled)
        ratio = self.unlabeled_ratio
        return round(len(self.labeled) * ratio / (1.0 - ratio))

    def indices(self, epoch: int) -> torch.Tensor:
        """The epoch's global order of dataset indices."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        count = self._unlabeled_count()
        if count == len(self.unlabeled):
            unlabeled = self.unlabeled
        elif count < len(self.unlabeled):
            unlabeled = self.unlabeled[torch.randperm(len(self.unlabeled), generator=generator)][
                :count
            ]
        else:
            picks = torch.randint(len(self.unlabeled), (count,), generator=generator)
            unlabeled = self.unlabeled[picks]
        union = torch.cat([self.labeled, unlabeled])
        order = union[torch.randperm(len(union), generator=generator)]
        if self.shards is None or self.readers == 1 or len(order) < self.readers:
            return order
        return by_shard(order, self.shards, self.readers, generator)


def by_shard(
    order: torch.Tensor, shards: torch.Tensor, readers: int, generator: torch.Generator
) -> torch.Tensor:
    """``order`` rearranged so that each reader's positions come from its own shards.

    The samples are grouped by shard, the shards in a random order, and cut into
    ``readers`` runs of (nearly) equal length; run ``r`` is shuffled and becomes positions
    ``r, r + readers, ...``. Neighbouring runs share at most the shard at their boundary. A
    shorter run is padded with its own first sample, so every reader takes the same number.

    Args:
        order: ``(n,)`` dataset indices, ``n >= readers``.
        shards: ``(size,)`` the shard of each dataset index.
        readers: processes sharing the epoch.
        generator: the epoch's random source.

    Returns:
        ``(readers * ceil(n / readers),)`` dataset indices.
    """
    places = torch.randperm(int(shards.max()) + 1, generator=generator)  # shard -> its place
    grouped = order[torch.argsort(places[shards[order]], stable=True)]
    length = -(-len(order) // readers)
    bounds = [round(reader * len(order) / readers) for reader in range(readers + 1)]
    runs = []
    for start, stop in itertools.pairwise(bounds):
        run = grouped[start:stop][torch.randperm(stop - start, generator=generator)]
        runs.append(torch.cat([run, run[: length - len(run)]]))
    return torch.stack(runs, dim=1).reshape(-1)


class FixedOrder:
    """Every sample once, in index order (for evaluation and feature extraction)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def indices(self, epoch: int) -> torch.Tensor:
        del epoch
        return torch.arange(self.size)


class ShardedSampler(Sampler[int]):
    """This process's share of each epoch's order, from a given step of the epoch on.

    Args:
        order: the epoch order.
        rank, world_size: of this process.
        batch_size: local batch size (to skip the batches already done on resume).
    """

    def __init__(
        self, order: EpochOrder | FixedOrder, rank: int, world_size: int, batch_size: int
    ) -> None:
        self.order, self.rank, self.world_size = order, rank, world_size
        self.batch_size = batch_size
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def _share(self) -> torch.Tensor:
        order = self.order.indices(self.epoch)
        padding = (-len(order)) % self.world_size  # as DistributedSampler: repeat the start
        if padding and len(order):
            repeats = -(-padding // len(order))  # an order shorter than the padding
            order = torch.cat([order, order.repeat(repeats)[:padding]])
        return order[self.rank :: self.world_size]

    def steps_per_epoch(self) -> int:
        share = -(-len(self.order) // self.world_size)
        return -(-share // self.batch_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self._share()[self.start_step * self.batch_size :].tolist())

    def __len__(self) -> int:
        share = -(-len(self.order) // self.world_size)
        return max(share - self.start_step * self.batch_size, 0)
