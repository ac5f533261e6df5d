"""Label encodings: the one place where {0, 1} and {-1, +1} targets are recognised.

Everything inside rmlc works on a boolean positive mask ``(N, m)``; the public entry
points call :func:`positive_mask` (tensors) or :func:`positive_mask_numpy` (arrays) once.
A target matrix is accepted when all of its values lie in {0, 1} or all lie in {-1, +1};
anything else (2, 0.5, NaN, or a mix of 0 and -1) is a ``ValueError`` that names the values.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch

__all__ = [
    "describe_values",
    "positive_indicator",
    "positive_mask",
    "positive_mask_numpy",
    "positives_csr",
    "to_signed",
]

_MAX_LISTED = 8


def describe_values(values: np.ndarray | torch.Tensor) -> str:
    """List the distinct values of an array for an error message (at most a few)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    flat = np.asarray(values).ravel()
    if flat.dtype.kind == "f":
        nan = bool(np.isnan(flat).any())
        uniques = np.unique(flat[~np.isnan(flat)])
    else:
        nan = False
        uniques = np.unique(flat)
    shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in uniques[:_MAX_LISTED].tolist()]
    if nan:
        shown.append("nan")
    more = f" and {len(uniques) - _MAX_LISTED} more" if len(uniques) > _MAX_LISTED else ""
    return "{" + ", ".join(shown) + "}" + more


def _encoding_error(name: str, values: np.ndarray | torch.Tensor) -> ValueError:
    return ValueError(
        f"{name} must hold values in {{0, 1}} or in {{-1, +1}} (one encoding for the whole "
        f"matrix); found values {describe_values(values)}"
    )


def positive_indicator(
    targets: torch.Tensor, dtype: torch.dtype = torch.float32, name: str = "targets"
) -> torch.Tensor:
    """Float 0/1 indicator of positive labels, the encoding every kernel works in.

    Args:
        targets: ``(N, m)`` (or any shape) with values in {0, 1} or in {-1, +1}, or bool.
        dtype: floating dtype of the result; {0, 1} targets already of this dtype are
            returned as they are (no copy).
        name: what to call the argument in error messages.

    Returns:
        tensor of the same shape and the given dtype: 1 for positive labels, 0 otherwise.
    """
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(targets).__name__}")
    if targets.dtype == torch.bool:
        return targets.to(dtype)
    if targets.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {targets.dtype}")
    # All zero exactly when every value is 0 or 1 (NaN and inf give NaN or inf).
    binary = torch.aminmax(targets * (targets - 1))
    if binary.min.item() == 0 and binary.max.item() == 0:
        return targets.to(dtype)
    signed = torch.aminmax(targets * targets - 1)
    if signed.min.item() == 0 and signed.max.item() == 0:
        return (targets.to(dtype) + 1) * 0.5
    raise _encoding_error(name, targets)


def positive_mask(targets: torch.Tensor, name: str = "targets") -> torch.Tensor:
    """Boolean mask of positive labels (see :func:`positive_indicator` for the encodings)."""
    if isinstance(targets, torch.Tensor) and targets.dtype == torch.bool:
        return targets
    return positive_indicator(targets, torch.float32, name) > 0


def positive_mask_numpy(targets: np.ndarray, name: str = "Y") -> np.ndarray:
    """NumPy twin of :func:`positive_mask` for the scikit-learn side of the library."""
    targets = np.asarray(targets)
    if targets.dtype == bool:
        return targets
    if targets.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {targets.dtype}")
    positive = targets == 1
    if not ((positive | (targets == 0)).all() or (positive | (targets == -1)).all()):
        raise _encoding_error(name, targets)
    return positive


def positives_csr(targets: object, name: str = "targets") -> scipy.sparse.csr_array:
    """The positives of ``(N, m)`` targets as a canonical uint8 CSR matrix (sorted indices,
    each positive stored once as 1).

    Dense targets (array or tensor) follow :func:`positive_mask_numpy`'s encodings. A SciPy
    sparse matrix (any format) must store 1 for each positive (stored zeros are dropped); a
    positive stored twice (a label listed twice) is one positive. The input is not changed.
    """
    shape = getattr(targets, "shape", None)
    if scipy.sparse.issparse(targets):
        if targets.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, m), got shape {targets.shape}")
        if targets.format == "csr" and targets.has_canonical_format and (targets.data == 1).all():
            return scipy.sparse.csr_array(targets, dtype=np.uint8, copy=True)  # already so
        entries = scipy.sparse.coo_array(targets, copy=True)  # keeps duplicate entries
        kept = entries.data != 0
        if not (entries.data[kept] == 1).all():
            found = np.unique(entries.data[kept & (entries.data != 1)])[:_MAX_LISTED]
            raise ValueError(
                f"sparse {name} must store 1 for each positive; found values {found.tolist()}"
            )
        rows, columns = entries.row[kept], entries.col[kept]
    else:
        if isinstance(targets, torch.Tensor):
            targets = targets.detach().cpu().numpy()
        dense = np.asarray(targets)
        if dense.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, m), got shape {dense.shape}")
        rows, columns = np.nonzero(positive_mask_numpy(dense, name))
        shape = dense.shape  # a nested list has none of its own
    matrix = scipy.sparse.csr_array(
        (np.ones(rows.size, np.uint8), (rows, columns)), shape=shape
    )  # duplicates are summed here...
    matrix.data[:] = 1  # ...and count once
    matrix.sort_indices()
    return matrix


def to_signed(positive: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Map a positive mask to the paper's encoding: +1 for positives, -1 for negatives."""
    return positive.to(dtype) * 2 - 1
