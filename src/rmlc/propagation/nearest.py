"""Keeping the nearest labeled row: the one tie rule, the centring every search ranks on, and
the float64 distance to the row kept.

**The tie rule.** Wherever rmlc compares two candidates for an unlabeled row's nearest
labeled row, the one kept is the first in the order (smaller distance, then smaller labeled
index): :func:`nearer` decides it. The distance compared is the search's own: the float32
ranking value ``||y||^2 - 2 x.y`` inside a search (labeled blocks of the torch backend), the
float64 distance between chunks of a sharded labeled set (:mod:`rmlc.propagation.sharded`);
the labeled index is the row's position, or its id in a sharded labeled set. Inside one
tile the torch backend takes ``torch.min``'s first minimal index, which is the same rule;
inside a FAISS search the choice among rows FAISS finds equally near is FAISS's.
"""

from __future__ import annotations

import numpy as np
import torch

from rmlc.propagation import chunks

__all__ = ["center_into", "exact_distances", "mean_row", "nearer"]


def nearer(
    value: torch.Tensor, index: torch.Tensor, best_value: torch.Tensor, best_index: torch.Tensor
) -> torch.Tensor:
    """``(n,)`` bool: where the candidate ``(value, index)`` comes before the one kept,
    ``(best_value, best_index)``, in the order (smaller distance, then smaller index).

    All four are ``(n,)`` tensors on one device (distances of any float dtype, indexes
    int64); equal candidates are not nearer, so the one kept stays.
    """
    return (value < best_value) | ((value == best_value) & (index < best_index))


def mean_row(rows: torch.Tensor, block_rows: int) -> torch.Tensor:
    """``(d,)`` float64 mean of ``rows`` ``(n, d)``, summed block by block."""
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[0], block_rows):
        total += rows[start : start + block_rows].sum(dim=0, dtype=torch.float64)
    return total / rows.shape[0]


def center_into(rows: torch.Tensor, center: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``rows - center`` into the float32 buffer ``out`` ``(n, d)`` (a view of it is
    returned): no temporary beyond the buffer. ``center`` is a float32 ``(d,)`` on its device;
    a float32 difference of two floats is correctly rounded, so centring costs no accuracy."""
    view = out[: len(rows)]
    view.copy_(rows)
    return view.sub_(center)


def exact_distances(
    labeled: torch.Tensor, unlabeled: torch.Tensor, neighbors: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """``(u,)`` float64 distance from each unlabeled row to its neighbour, from the vectors.

    Works in batches of ``RECHECK_ELEMENTS / d`` rows through a reused float64 buffer. On the
    CPU it runs in NumPy: single-threaded, these memory-bound passes lose nothing, and they
    do not stall on a busy machine the way many short parallel regions do.
    """
    n_unlabeled, dim = unlabeled.shape
    rows_per_batch = max(1, min(n_unlabeled, chunks.RECHECK_ELEMENTS // dim))
    if device.type == "cpu" and _numpy_compatible(labeled) and _numpy_compatible(unlabeled):
        labeled_array, unlabeled_array = labeled.numpy(), unlabeled.numpy()
        neighbor_array = neighbors.numpy()
        distances = np.empty(n_unlabeled, dtype=np.float64)
        buffer = np.empty((rows_per_batch, dim), dtype=np.float64)
        for start in range(0, n_unlabeled, rows_per_batch):
            stop = min(start + rows_per_batch, n_unlabeled)
            difference = buffer[: stop - start]
            chosen = labeled_array[neighbor_array[start:stop]]
            np.subtract(unlabeled_array[start:stop], chosen, out=difference, dtype=np.float64)
            distances[start:stop] = np.einsum("ij,ij->i", difference, difference)
        return torch.from_numpy(np.sqrt(distances, out=distances))
    distances = torch.empty(n_unlabeled, dtype=torch.float64, device=device)
    rows64 = torch.empty(rows_per_batch, dim, dtype=torch.float64, device=device)
    chosen64 = torch.empty_like(rows64)
    for start in range(0, n_unlabeled, rows_per_batch):
        stop = min(start + rows_per_batch, n_unlabeled)
        rows, chosen = rows64[: stop - start], chosen64[: stop - start]
        rows.copy_(unlabeled[start:stop])
        chosen.copy_(labeled.index_select(0, neighbors[start:stop].to(labeled.device)))
        distances[start:stop] = torch.linalg.vector_norm(rows.sub_(chosen), dim=1)
    return distances


def _numpy_compatible(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu" and tensor.dtype != torch.bfloat16
