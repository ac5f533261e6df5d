"""The semi-supervised label refresh: the current network's features of the labeled and
unlabeled images, then each unlabeled image takes the labels of its nearest labeled
neighbour with heat-kernel weight ``s_i`` (:func:`rmlc.propagation.propagate_labels`).
:func:`refresh_epoch` runs a trainer's refresh: with ``fill_unknown``, the labeled images'
unknown tags are filled first (:mod:`rmlc.train.fill`), and propagation copies the filled
rows.

Each process searches only its own shard of the unlabeled samples
(``propagate_labels(..., shard_indices=...)``); the propagated labels and weights are then
shared, so every process holds them all. With the exact search, each process also
extracts only its own shard of the labeled samples' features (``labeled_shard_indices``):
the shards are broadcast chunk by chunk, and memory per process is ``O((l + u) d / R)``
plus a chunk (about 64 MiB). An approximate index (``propagation_index`` ``"ivf"`` or
``"hnsw"``) needs the whole labeled set, so every process then gathers the labeled
features: ``O(l d + (u / R) d)``. Either way the result is the single-process one (save
float32 near-ties, see :func:`propagate_labels`); one process runs exactly as it did
before sharding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import torch
from torch.utils.data import Dataset, Subset

from rmlc.gather import gather_rows
from rmlc.propagation import index_settings, propagate_labels, search_index
from rmlc.train.config import TrainConfig
from rmlc.train.data import TrainingData
from rmlc.train.distributed import DistributedContext
from rmlc.train.fill import describe_fill, fill_labeled
from rmlc.train.targets import SparseTargets

__all__ = ["RefreshState", "check_propagation_settings", "refresh_epoch", "refresh_labels"]

# (view, gather) -> (features (n, d), dataset indices (n,)): gathered, or this shard's.
Features = Callable[[Dataset, bool], tuple[torch.Tensor, torch.Tensor]]


class RefreshState(Protocol):
    """What a refresh reads and updates: a trainer's state."""

    config: TrainConfig
    context: DistributedContext
    data: TrainingData
    targets: SparseTargets  # (N, m) of every training sample
    sample_weights: torch.Tensor  # (N,)
    model: torch.nn.Module  # its ``feature_dim``: d

    def extract_features(
        self, view: Dataset, gather: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def uses_unlabeled(self, epoch: int) -> bool: ...


def refresh_epoch(state: RefreshState, epoch: int) -> list[str]:
    """A refresh at the start of ``epoch``: the labeled samples' unknown tags filled
    (``fill_unknown``, :mod:`rmlc.train.fill`, from the tags as given), then labels
    propagated to the unlabeled samples when they are trained on (:func:`refresh_labels`,
    copying the filled rows). Returns the lines for the run's log."""
    started, config, data = time.perf_counter(), state.config, state.data
    labeled_features, lines = None, []
    if config.fill_unknown:  # every process fills alike, from every labeled image
        labeled_features = state.extract_features(Subset(data.train, data.labeled.tolist()))
        given = data.targets.take(data.labeled)
        fill, filled = fill_labeled(state.targets, data.labeled, labeled_features, given, config)
        described = describe_fill(fill, given, filled, config.fill_unknown_confidence)
        lines.append(f"epoch {epoch + 1}: {described}")
    if state.uses_unlabeled(epoch):
        t = refresh_labels(
            state.extract_features,
            state.model.feature_dim,
            data.train,
            data.labeled,
            data.unlabeled,
            config,
            state.context.enabled,
            state.targets,
            state.sample_weights,
            labeled_features=labeled_features,
        )
        lines.append(
            f"epoch {epoch + 1}: propagated labels to {len(data.unlabeled)} unlabeled images "
            f"(t={t:.4g}, mean weight {state.sample_weights[data.unlabeled].mean():.3f}) in "
            f"{time.perf_counter() - started:.1f}s"
        )
    return lines


def check_propagation_settings(config: TrainConfig, n_labeled: int) -> None:
    """Raise a ``ValueError`` if the propagation index's settings do not fit the number
    of labeled images (checked when training starts, not at the first refresh)."""
    try:
        index_settings(config.propagation_index, config.propagation_index_params, n_labeled)
    except ValueError as error:
        raise ValueError(
            f"propagation_index_params for {n_labeled} labeled images: {error}"
        ) from error


def refresh_labels(
    features_of: Features,
    feature_dim: int,
    train: Dataset,
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    config: TrainConfig,
    distributed: bool,
    targets: SparseTargets,
    sample_weights: torch.Tensor,
    labeled_features: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float:
    """Propagate labels to the unlabeled training samples, in place.

    The "labels" propagated are the labeled samples' own rows: each unlabeled sample
    learns which row of ``targets`` to copy, and the targets stay sparse (no dense
    ``(l, m)`` block). Collective with several processes.

    Args:
        features_of: the network's features of a view (see :data:`Features`).
        feature_dim: ``d``, the features' length.
        train: the training images; ``labeled`` ``(l,)`` and ``unlabeled`` ``(u,)`` are
            positions in it.
        config: ``t`` and the propagation index with its settings.
        distributed: whether several processes train (the labeled shards then stay apart
            where the index allows it).
        targets: ``(N, m)`` every training sample's targets; the unlabeled rows are set.
        sample_weights: ``(N,)`` their weights; the unlabeled ones are set to ``s_i``.
        labeled_features: the labeled samples' features already gathered, ``(l, d)`` with
            their indices ``(l,)`` (as ``features_of(labeled view, True)`` gives them), or
            None to extract them here.

    Returns:
        the heat kernel's ``t`` used.
    """
    labeled_view, unlabeled_view = (
        Subset(train, labeled.tolist()),
        Subset(train, unlabeled.tolist()),
    )
    shard_labeled = (
        distributed
        and labeled_features is None
        and search_index(config.propagation_index).supports_sharded_labeled
    )
    if labeled_features is None:
        labeled_features = features_of(labeled_view, not shard_labeled)
    labeled_features, labeled_rows = labeled_features
    features, rows = features_of(unlabeled_view, False)
    if labeled_features.numel() == 0:  # this process's labeled shard is empty
        labeled_features = labeled_features.new_empty(0, feature_dim)
    if features.numel() == 0:  # this process's unlabeled shard is empty
        features = labeled_features.new_empty(0, feature_dim)
    sharded = {"labeled_shard_indices": labeled_rows} if shard_labeled else {}
    result = propagate_labels(
        labeled_features,
        labeled_rows,
        features,
        t=config.t,
        progress=False,
        shard_indices=rows,
        index=config.propagation_index,
        index_params=config.propagation_index_params,
        **sharded,
    )
    shared = torch.stack([result.labels.double(), result.weights.double()], dim=1)
    shared, rows = gather_rows(shared, rows)
    targets.copy_rows(rows, shared[:, 0].long())
    sample_weights[rows] = shared[:, 1].float()
    return result.t
