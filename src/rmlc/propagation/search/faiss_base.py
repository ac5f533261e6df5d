"""What every FAISS search shares: the labeled rows added and the queries searched in tiles
of centred float32 rows, and an exact search for the queries an index finds nothing for."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from rmlc.propagation import chunks
from rmlc.propagation.nearest import center_into
from rmlc.propagation.search.base import Search
from rmlc.propagation.search.torch_exact import TorchExact

__all__ = ["FaissSearch", "faiss_has_gpu"]


def faiss_has_gpu(faiss: Any) -> bool:
    """Whether this faiss build has GPU support (faiss-gpu)."""
    return hasattr(faiss, "StandardGpuResources")


class FaissSearch(Search):
    """A search through a FAISS index over the centred labeled rows, on the CPU: the rows
    are centred through one host buffer the size of FAISS's own tile (CUDA data is copied
    over tile by tile). A subclass implements :meth:`build`."""

    backend: ClassVar[str] = "faiss"
    needs_faiss: ClassVar[bool] = True

    @abstractmethod
    def build(
        self, faiss: Any, labeled: torch.Tensor, center: torch.Tensor, device: torch.device
    ) -> tuple[Any, Any]:
        """An empty index (trained where it needs training) for ``labeled`` ``(l, d)``
        centred on ``center`` (float32 ``(d,)``, on the CPU), and what it refers to (kept
        alive beside it; None if nothing)."""

    def nearest(
        self,
        labeled: torch.Tensor,
        unlabeled: torch.Tensor,
        center: torch.Tensor,
        device: torch.device,
        chunk_rows: int,
        block_rows: int,
        bar: tqdm,
    ) -> torch.Tensor:
        """See :meth:`Search.nearest`; ``block_rows`` is unused (FAISS tiles itself)."""
        import faiss

        center32 = center.to(torch.float32).cpu()
        index, keep = self.build(faiss, labeled, center32, device)
        # Rows are centred through one CPU buffer the size of FAISS's own tile.
        rows = max(1, min(chunk_rows, chunks.FAISS_TILE_BYTES // (4 * labeled.shape[1])))
        buffer = torch.empty(rows, labeled.shape[1], dtype=torch.float32)
        for start in range(0, labeled.shape[0], rows):
            index.add(center_into(labeled[start : start + rows], center32, buffer).numpy())
        neighbors = np.empty(unlabeled.shape[0], dtype=np.int64)
        for start in range(0, unlabeled.shape[0], rows):
            queries = center_into(unlabeled[start : start + rows], center32, buffer).numpy()
            _, found = index.search(queries, 1)
            neighbors[start : start + len(queries)] = found[:, 0]
            bar.update(len(queries))
        del index, keep
        found = search_missing(torch.from_numpy(neighbors), labeled, unlabeled, center, device)
        return found.to(device)


def search_missing(
    neighbors: torch.Tensor,
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """``neighbors`` ``(u,)`` int64 with each -1 (an approximate index found no labeled row
    in the cells it visited) replaced by the exact search's neighbour (in place)."""
    missing = torch.nonzero(neighbors < 0).flatten()
    if len(missing) == 0:
        return neighbors
    queries = unlabeled.index_select(0, missing.to(unlabeled.device))
    chunk, block = chunks.chunk_layout(len(missing), labeled.shape[0], labeled.shape[1])
    with tqdm(disable=True) as quiet:
        found = TorchExact().nearest(labeled, queries, center, device, chunk, block, quiet)
    neighbors[missing.to(neighbors.device)] = found.to(neighbors.device)
    return neighbors
