"""The order of training samples: one seeded permutation per epoch, sharded over processes.

Every epoch's order is a function of ``(seed, epoch)`` alone, so a run resumed at any step
replays exactly the batches an uninterrupted run would see. Under ``torch.distributed``,
rank ``r`` of ``w`` takes positions ``r, r + w, r + 2w, ...``: the ``k``-th global batch
of ``w * b`` samples is then the union of the ranks' ``k``-th local batches of ``b``, the
same samples a single process would use with batch ``w * b``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochOrder", "FixedOrder", "ShardedSampler"]


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
    """

    def __init__(
        self,
        labeled: torch.Tensor,
        unlabeled: torch.Tensor | None = None,
        unlabeled_ratio: float | None = None,
        seed: int = 0,
    ) -> None:
        if unlabeled_ratio is not None and not 0.0 < unlabeled_ratio < 1.0:
            raise ValueError(f"unlabeled_ratio must lie in (0, 1), got {unlabeled_ratio}")
        self.labeled = labeled
        self.unlabeled = unlabeled if unlabeled is not None else labeled[:0]
        self.unlabeled_ratio = unlabeled_ratio
        self.seed = seed

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
        return union[torch.randperm(len(union), generator=generator)]


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
