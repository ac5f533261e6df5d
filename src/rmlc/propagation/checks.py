"""The checks of :func:`rmlc.propagation.propagate_labels`'s input, and its conversion to
tensors (no copy where NumPy and torch can share memory)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from rmlc.checks import ParameterError, check_choice, check_integer
from rmlc.gather import gather_objects
from rmlc.labels import positive_mask_numpy
from rmlc.propagation import chunks
from rmlc.propagation.heat_kernel import check_temperature
from rmlc.propagation.search import check_backend_runs_index, index_settings, search_index

ArrayOrTensor = np.ndarray | torch.Tensor
_Checked = TypeVar("_Checked")

BACKENDS = ("auto", "faiss", "torch")


def checked_arguments(
    X_labeled: ArrayOrTensor,
    Y_labeled: ArrayOrTensor,
    X_unlabeled: ArrayOrTensor,
    t: Any,
    backend: str,
    chunk_size: int | None,
    index: str,
    index_params: Mapping[str, int] | None,
    labeled_sharded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, ArrayOrTensor, dict[str, int]]:
    """:func:`propagate_labels`'s arguments checked: the labeled and unlabeled features as
    tensors, the labels to take rows from, and the index's settings. A labeled shard
    (``labeled_sharded``) may be empty, and its labels must be numeric (they travel as
    tensors)."""
    labeled = as_feature_tensor(X_labeled, "X_labeled")
    unlabeled = as_feature_tensor(X_unlabeled, "X_unlabeled")
    n_labeled, dim = labeled.shape
    if n_labeled == 0 and not labeled_sharded:
        raise ValueError(
            f"X_labeled is empty (shape {tuple(labeled.shape)}): label propagation needs at "
            "least one labeled sample"
        )
    if unlabeled.shape[1] != dim:
        raise ValueError(
            "X_labeled and X_unlabeled must have the same number of features; got X_labeled "
            f"of shape {tuple(labeled.shape)} and X_unlabeled of shape {tuple(unlabeled.shape)}"
        )
    if dim == 0:
        raise ValueError("X_labeled and X_unlabeled have no features (d = 0)")
    output_is_tensor = isinstance(X_unlabeled, torch.Tensor)
    labels_source = checked_labels(Y_labeled, n_labeled, output_is_tensor)
    if labeled_sharded and label_kind(labels_source) not in "biuf":
        raise TypeError(
            "Y_labeled must be numeric (or bool) when the labeled samples are sharded "
            f"(labeled_shard_indices): label rows travel between processes as tensors; got "
            f"dtype {labels_source.dtype}"
        )
    check_temperature(t)
    check_choice(backend, BACKENDS, "backend")
    check_integer(chunk_size, "chunk_size", 1, allow_none=True)
    settings = index_settings(index, index_params, n_labeled)
    check_backend_runs_index(index, backend)
    check_finite(labeled, "X_labeled")
    check_finite(unlabeled, "X_unlabeled")
    return labeled, unlabeled, labels_source, settings


def as_feature_tensor(features: Any, name: str) -> torch.Tensor:
    """A 2-D real tensor viewing ``features`` (no copy for arrays NumPy and torch share)."""
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
    else:
        array = np.asarray(features)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        tensor = tensor_view(array)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D feature matrix (samples, features); got shape "
            f"{tuple(tensor.shape)}"
        )
    return tensor


def tensor_view(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without a copy, also for read-only arrays (never written to)."""
    if array.dtype.byteorder not in "=|" or any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def checked_labels(labels: Any, n_labeled: int, output_is_tensor: bool) -> ArrayOrTensor:
    """``Y_labeled`` as an array or tensor of ``l`` rows, its encoding checked when 2-D."""
    labels = labels.detach() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    shape = tuple(labels.shape)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"Y_labeled must be a label matrix (l, m) or class labels (l,); got shape {shape}"
        )
    if shape[0] != n_labeled:
        raise ValueError(
            f"Y_labeled has {shape[0]} rows but X_labeled has {n_labeled}: one row of labels "
            "per labeled sample"
        )
    as_array = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    if len(shape) == 2:
        positive_mask_numpy(as_array, name="Y_labeled")
    elif output_is_tensor and as_array.dtype.kind not in "biuf":
        raise TypeError(
            f"Y_labeled must be numeric to be returned as a tensor; got dtype {as_array.dtype}"
        )
    return labels


