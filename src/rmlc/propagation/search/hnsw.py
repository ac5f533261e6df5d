"""Approximate search with ``faiss.IndexHNSWFlat``: a graph of links between labeled rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from rmlc.propagation.search.faiss_base import FaissSearch

__all__ = ["FaissHNSW"]


class FaissHNSW(FaissSearch):
    """``faiss.IndexHNSWFlat`` on the CPU: ``m`` links per node (default 32), built with
    ``ef_construction`` (40) and searched with ``ef_search`` (64), the candidate lists of
    construction and search. No training, but FAISS inserts the nodes in an unspecified
    order when it builds with several threads, so two builds (two runs, two processes) can
    differ in the rare neighbours they miss."""

    index: ClassVar[str] = "hnsw"
    params: ClassVar[Mapping[str, int]] = {"m": 2, "ef_search": 1, "ef_construction": 1}
    defaults: ClassVar[Mapping[str, int]] = {"m": 32, "ef_search": 64, "ef_construction": 40}
    exact: ClassVar[bool] = False
    supports_sharded_labeled: ClassVar[bool] = False

    def build(
        self, faiss: Any, labeled: torch.Tensor, center: torch.Tensor, device: torch.device
    ) -> tuple[Any, Any]:
        """An empty HNSW graph with the settings; nothing beside it."""
        index = faiss.IndexHNSWFlat(labeled.shape[1], self.settings["m"])
        index.hnsw.efConstruction = self.settings["ef_construction"]
        index.hnsw.efSearch = self.settings["ef_search"]
        return index, None
