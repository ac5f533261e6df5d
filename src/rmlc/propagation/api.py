"""The entry point, :func:`propagate_labels`, and its result, :class:`Propagation`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from rmlc.propagation.checks import (
    ArrayOrTensor,
    check_sharded_labeled,
    checked_arguments,
    checked_everywhere,
    computing_device,
    labeled_ids,
    shard_rows,
    tensor_view,
)
from rmlc.propagation.heat_kernel import Temperature, heat_kernel_weights, temperature
from rmlc.propagation.nearest import exact_distances
from rmlc.propagation.search import nearest_neighbors, resolve_backend
from rmlc.propagation.sharded import SearchSettings, all_distances, search_labeled_shards

__all__ = ["Backend", "Index", "Propagation", "propagate_labels"]

Backend = Literal["auto", "faiss", "torch"]
# A name of rmlc.propagation.search.index_names(): "exact", "ivf", "hnsw" (or a registered index).
Index = str


@dataclass(frozen=True, eq=False)
class Propagation:
    """Labels and confidences propagated to the unlabeled samples (``u`` of them).

    Arrays are NumPy arrays, or torch tensors on ``X_unlabeled``'s device when it was a tensor.

    Attributes:
        labels: ``(u, m)`` rows of ``Y_labeled`` (same dtype and encoding), or ``(u,)`` class
            labels when ``Y_labeled`` was 1-D.
        weights: ``(u,)`` float32 heat-kernel confidences ``exp(-distance / t)`` in ``(0, 1]``
            (floored at the smallest normal float32, so that no weight is exactly 0; all 1
            when ``t`` is 0, i.e. every distance is 0).
        neighbors: ``(u,)`` int64 index of each sample's nearest labeled sample (its id
            from ``labeled_shard_indices`` when the labeled samples are sharded).
        distances: ``(u,)`` float64 Euclidean distance to that neighbour.
        t: the heat-kernel temperature used (NaN for an empty unlabeled set with ``"mean"`` or
            ``"authors"``).
    """

    labels: ArrayOrTensor
    weights: ArrayOrTensor
    neighbors: ArrayOrTensor
    distances: ArrayOrTensor
    t: float


def propagate_labels(
    X_labeled: ArrayOrTensor,
    Y_labeled: ArrayOrTensor,
    X_unlabeled: ArrayOrTensor,
    t: Temperature = "mean",
    backend: Backend = "auto",
    chunk_size: int | None = None,
    progress: bool | None = None,
    shard_indices: ArrayOrTensor | None = None,
    index: Index = "exact",
    index_params: Mapping[str, int] | None = None,
    labeled_shard_indices: ArrayOrTensor | None = None,
) -> Propagation:
    """Give each unlabeled sample its nearest labeled sample's labels and a heat-kernel weight.

    Sharded across processes (``torch.distributed``, e.g. under ``torchrun``): each process
    passes only its own shard of the unlabeled samples, with ``shard_indices``, the shard's
    row numbers in the whole unlabeled set (repeats across processes, a sampler's padding,
    are allowed); the temperature is taken over the distances of all shards (a collective:
    every process must call).

    * Without ``labeled_shard_indices``, each process passes every labeled sample and
      searches its unlabeled shard alone, so every row comes out exactly as
      :func:`propagate_labels` on the whole set gives it. Memory per process is
      ``O(l d + (u / R) d)``, plus ``O(u)`` for the distances. With ``index="ivf"`` every
      process builds the same index from the same labeled features (seeded k-means), so
      this still holds; with ``"hnsw"`` each process builds its own graph, whose
      multi-threaded construction is not deterministic, so a row's neighbour may differ
      from the single-process run's where the graph misses the exact one.
    * With ``labeled_shard_indices`` (exact search only), each process passes only its own
      shard of the labeled samples too (it may be empty), with their ids in the whole
      labeled set (unique integers; repeats across processes allowed). The processes agree
      on the centre (the float64 mean of the distinct labeled rows, summed per process: it
      may differ from one process's mean in the last bits); then each process in turn
      broadcasts its shard in chunks of about 64 MiB of feature rows, in increasing id
      order, and every process searches its unlabeled shard against each chunk and keeps,
      per row, the nearest labeled sample by float64 distance (exact ties: the lowest id;
      with ``backend="faiss"``, a tie inside one chunk goes where faiss puts it). Memory
      per process is ``O((l + u) d / R)`` plus one chunk (and the search's own buffers for
      it), ``O(l)`` for the gathered ids and ``O(u)`` for the distances. ``neighbors`` are
      then ids from ``labeled_shard_indices``, not positions; ``l`` (for ``"authors"``) is
      the number of distinct ids. On data without float32 near-ties, every row is the one
      a single process computes on the whole sets ordered by id; where two labeled samples
      are closer to a row than float32 rounding tells apart, the float64 comparison across
      chunks may pick the other one.

    Args:
        X_labeled: ``(l, d)`` features of the labeled samples, ``l >= 1``.
        Y_labeled: ``(l, m)`` labels in {0, 1} or in {-1, +1} (or bool), or ``(l,)`` class
            labels; array or tensor.
        X_unlabeled: ``(u, d)`` features of the unlabeled samples (``u`` may be 0).
        t: heat-kernel temperature: ``"mean"``, ``"authors"`` or a positive finite number
            (see :mod:`rmlc.propagation`).
        backend: ``"auto"``, ``"faiss"`` or ``"torch"``.
        chunk_size: unlabeled rows per chunk (per search call); None picks the default of
            :func:`chunk_layout` (a ~64 MiB float32 tile for torch, ~64 MiB of rows for faiss).
        progress: show a tqdm bar over the chunks; None shows one when ``u * l > 1e9``.
        shard_indices: ``(u,)`` integer rows of ``X_unlabeled`` in the whole unlabeled set,
            when the unlabeled samples are sharded across processes (see above).
        index: ``"exact"`` (default), or an approximate FAISS index, ``"ivf"`` or ``"hnsw"``
            (see :mod:`rmlc.propagation`; any index in :mod:`rmlc.propagation.search`'s
            registry); an approximate one needs faiss and ``backend`` ``"auto"`` or
            ``"faiss"``.
        index_params: the approximate index's settings, by name (see :func:`index_settings`);
            None for the defaults.
        labeled_shard_indices: ``(l_local,)`` integer ids of this process's labeled samples
            in the whole labeled set, when the labeled samples are sharded too (see above);
            needs ``shard_indices`` and an index that supports it (``"exact"``:
            ``Search.supports_sharded_labeled``).

    Returns:
        a :class:`Propagation`, in NumPy or torch as ``X_unlabeled``.

    Raises:
        ValueError: an empty labeled set, features of different dimensions, NaN or inf in a
            feature matrix, ``Y_labeled`` of the wrong length or encoding, or a bad ``t``,
            ``backend``, ``chunk_size``, ``index`` or ``index_params``, an approximate
            index with ``backend="torch"``, or ``labeled_shard_indices`` without
            ``shard_indices``, with an approximate index, of the wrong length or not
            integers; sharded labeled sets empty on every process or disagreeing between
            processes (feature count, label dtype or row shape).
        TypeError: non-numeric features, or non-numeric 1-D labels for a torch result or a
            sharded labeled set.
        ImportError: ``backend="faiss"`` or an approximate index without faiss installed.
    """
    sharded = labeled_shard_indices is not None

    def checks() -> tuple[tuple[torch.Tensor, torch.Tensor, ArrayOrTensor, dict], str, Any, Any]:
        """The checked arguments, the resolved backend, and the shards' unlabeled rows and
        labeled ids as int64 tensors (None where not sharded)."""
        if sharded:
            check_sharded_labeled(shard_indices, index)
        checked = checked_arguments(
            X_labeled, Y_labeled, X_unlabeled, t, backend, chunk_size, index, index_params, sharded
        )
        rows = None if shard_indices is None else shard_rows(shard_indices, checked[1].shape[0])
        ids = labeled_ids(labeled_shard_indices, checked[0].shape[0]) if sharded else None
        return checked, resolve_backend(backend, computing_device(*checked[:2]), index), rows, ids

    # sharded: every process learns of any one's bad input before the first collective
    checked, backend, rows, ids = checks() if shard_indices is None else checked_everywhere(checks)
    labeled, unlabeled, labels_source, settings = checked
    device = computing_device(labeled, unlabeled)
    out_device = X_unlabeled.device if isinstance(X_unlabeled, torch.Tensor) else None
    if sharded:
        search = SearchSettings(device, backend, chunk_size, progress, index, settings)
        neighbors, labels, distances, n_labeled = search_labeled_shards(
            labeled, labels_source, ids, unlabeled, search
        )
    else:
        neighbors = nearest_neighbors(
            labeled, unlabeled, device, backend, chunk_size, progress, index, settings
        )
        distances = exact_distances(labeled, unlabeled, neighbors, device)
        labels, n_labeled = _take_labels(labels_source, neighbors, out_device), labeled.shape[0]
    everywhere = distances if rows is None else all_distances(distances, rows)
    t_used = temperature(everywhere, t, n_labeled)
    weights = heat_kernel_weights(distances, t_used)
    return _propagation(labels, weights, neighbors, distances, t_used, out_device)


# ---------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------


def _take_labels(
    labels: ArrayOrTensor, neighbors: torch.Tensor, out_device: torch.device | None
) -> ArrayOrTensor:
    """Rows ``neighbors`` of the labels, as a tensor on ``out_device`` or (None) an array."""
    if isinstance(labels, torch.Tensor):
        taken = labels.index_select(0, neighbors.to(labels.device))
        return taken.cpu().numpy() if out_device is None else taken.to(out_device)
    taken = labels[neighbors.cpu().numpy()]
    return taken if out_device is None else tensor_view(np.ascontiguousarray(taken)).to(out_device)


def _propagation(
    labels: ArrayOrTensor,
    weights: torch.Tensor,
    neighbors: torch.Tensor,
    distances: torch.Tensor,
    t_used: float,
    out_device: torch.device | None,
) -> Propagation:
    """The result, as tensors on ``out_device``, or (None) as arrays; ``labels`` are the
    ``u`` chosen label rows (converted when they are a tensor)."""

    def output(value: torch.Tensor) -> ArrayOrTensor:
        return value.cpu().numpy() if out_device is None else value.to(out_device)

    return Propagation(
        labels=output(labels) if isinstance(labels, torch.Tensor) else labels,
        weights=output(weights),
        neighbors=output(neighbors),
        distances=output(distances),
        t=t_used,
    )
