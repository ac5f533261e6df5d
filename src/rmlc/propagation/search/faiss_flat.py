"""Exact search with FAISS: ``IndexFlatL2`` on the CPU; on CUDA data with a GPU build of
faiss, ``GpuIndexFlatL2`` fed CUDA tensors in place (``faiss.contrib.torch_utils``), without
a copy through host memory."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from tqdm import tqdm

from rmlc.propagation.nearest import center_into
from rmlc.propagation.search.faiss_base import FaissSearch, faiss_has_gpu, search_missing

__all__ = ["FaissFlat", "faiss_flat_l2"]


def faiss_flat_l2(faiss: Any, dim: int, device: torch.device) -> tuple[Any, Any]:
    """An exact L2 index and the GPU resources it needs (None on the CPU): a GPU index on
    ``device`` when it is CUDA and faiss has GPU support, a CPU one otherwise."""
    if device.type == "cuda" and faiss_has_gpu(faiss):
        resources = faiss.StandardGpuResources()
        config = faiss.GpuIndexFlatConfig()
        config.device = device.index if device.index is not None else 0
        return faiss.GpuIndexFlatL2(resources, dim, config), resources
    return faiss.IndexFlatL2(dim), None


class FaissFlat(FaissSearch):
    """Exact search with ``faiss.IndexFlatL2`` (``GpuIndexFlatL2`` for CUDA data when faiss
    has GPU support)."""

    index: ClassVar[str] = "exact"

    def build(
        self, faiss: Any, labeled: torch.Tensor, center: torch.Tensor, device: torch.device
    ) -> tuple[Any, Any]:
        """An empty flat index (on the GPU for CUDA data with faiss-gpu)."""
        return faiss_flat_l2(faiss, labeled.shape[1], device)

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
        """See :meth:`Search.nearest`: on the GPU without host copies where it can."""
        import faiss

        if device.type == "cuda" and faiss_has_gpu(faiss):
            with torch.cuda.device(device):  # torch_utils runs FAISS on this device's stream
                index, resources = faiss_flat_l2(faiss, labeled.shape[1], device)
                found = search_tensors(index, labeled, unlabeled, center, device, chunk_rows, bar)
                del index, resources  # the index goes before the resources it runs on
                return found
        return super().nearest(labeled, unlabeled, center, device, chunk_rows, block_rows, bar)


def search_tensors(
    index: Any,
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    device: torch.device,
    chunk_rows: int,
    bar: tqdm,
) -> torch.Tensor:
    """The nearest row of ``index`` (empty, on ``device``: a GPU index for CUDA) to each
    unlabeled row, both centred on ``center`` into a float32 buffer of ``chunk_rows`` rows
    on ``device`` and handed to FAISS as tensors (``faiss.contrib.torch_utils``: a CUDA
    tensor is read in place on FAISS's stream, ordered after torch's). Returns ``(u,)``
    int64 on ``device``; rows already on ``device`` never go through host memory."""
    import faiss.contrib.torch_utils  # noqa: F401  (index.add and .search take tensors)

    dim = labeled.shape[1]
    center32 = center.to(device=device, dtype=torch.float32)
    buffer = torch.empty(chunk_rows, dim, dtype=torch.float32, device=device)
    for start in range(0, labeled.shape[0], chunk_rows):
        index.add(center_into(labeled[start : start + chunk_rows], center32, buffer))
    neighbors = torch.empty(unlabeled.shape[0], dtype=torch.int64, device=device)
    for start in range(0, unlabeled.shape[0], chunk_rows):
        queries = center_into(unlabeled[start : start + chunk_rows], center32, buffer)
        found = neighbors[start : start + len(queries)].unsqueeze(1)  # (c, 1), written in place
        index.search(queries, 1, I=found)
        bar.update(len(queries))
    return search_missing(neighbors, labeled, unlabeled, center, device)