def check_finite(features: torch.Tensor, name: str) -> None:
    """Raise when ``features`` holds NaN or inf, checked in blocks of rows (bounded memory)."""
    if not features.is_floating_point():
        return
    rows_per_block = max(1, chunks.TILE_ELEMENTS // max(1, features.shape[1]))
    for start in range(0, features.shape[0], rows_per_block):
        block = features[start : start + rows_per_block]
        # One fast pass: a sum is finite only when every term is (NaN and inf never leave
        # a sum); a non-finite sum may also be an overflow, so the block is then inspected.
        if math.isfinite(block.sum()):
            continue
        finite = torch.isfinite(block)
        if not bool(finite.all()):
            row = start + int((~finite).any(dim=1).nonzero()[0, 0])
            kind = "NaN" if bool(torch.isnan(features[row]).any()) else "inf"
            raise ValueError(
                f"{name} contains {kind} (first at row {row}); features must be finite"
            )


def computing_device(labeled: torch.Tensor, unlabeled: torch.Tensor) -> torch.device:
    """CUDA when either feature matrix is on CUDA (the unlabeled one's first), else the CPU."""
    for tensor in (unlabeled, labeled):
        if tensor.device.type == "cuda":
            return tensor.device
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------


def check_sharded_labeled(shard_indices: ArrayOrTensor | None, index: str) -> None:
    """Raise unless a sharded labeled set can be searched: with ``shard_indices``, by a
    search that supports it (:attr:`Search.supports_sharded_labeled`, the exact ones)."""
    if shard_indices is None:
        raise ParameterError(
            "labeled_shard_indices needs shard_indices: the labeled samples are sharded across "
            "processes (torch.distributed) only together with the unlabeled ones; pass "
            "shard_indices too, or every labeled sample without labeled_shard_indices"
        )
    if not search_index(index).supports_sharded_labeled:
        raise ParameterError(
            f"index={index!r} cannot search a sharded labeled set (labeled_shard_indices): an "
            "approximate index over one chunk of labeled rows is not the whole set's index; "
            "use index='exact', or give every process every labeled sample"
        )


def shard_rows(shard_indices: ArrayOrTensor, n_local: int) -> torch.Tensor:
    """``(u_local,)`` int64 CPU rows of this process's unlabeled samples, checked."""
    rows = torch.as_tensor(
        np.asarray(
            shard_indices.cpu() if isinstance(shard_indices, torch.Tensor) else shard_indices
        )
    )
    if rows.shape != (n_local,) or rows.dtype.is_floating_point:
        raise ValueError(
            f"shard_indices must be {n_local} integer rows, one per unlabeled sample; "
            f"got shape {tuple(rows.shape)}, dtype {rows.dtype}"
        )
    return rows.to(torch.int64)


def labeled_ids(labeled_shard_indices: ArrayOrTensor, n_local: int) -> torch.Tensor:
    """``(l_local,)`` int64 CPU ids of this process's labeled rows, checked."""
    given = labeled_shard_indices
    ids = torch.as_tensor(np.asarray(given.cpu() if isinstance(given, torch.Tensor) else given))
    not_integer = ids.dtype.is_floating_point or ids.dtype in (torch.bool, torch.complex64)
    if ids.shape != (n_local,) or (not_integer and ids.numel() > 0):
        raise ValueError(
            f"labeled_shard_indices must be {n_local} integer ids, one per labeled sample of "
            f"this process; got shape {tuple(ids.shape)}, dtype {ids.dtype}"
        )
    return ids.to(torch.int64)


def label_kind(labels: ArrayOrTensor) -> str:
    """NumPy's kind letter of the labels' dtype (``"b"``, ``"i"``, ``"u"``, ``"f"``, ...)."""
    if not isinstance(labels, torch.Tensor):
        return labels.dtype.kind
    if labels.dtype == torch.bool:
        return "b"
    if labels.is_complex():
        return "c"
    return "f" if labels.is_floating_point() else "i"


def checked_everywhere(checks: Callable[[], _Checked]) -> _Checked:
    """``checks()`` on every process of a ``torch.distributed`` group; if any process's
    checks raised, every process raises (naming that process and its error), so that none
    waits in a later collective for one that stopped. One small gather of messages."""
    try:
        result, failure = checks(), None
    except (ValueError, TypeError, ImportError) as error:
        result, failure = None, error
    messages = gather_objects(None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
    if failed:
        rank, message = failed[0]
        raise ValueError(
            f"label propagation stopped: process {rank}'s input failed its checks ({message})"
        )
    return result
