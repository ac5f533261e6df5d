"""The streaming meter of :mod:`rmlc.metrics`: :class:`MultiLabelMeter` accumulates
batches (and gathers them across ``torch.distributed`` ranks), then computes every metric.
"""

from __future__ import annotations

import torch

from rmlc.checks import check_choice, check_integer
from rmlc.gather import first_per_index, gather_objects
from rmlc.metrics.functional import (
    _CONVENTIONS,
    _F1_MODES,
    ArrayLike,
    Convention,
    F1Mode,
    Threshold,
    _as_tensor,
    _check_known,
    _check_scores,
    _check_targets,
    _check_threshold,
    _count_positives,
    accuracy,
    mean_average_precision,
    topk_metrics,
)

__all__ = ["MultiLabelMeter"]


class MultiLabelMeter:
    """Accumulates scores and targets over batches, then computes every metric at once.

    Settings are fixed at construction (as torchmetrics' ``Metric``): ``k``, ``threshold``,
    ``f1c`` and ``convention`` as :func:`topk_metrics` takes them. ``update`` keeps CPU
    copies (scores as float32, targets as bool). Under an initialised ``torch.distributed``
    process group with more than one rank, :meth:`gather` (called by :meth:`compute`) is a
    collective: every rank must call it. It collects all ranks' rows
    (:func:`rmlc.gather.gather_objects`). When dataset ``indices`` were given, rows are
    de-duplicated (one per index, the first seen in rank order; ``DistributedSampler`` pads
    by repeating samples) and sorted by index, so the result is that of a single-process
    evaluation.

    Partial labels: ``update(..., known=mask)`` keeps a ``(B, m)`` bool mask of the known
    entries with the batch (a batch without one is all known), and :meth:`compute` passes
    it to the metrics, which leave the unknown entries out.
    """

    def __init__(
        self,
        k: int = 3,
        threshold: Threshold = 0.0,
        f1c: F1Mode = "harmonic",
        convention: Convention = "rmlc",
    ) -> None:
        check_integer(k, "k", 1)
        _check_threshold(threshold)
        check_choice(f1c, _F1_MODES, "f1c")
        check_choice(convention, _CONVENTIONS, "convention")
        self.k, self.threshold, self.f1c, self.convention = k, threshold, f1c, convention
        self._scores: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._indices: list[torch.Tensor] | None = None
        self._known: list[torch.Tensor | None] = []
        self._num_classes: int | None = None

    @property
    def num_samples(self) -> int:
        """Number of rows accumulated on this process (before any gathering)."""
        return sum(batch.shape[0] for batch in self._scores)

    def reset(self) -> None:
        """Forget every accumulated batch."""
        self._scores = []
        self._targets = []
        self._indices = None
        self._known = []
        self._num_classes = None

    def update(
        self,
        scores: ArrayLike,
        targets: ArrayLike,
        indices: ArrayLike | None = None,
        known: ArrayLike | None = None,
    ) -> None:
        """Append a batch.

        Args:
            scores: ``(B, m)`` floating scores (tensor or array), finite.
            targets: ``(B, m)`` with values in {0, 1} or in {-1, +1} (or bool).
            indices: optional ``(B,)`` integer dataset indices of the rows; give them for
                every batch or for none.
            known: optional ``(B, m)`` bool mask of the known entries (None: all known).
        """
        score_batch = _as_tensor(scores, "scores")
        if score_batch.is_floating_point():
            score_batch = score_batch.to(torch.float32)
        score_batch = _check_scores(score_batch, allow_empty=True).to(torch.float32)
        positive = _check_targets(targets, score_batch.shape).clone()
        known_batch = _check_known(known, score_batch.shape)
        if self._num_classes is not None and score_batch.shape[1] != self._num_classes:
            raise ValueError(
                f"scores have {score_batch.shape[1]} classes but earlier batches had "
                f"{self._num_classes}"
            )
        index_batch = None if indices is None else self._check_indices(indices, score_batch)
        if self._scores and (index_batch is None) != (self._indices is None):
            raise ValueError("indices must be given for every batch or for none")
        self._num_classes = score_batch.shape[1]
        self._scores.append(score_batch)
        self._targets.append(positive)
        self._known.append(None if known_batch is None else known_batch.clone())
        if index_batch is not None:
            if self._indices is None:
                self._indices = []
            self._indices.append(index_batch)

    @staticmethod
    def _check_indices(indices: ArrayLike, scores: torch.Tensor) -> torch.Tensor:
        index_batch = _as_tensor(indices, "indices")
        if index_batch.dtype == torch.bool or index_batch.is_floating_point():
            raise TypeError(f"indices must be integers, got {index_batch.dtype}")
        if index_batch.shape != scores.shape[:1]:
            raise ValueError(
                f"indices must have shape ({scores.shape[0]},), got {tuple(index_batch.shape)}"
            )
        return index_batch.to(torch.int64, copy=True)

    def _local(self) -> tuple[torch.Tensor | None, ...]:
        if not self._scores:
            return None, None, None, None
        indices = None if self._indices is None else torch.cat(self._indices)
        return torch.cat(self._scores), torch.cat(self._targets), indices, self._local_known()

    def _local_known(self) -> torch.Tensor | None:
        """This process's ``(N, m)`` known mask, None where every batch came without one."""
        if all(mask is None for mask in self._known):
            return None
        return torch.cat(
            [
                torch.ones_like(targets) if mask is None else mask
                for mask, targets in zip(self._known, self._targets, strict=True)
            ]
        )

    def gather(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """All accumulated rows: ``(scores (N, m) float32, targets (N, m) bool, indices)``.

        Collective under ``torch.distributed`` (world size > 1). ``indices`` is ``None``
        when none were given; otherwise rows are unique per index and sorted by it. The
        rows' known mask, in the same order, is :meth:`gather_known`'s.

        Raises:
            ValueError: nothing accumulated on any rank, ranks disagree on the number of
                classes or on giving indices, or one index carries different targets.
        """
        scores, targets, indices, _ = self._gather_all()
        return scores, targets, indices

    def gather_known(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, ...]:
        """:meth:`gather`'s rows and their ``(N, m)`` bool known mask (None: all known)."""
        return self._gather_all()

    def _gather_all(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, ...]:
        parts = [part for part in gather_objects(self._local()) if part[0] is not None]
        if not parts:
            raise ValueError("MultiLabelMeter is empty: call update() before compute()")
        if len({part[0].shape[1] for part in parts}) > 1:
            raise ValueError("ranks accumulated scores with different numbers of classes")
        if len({part[2] is None for part in parts}) > 1:
            raise ValueError("indices must be given on every rank or on none")
        scores = torch.cat([part[0] for part in parts])
        targets = torch.cat([part[1] for part in parts])
        known = None
        if any(part[3] is not None for part in parts):
            masks = [torch.ones_like(p[1]) if p[3] is None else p[3] for p in parts]
            known = torch.cat(masks)
        if parts[0][2] is None:
            return scores, targets, None, known
        indices = torch.cat([part[2] for part in parts])
        kept = first_per_index(indices)
        row_of_index = torch.searchsorted(indices[kept], indices)  # every row's kept row
        if not bool((targets == targets[kept][row_of_index]).all()):
            raise ValueError("rows with the same index have different targets")
        if known is not None and not bool((known == known[kept][row_of_index]).all()):
            raise ValueError("rows with the same index have different known masks")
        return scores[kept], targets[kept], indices[kept], None if known is None else known[kept]

    def compute(self) -> dict[str, float]:
        """Every metric over the accumulated (and gathered) rows, in percent.

        Returns:
            :func:`topk_metrics`' keys plus ``"mAP"`` (uninterpolated), and
            ``"accuracy"`` when every target row has exactly one positive and every
            entry is known; with known masks, over the known entries only.
        """
        scores, targets, _, known = self._gather_all()
        settings = (self.k, self.threshold, self.f1c, self.convention)
        result = topk_metrics(scores, targets, *settings, known=known)
        result["mAP"] = mean_average_precision(scores, targets, known=known)
        if known is not None and bool(known.all()):
            known = None
        if known is None and bool((_count_positives(targets, dim=1) == 1).all()):
            result["accuracy"] = accuracy(scores, targets)
        return result
