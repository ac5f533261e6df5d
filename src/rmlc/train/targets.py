"""Training targets kept sparse: 0/1 rows stored as positive label indices (CSR).

At web scale dense targets do not fit: Open Images is about 9 million images by 20,000
classes, 180 G entries, while an image has a handful of positive labels. The trainer
therefore keeps, per sample, the indices of its positive labels, and builds the dense
``(B, m)`` float32 block of a batch when the loss needs it (:meth:`SparseTargets.__getitem__`).
Label propagation gives an unlabeled sample the labels of its nearest labeled sample, so it
replaces whole rows with copies of other rows (:meth:`SparseTargets.copy_rows`), and the
targets stay sparse. Memory is ``O(N + nnz)`` instead of ``O(N m)``.

Partial labels: targets may also hold the entries verified absent (``negatives``, a tags
table's column); a tag then is known where it is positive or verified absent, unknown
elsewhere, and :meth:`SparseTargets.known` gives a batch's bool mask for the losses.
Without negatives every entry is known (absent = negative) and ``known`` is None. Rows are
copied, taken and set with their negatives.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch

from rmlc.labels import positives_csr

__all__ = ["SparseTargets"]

Rows = torch.Tensor | np.ndarray | slice | int


class SparseTargets:
    """``(N, m)`` 0/1 targets as a CSR matrix of their positive entries.

    Args:
        targets: ``(N, m)`` targets in {0, 1} or {-1, +1} (array or tensor; dense), or a
            SciPy sparse matrix whose stored non-zero entries are the positives.
        negatives: ``(N, m)`` the entries verified absent (same forms), or None: every
            entry not positive is negative.
    """

    def __init__(
        self,
        targets: np.ndarray | torch.Tensor | scipy.sparse.sparray,
        negatives: np.ndarray | torch.Tensor | scipy.sparse.sparray | None = None,
    ) -> None:
        self.matrix = positives_csr(targets, "targets")
        self.negatives = None if negatives is None else positives_csr(negatives, "negatives")
        if self.negatives is not None:
            if self.negatives.shape != self.matrix.shape:
                raise ValueError(
                    f"negatives have shape {self.negatives.shape}, targets {self.matrix.shape}"
                )
            if self.matrix.multiply(self.negatives).nnz:
                raise ValueError("an entry cannot be both positive and verified absent")

    @classmethod
    def from_indices(
        cls, indptr: np.ndarray, indices: np.ndarray, num_classes: int
    ) -> SparseTargets:
        """Targets whose row ``i`` has its positives at ``indices[indptr[i]:indptr[i+1]]``."""
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        if indptr.ndim != 1 or indptr.size == 0 or indptr[0] != 0 or (np.diff(indptr) < 0).any():
            raise ValueError("indptr must start at 0 and never decrease")
        if indptr[-1] != indices.size:
            raise ValueError(f"indptr ends at {indptr[-1]} but there are {indices.size} indices")
        if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
            raise ValueError(f"label indices must lie in [0, {num_classes})")
        matrix = scipy.sparse.csr_array(
            (np.ones(indices.size, dtype=np.uint8), indices, indptr),
            shape=(indptr.size - 1, num_classes),
        )
        return cls(matrix)  # a label listed twice is one positive

    # ---- shape ----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def num_classes(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        """Number of positive entries."""
        return self.matrix.nnz

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def has_negatives(self) -> bool:
        """Whether entries not positive may be unknown (see the module's notes)."""
        return self.negatives is not None

    def __repr__(self) -> str:
        negatives = "" if self.negatives is None else f", negatives={self.negatives.nnz}"
        return f"SparseTargets(shape={self.shape}, positives={self.nnz}{negatives})"

    # ---- reading --------------------------------------------------------------------------

    def __getitem__(self, rows: Rows) -> torch.Tensor:
        """Dense float32 ``(B, m)`` targets of ``rows`` (an int gives ``(m,)``)."""
        if isinstance(rows, int | np.integer):
            return torch.from_numpy(self.matrix[[int(rows)]].toarray()[0].astype(np.float32))
        return torch.from_numpy(self.matrix[_row_index(rows)].toarray().astype(np.float32))

    def known(self, rows: Rows) -> torch.Tensor | None:
        """bool ``(B, m)`` mask of the known entries of ``rows`` (positive or verified
        absent), or None when every entry is known (no negatives)."""
        if self.negatives is None:
            return None
        index = _row_index(rows)
        known = self.matrix[index] + self.negatives[index]
        return torch.from_numpy(known.toarray() > 0)

    def take(self, rows: Rows) -> SparseTargets:
        """The targets of ``rows`` (in that order), still sparse."""
        index = _row_index(rows)
        negatives = None if self.negatives is None else self.negatives[index]
        return SparseTargets(self.matrix[index], negatives)

    def positives_per_class(self) -> np.ndarray:
        """int64 ``(m,)`` number of positive samples of each class."""
        return np.bincount(self.matrix.indices, minlength=self.num_classes).astype(np.int64)

    def positives_per_row(self) -> np.ndarray:
        """int64 ``(N,)`` number of positive labels of each sample."""
        return np.diff(self.matrix.indptr).astype(np.int64)

    def dense(self) -> torch.Tensor:
        """All targets as a dense float32 ``(N, m)`` tensor (``O(N m)`` memory)."""
        return self[slice(None)]

    # ---- writing --------------------------------------------------------------------------

    def copy_rows(self, rows: Rows, sources: Rows) -> None:
        """Set row ``rows[i]`` to a copy of row ``sources[i]`` (read before any is written)."""
        rows, sources = _row_index(rows, len(self)), _row_index(sources, len(self))
        if rows.shape != sources.shape:
            raise ValueError(f"{rows.size} rows but {sources.size} source rows")
        take = np.arange(len(self))
        take[rows] = sources
        self.matrix = self.matrix[take]
        if self.negatives is not None:  # a copied row brings what its source knew absent
            self.negatives = self.negatives[take]

    def set_rows(
        self,
        rows: Rows,
        targets: np.ndarray | torch.Tensor | scipy.sparse.sparray,
        negatives: np.ndarray | torch.Tensor | scipy.sparse.sparray | None = None,
    ) -> None:
        """Set row ``rows[i]`` to row ``i`` of ``targets`` (``(len(rows), m)``, dense 0/1 or
        SciPy sparse positives), and, when these targets have negatives, its verified
        absent entries to row ``i`` of ``negatives`` (same forms); without ``negatives``
        the rows set are fully known: their entries not positive become verified absent
        (a prediction covers every class)."""
        rows = _row_index(rows, len(self))
        new = positives_csr(targets, "targets")
        if new.shape != (len(rows), self.num_classes):
            raise ValueError(
                f"{len(rows)} rows of {self.num_classes} classes to set, got shape {new.shape}"
            )
        if negatives is not None and self.negatives is None:
            raise ValueError("negatives given for targets without negatives (every tag known)")
        if self.negatives is not None and negatives is None:
            absent = scipy.sparse.csr_array(np.ones(new.shape, np.uint8) - new.toarray())
        elif self.negatives is not None:
            absent = positives_csr(negatives, "negatives")
            if absent.shape != new.shape or absent.multiply(new).nnz:
                raise ValueError(f"negatives must be {new.shape} and apart from the positives")
        take = np.arange(len(self))
        take[rows] = len(self) + np.arange(len(rows))
        self.matrix = scipy.sparse.vstack([self.matrix, new], format="csr")[take]
        if self.negatives is not None:
            self.negatives = scipy.sparse.vstack([self.negatives, absent], format="csr")[take]

    # ---- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors (loadable with ``torch.load(weights_only=True)``)."""
        state = {
            "indptr": torch.from_numpy(self.matrix.indptr.astype(np.int64)),
            "indices": torch.from_numpy(self.matrix.indices.astype(np.int64)),
            "num_classes": torch.tensor(self.num_classes),
        }
        if self.negatives is not None:
            state["negative_indptr"] = torch.from_numpy(self.negatives.indptr.astype(np.int64))
            state["negative_indices"] = torch.from_numpy(self.negatives.indices.astype(np.int64))
        return state

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor] | torch.Tensor) -> SparseTargets:
        """Targets saved by :meth:`state_dict`, or a dense tensor (older checkpoints)."""
        if isinstance(state, torch.Tensor):
            return cls(state)
        m = int(state["num_classes"])
        targets = cls.from_indices(state["indptr"].numpy(), state["indices"].numpy(), m)
        if "negative_indptr" in state:
            negatives = cls.from_indices(
                state["negative_indptr"].numpy(), state["negative_indices"].numpy(), m
            )
            return cls(targets.matrix, negatives.matrix)
        return targets


def _row_index(rows: Rows, length: int | None = None) -> np.ndarray | slice:
    """``rows`` as something SciPy's row indexing takes (an int64 array, or a slice)."""
    if isinstance(rows, slice):
        return rows if length is None else np.arange(length)[rows]
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    index = np.asarray(rows)
    if index.dtype == bool:
        return np.flatnonzero(index)
    if index.ndim != 1 or index.dtype.kind not in "iu":
        raise ValueError(f"rows must be a 1-D integer index, got {index.dtype} {index.shape}")
    return index.astype(np.int64, copy=False)
