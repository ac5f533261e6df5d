"""Exact search in torch: ``||y||^2 - 2 x.y`` tiles from ``torch.addmm`` over (unlabeled
chunk x labeled block), with a running minimum, on the data's device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from rmlc.propagation.nearest import center_into, nearer
from rmlc.propagation.search.base import Search

__all__ = ["TorchExact"]


class TorchExact(Search):
    """Exact search with torch, on the CPU or CUDA, in float32 with full-precision products;
    ties to the lowest labeled index (the package's tie rule)."""

    index: ClassVar[str] = "exact"
    backend: ClassVar[str] = "torch"

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
        """Running minimum of ``||y||^2 - 2 x.y`` over labeled blocks, on rows centred on
        ``center`` ``(d,)``; see :meth:`Search.nearest`."""
        center = center.to(device=device, dtype=torch.float32)
        centered = torch.empty(labeled.shape, dtype=torch.float32, device=device)  # l*d*4 bytes
        squared_norms = torch.empty(labeled.shape[0], dtype=torch.float32, device=device)
        for start in range(0, labeled.shape[0], block_rows):
            block = center_into(labeled[start : start + block_rows], center, centered[start:])
            squared_norms[start : start + len(block)] = torch.linalg.vector_norm(block, dim=1) ** 2
        labeled = centered
        queries_buffer = torch.empty(
            chunk_rows, labeled.shape[1], dtype=torch.float32, device=device
        )
        neighbors = torch.empty(unlabeled.shape[0], dtype=torch.int64, device=device)
        tile_buffer = torch.empty(chunk_rows * block_rows, dtype=torch.float32, device=device)
        with ieee_float32_matmul(device):
            for start in range(0, unlabeled.shape[0], chunk_rows):
                queries = center_into(unlabeled[start : start + chunk_rows], center, queries_buffer)
                neighbors[start : start + len(queries)] = nearest_in_blocks(
                    queries, labeled, squared_norms, block_rows, tile_buffer
                )
                bar.update(len(queries))
        return neighbors


def nearest_in_blocks(
    queries: torch.Tensor,
    labeled: torch.Tensor,
    squared_norms: torch.Tensor,
    block_rows: int,
    tile_buffer: torch.Tensor,
) -> torch.Tensor:
    """``(c,)`` index of the nearest ``labeled`` row ``(l, d)`` to each query ``(c, d)``,
    by ``||y||^2 - 2 x.y`` (``squared_norms`` ``(l,)``), block by block through
    ``tile_buffer``: the first minimum inside a tile, :func:`nearer` across blocks."""
    best_value = best_index = None
    for block_start in range(0, labeled.shape[0], block_rows):
        block_stop = min(block_start + block_rows, labeled.shape[0])
        tile = tile_buffer[: len(queries) * (block_stop - block_start)]
        tile = tile.view(len(queries), block_stop - block_start)
        torch.addmm(
            squared_norms[block_start:block_stop],
            queries,
            labeled[block_start:block_stop].T,
            alpha=-2.0,
            out=tile,
        )
        value, index = tile.min(dim=1)  # torch: the first minimum of the row on ties
        index += block_start
        if best_value is None:
            best_value, best_index = value, index
        else:
            kept = nearer(value, index, best_value, best_index)
            best_value = torch.where(kept, value, best_value)
            best_index = torch.where(kept, index, best_index)
    return best_index


@contextlib.contextmanager
def ieee_float32_matmul(device: torch.device) -> Iterator[None]:
    """Full float32 products inside the block, whatever the global setting (restored after).

    TF32 (CUDA) or bf16 (oneDNN) products, which ``torch.set_float32_matmul_precision("high")``
    enables, keep about 10 bits of mantissa: enough to pick a farther neighbour.
    """
    if device.type == "cuda":
        backends = [torch.backends.cuda.matmul]
    else:
        backends = [getattr(torch.backends.mkldnn, "matmul", None)]
    changed: list[tuple[Any, str, Any]] = []
    try:
        for backend in backends:
            if hasattr(backend, "fp32_precision"):  # torch >= 2.9
                if backend.fp32_precision != "ieee":
                    changed.append((backend, "fp32_precision", backend.fp32_precision))
                    backend.fp32_precision = "ieee"
            elif getattr(backend, "allow_tf32", False):
                changed.append((backend, "allow_tf32", True))
                backend.allow_tf32 = False
        yield
    finally:
        for backend, name, value in reversed(changed):
            setattr(backend, name, value)
