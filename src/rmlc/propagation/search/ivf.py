"""Approximate search with ``faiss.IndexIVFFlat``: k-means cells, a few visited per query."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from rmlc.checks import ParameterError
from rmlc.propagation import chunks
from rmlc.propagation.search.faiss_base import FaissSearch

__all__ = ["FaissIVF"]

# FAISS's k-means wants at least 39 training points per cell (it warns below that).
MIN_POINTS_PER_CELL = 39
# Default training rows per cell (FAISS's k-means subsamples above 256 per cell).
TRAIN_POINTS_PER_CELL = 64


class FaissIVF(FaissSearch):
    """``faiss.IndexIVFFlat`` on the CPU.

    k-means cuts the labeled set into ``nlist`` cells (default ``round(4 sqrt(l))``, at most
    ``l // 39`` so that k-means has 39 points per cell, at least 1), trained on
    ``train_size`` labeled rows (default ``min(l, 64 nlist)``) drawn with ``seed`` (default
    0), which also seeds FAISS's k-means: the same data and settings give the same index
    and neighbours. A query visits its ``nprobe`` nearest cells (default
    ``round(sqrt(nlist))``; ``nprobe = nlist`` is an exact search).
    """

    index: ClassVar[str] = "ivf"
    params: ClassVar[Mapping[str, int]] = {"nlist": 1, "nprobe": 1, "train_size": 1, "seed": 0}
    exact: ClassVar[bool] = False
    supports_sharded_labeled: ClassVar[bool] = False

    @classmethod
    def settings_for(cls, given: dict[str, int], n_labeled: int | None) -> dict[str, int]:
        """Defaults from ``l``; ``nprobe`` in ``[1, nlist]``, ``nlist`` and ``train_size``
        in ``[1, l]``, ``train_size >= nlist``."""
        if n_labeled is None:
            return given
        nlist = given.get("nlist")
        if nlist is None:
            nlist = max(1, min(round(4 * math.sqrt(n_labeled)), n_labeled // MIN_POINTS_PER_CELL))
        elif nlist > n_labeled:
            raise ParameterError(
                f"index_params['nlist'] must be <= the number of labeled samples "
                f"({n_labeled}): k-means cannot make more cells than points; got {nlist}"
            )
        nprobe = given.get("nprobe", max(1, min(nlist, round(math.sqrt(nlist)))))
        if nprobe > nlist:
            raise ParameterError(
                f"index_params['nprobe'] must be <= nlist ({nlist}): a query cannot visit "
                f"more cells than there are; got {nprobe}"
            )
        train_size = given.get("train_size", min(n_labeled, TRAIN_POINTS_PER_CELL * nlist))
        if not nlist <= train_size <= n_labeled:
            raise ParameterError(
                f"index_params['train_size'] must lie in [nlist, l] = [{nlist}, {n_labeled}] "
                f"(k-means needs a point per cell, and draws from the labeled set); got "
                f"{train_size}"
            )
        seed = given.get("seed", 0)
        return {"nlist": nlist, "nprobe": nprobe, "train_size": train_size, "seed": seed}

    def build(
        self, faiss: Any, labeled: torch.Tensor, center: torch.Tensor, device: torch.device
    ) -> tuple[Any, Any]:
        """An IVF index trained by k-means on the drawn rows, empty; and its quantizer."""
        settings, dim = self.settings, labeled.shape[1]
        quantizer = faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, settings["nlist"])
        index.cp.seed = settings["seed"]  # k-means's initial centroids (and any subsampling)
        index.nprobe = settings["nprobe"]
        index.train(training_rows(labeled, center, settings["train_size"], settings["seed"]))
        return index, quantizer


def training_rows(labeled: torch.Tensor, center: torch.Tensor, count: int, seed: int) -> np.ndarray:
    """``(count, d)`` float32 centred labeled rows, drawn without replacement with ``seed``
    (in their order in the labeled set), or all of them when ``count`` is ``l``."""
    n_labeled = labeled.shape[0]
    if count < n_labeled:
        chosen = np.sort(np.random.default_rng(seed).choice(n_labeled, count, replace=False))
    else:
        chosen = np.arange(n_labeled)
    rows = torch.empty(count, labeled.shape[1], dtype=torch.float32)
    step = max(1, chunks.FAISS_TILE_BYTES // (4 * labeled.shape[1]))
    for start in range(0, count, step):
        picked = torch.from_numpy(chosen[start : start + step]).to(labeled.device)
        rows[start : start + len(picked)] = labeled.index_select(0, picked).cpu()
    return rows.sub_(center).numpy()
