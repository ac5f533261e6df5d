"""How much of the data one step of the search holds: chunk and block sizes, in one place.

Every module of :mod:`rmlc.propagation` reads these sizes from here at call time (as
``chunks.TILE_ELEMENTS``), so that a test can shrink them for the whole package at once.
"""

from __future__ import annotations

__all__ = ["chunk_layout"]

# One (unlabeled chunk x labeled block) float32 tile of distances: 64 MiB.
TILE_ELEMENTS = 64 * 2**20 // 4
# Rows of the float64 distance re-check: 2**19 values per batch (4 MiB of float64).
RECHECK_ELEMENTS = 2**19
# Chunks never get smaller than this by default (the labeled set is cut into blocks instead).
MIN_DEFAULT_CHUNK = 512
# faiss searches 4096 queries at a time: default faiss chunks hold at least that many.
MIN_DEFAULT_FAISS_CHUNK = 4096
# FAISS's own query tile; rows are centred for FAISS in batches this size.
FAISS_TILE_BYTES = 16 * 2**20
# progress=None shows a bar when the search compares more pairs than this.
AUTO_PROGRESS_PAIRS = 1e9
# Sharded labeled set: a process broadcasts its labeled rows in chunks of this many bytes of
# feature rows (float32, or float64 when some process's features are wider): 64 MiB.
LABELED_CHUNK_BYTES = 64 * 2**20


def chunk_layout(
    n_unlabeled: int,
    n_labeled: int,
    dim: int,
    chunk_size: int | None = None,
    backend: str = "torch",
) -> tuple[int, int]:
    """Rows per unlabeled chunk and per labeled block of the search.

    torch backend: by default a chunk has ``64 MiB / (4 max(l, d))`` rows (at least 512),
    so that a (chunk x labeled set) float32 tile is about 64 MiB; a labeled set too large for
    that is cut into blocks of ``64 MiB / (4 chunk)`` rows, so the tile stays about 64 MiB
    whatever ``l``. An explicit ``chunk_size`` sets the chunk and the block follows the same
    rule.

    faiss backend: faiss tiles the search itself (4096 queries x 1024 labeled rows), and every
    call to it re-reads the whole labeled set, so by default a chunk holds about 64 MiB of
    float32 query rows (``64 MiB / (4 d)`` rows, at least 4096) and the labeled set is one block.

    Args:
        n_unlabeled: ``u``, unlabeled samples.
        n_labeled: ``l``, labeled samples.
        dim: ``d``, features.
        chunk_size: unlabeled rows per chunk, or None for the default.
        backend: the search backend, ``"faiss"`` or ``"torch"``.

    Returns:
        ``(chunk_rows, block_rows)``, each at least 1 and at most ``u`` and ``l`` respectively.
    """
    if backend == "faiss":
        if chunk_size is None:
            chunk_size = max(MIN_DEFAULT_FAISS_CHUNK, TILE_ELEMENTS // max(dim, 1))
        return max(1, min(chunk_size, n_unlabeled)), max(1, n_labeled)
    if chunk_size is None:
        chunk_size = max(MIN_DEFAULT_CHUNK, TILE_ELEMENTS // max(n_labeled, dim, 1))
    chunk_rows = max(1, min(chunk_size, n_unlabeled))
    block_rows = max(1, min(n_labeled, TILE_ELEMENTS // chunk_rows))
    return chunk_rows, block_rows
