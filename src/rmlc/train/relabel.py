"""Audited labels while training (beyond the paper): ``TrainConfig.relabel``.

Every ``relabel_every`` epochs the trainer scores its labeled training samples and audits
their *given* tags (:func:`rmlc.audit.tag_disagreement`, always against the tags as given,
never against earlier corrections). An entry (a given tag that looks absent, or an absent
tag that looks present) is flagged when its disagreement reaches ``relabel_cutoff`` (by
default the ramp's cap ``1 - s``: the loss has filed it as noise); an entry flagged by
``relabel_patience`` consecutive audits is acted on until an audit no longer flags it:

- ``drop``: the sample is set aside (sample weight 0) while it holds such an entry;
- ``predict``: the entry takes the network's label (a wrong tag is removed, a missing one
  added).

The consecutive counts are kept sparse (a CSR matrix of the flagged entries) and saved in
checkpoints with the targets and weights they produced, so a resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch

from rmlc.audit import tag_disagreement
from rmlc.train.config import TrainConfig
from rmlc.train.targets import SparseTargets

__all__ = ["RELABEL_MODES", "Relabeling"]

RELABEL_MODES = ("off", "drop", "predict")
_CHUNK_ENTRIES = 1 << 22  # scores audited at once: rows x classes


class Relabeling:
    """Consecutive flags of the labeled samples' entries, and what they change.

    Args:
        mode: ``"drop"`` or ``"predict"``.
        patience: consecutive audits an entry must be flagged before it is acted on.
        cutoff: the disagreement at which an entry is flagged.
        shape: ``(l, m)``: labeled samples and classes.
    """

    def __init__(self, mode: str, patience: int, cutoff: float, shape: tuple[int, int]) -> None:
        if mode not in RELABEL_MODES[1:]:
            raise ValueError(f"relabel must be one of {RELABEL_MODES[1:]}, got {mode!r}")
        self.mode, self.patience, self.cutoff = mode, int(patience), float(cutoff)
        self.streak = scipy.sparse.csr_array(shape, dtype=np.int32)

    def flags(
        self, scores: np.ndarray, given: scipy.sparse.csr_array, threshold: float | np.ndarray
    ) -> scipy.sparse.csr_array:
        """``(l, m)`` CSR of the entries whose disagreement reaches the cutoff (1 each)."""
        step = max(1, _CHUNK_ENTRIES // max(scores.shape[1], 1))
        blocks = [
            scipy.sparse.csr_array(
                tag_disagreement(
                    scores[start : start + step], given[start : start + step], threshold
                )
                >= self.cutoff
            )
            for start in range(0, scores.shape[0], step)
        ]
        return scipy.sparse.vstack(blocks, format="csr").astype(np.int32)

    def update(
        self, scores: np.ndarray, given: scipy.sparse.csr_array, threshold: float | np.ndarray
    ) -> scipy.sparse.csr_array:
        """Count one more audit; returns the ``(l, m)`` CSR (1 each) of the entries acted on."""
        flagged = self.flags(scores, given, threshold)
        self.streak = (flagged.multiply(self.streak) + flagged).tocsr()
        self.streak.eliminate_zeros()
        acted = (self.streak >= self.patience).astype(np.int32).tocsr()
        acted.eliminate_zeros()
        return acted

    def apply(
        self, given: scipy.sparse.csr_array, acted: scipy.sparse.csr_array
    ) -> tuple[scipy.sparse.csr_array, torch.Tensor]:
        """The labeled samples' targets ``(l, m)`` and weights ``(l,)`` after acting."""
        weights = torch.ones(given.shape[0])
        if self.mode == "drop":
            weights[torch.from_numpy(np.diff(acted.indptr) > 0)] = 0.0
            return given, weights
        corrected = abs(given.astype(np.int32) - acted).tocsr()  # flips the acted entries
        corrected.eliminate_zeros()
        return corrected.astype(np.uint8), weights

    def audit(
        self,
        scores: torch.Tensor,
        positions: torch.Tensor,
        given: scipy.sparse.csr_array,
        threshold: float | np.ndarray,
    ) -> tuple[scipy.sparse.csr_array, torch.Tensor, scipy.sparse.csr_array]:
        """One audit (:meth:`update`, then :meth:`apply`) of the scores ``(l, m)`` of the
        labeled samples at ``positions`` ``(l,)``: ``(targets, weights, acted)``."""
        ordered = torch.empty_like(scores)
        ordered[positions] = scores
        acted = self.update(ordered.numpy(), given, threshold)
        targets, weights = self.apply(given, acted)
        return targets, weights, acted

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors (loadable with ``torch.load(weights_only=True)``)."""
        coo = self.streak.tocoo()
        return {
            "rows": torch.from_numpy(coo.row.astype(np.int64)),
            "columns": torch.from_numpy(coo.col.astype(np.int64)),
            "counts": torch.from_numpy(coo.data.astype(np.int64)),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        entries = (state["counts"].numpy(), (state["rows"].numpy(), state["columns"].numpy()))
        self.streak = scipy.sparse.csr_array(entries, shape=self.streak.shape, dtype=np.int32)


def build_relabeling(
    config: TrainConfig, loss_s: float | None, shape: tuple[int, int]
) -> Relabeling | None:
    """The audited labels' state of a run (``config.relabel``), or None when off; the cutoff
    is by default the ramp's cap ``1 - s`` of the loss (``loss_s``; the paper's ``s`` for
    losses without one)."""
    if config.relabel == "off":
        return None
    cutoff = config.relabel_cutoff
    if cutoff is None:
        cutoff = 1.0 - (-0.8 if loss_s is None else loss_s)
    return Relabeling(config.relabel, config.relabel_patience, cutoff, shape)


def check_relabel_targets(relabeling: Relabeling | None, targets: SparseTargets) -> None:
    """Refuse relabeling where tags are unknown (partial labels): it is not defined there."""
    if relabeling is not None and targets.has_negatives:
        raise ValueError(
            "relabel does not yet work with partial labels (a training set with unknown "
            "tags): set relabel off, or unknown_tags negative"
        )
