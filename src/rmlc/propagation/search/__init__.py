"""Search backends behind one interface (:class:`Search`), and their registry.

:data:`SEARCHES` lists every search: the exact torch search (:mod:`.torch_exact`), FAISS's
flat index (:mod:`.faiss_flat`), IVF (:mod:`.ivf`) and HNSW (:mod:`.hnsw`). A new index is
one module with a :class:`Search` subclass (its ``index`` name, ``backend``, ``params`` and
defaults, whether it is exact and can search a sharded labeled set, and ``nearest``) and
its entry here: :func:`index_settings`, :func:`rmlc.propagation.propagate_labels`, the
training config (``propagation_index``) and the command line then know it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from tqdm import tqdm

from rmlc.checks import ParameterError, check_choice, check_integer
from rmlc.propagation import chunks
from rmlc.propagation.nearest import mean_row
from rmlc.propagation.search.base import Search
from rmlc.propagation.search.faiss_base import faiss_has_gpu
from rmlc.propagation.search.faiss_flat import FaissFlat
from rmlc.propagation.search.hnsw import FaissHNSW
from rmlc.propagation.search.ivf import FaissIVF
from rmlc.propagation.search.torch_exact import TorchExact

__all__ = [
    "SEARCHES",
    "Search",
    "index_names",
    "index_settings",
    "nearest_neighbors",
    "resolve_backend",
    "search_for",
    "search_index",
]

# Every search, one entry each; among the searches of one index, the first is the one
# :func:`search_index` describes it by (a torch search first: it runs without faiss).
SEARCHES: tuple[type[Search], ...] = (TorchExact, FaissFlat, FaissIVF, FaissHNSW)


def index_names() -> tuple[str, ...]:
    """The ``index=`` names of :data:`SEARCHES`, in their order: ``("exact", "ivf", "hnsw")``."""
    return tuple(dict.fromkeys(search.index for search in SEARCHES))


def search_for(index: str, backend: str) -> type[Search] | None:
    """The search of ``index`` on ``backend`` (``"torch"`` or ``"faiss"``), or None."""
    return next((s for s in SEARCHES if s.index == index and s.backend == backend), None)


def search_index(index: str) -> type[Search]:
    """The search that describes ``index`` (its settings, whether it is exact, can search a
    sharded labeled set, needs faiss): the first of its searches in :data:`SEARCHES`.

    Raises:
        ValueError: an unknown index.
    """
    check_choice(index, index_names(), "index")
    return next(search for search in SEARCHES if search.index == index)


def index_settings(
    index: str,
    index_params: Mapping[str, int] | None = None,
    n_labeled: int | None = None,
) -> dict[str, int]:
    """The settings of a search index, checked, with their defaults filled for ``l`` labeled.

    Each index declares its settings (:attr:`Search.params`, with their smallest values)
    and defaults (:meth:`Search.settings_for`):

    * ``"exact"``: none.
    * ``"ivf"``: ``nlist`` cells (default ``round(4 sqrt(l))``, at most ``l // 39`` so that
      k-means has 39 points per cell, at least 1), ``nprobe`` cells visited per query
      (default ``round(sqrt(nlist))``, ``nprobe = nlist`` is exact), ``train_size`` labeled
      rows k-means trains on (default ``min(l, 64 nlist)``) and the ``seed`` that draws them
      and seeds k-means (default 0).
    * ``"hnsw"``: ``m`` links per node (default 32), ``ef_search`` (64) and
      ``ef_construction`` (40), the candidate lists of search and construction.

    Args:
        index: a name of :func:`index_names`: ``"exact"``, ``"ivf"`` or ``"hnsw"``.
        index_params: settings to override, by name; None for the defaults.
        n_labeled: ``l``; None checks the names and types only (defaults depending on ``l``
            are left out).

    Returns:
        the settings by name.

    Raises:
        ValueError: an unknown index or setting, a setting that is not an integer or is out
            of range (``nprobe`` in ``[1, nlist]``, ``nlist`` and ``train_size`` in
            ``[1, l]``, ``train_size >= nlist``).
    """
    search = search_index(index)
    given = dict(index_params or {})
    allowed = search.params
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no settings"
        raise ParameterError(
            f"index_params for index={index!r} takes {takes}; got unknown {', '.join(unknown)}"
        )
    for name, value in given.items():
        given[name] = check_integer(value, f"index_params[{name!r}]", allowed[name])
    return search.settings_for(given, n_labeled)


def check_backend_runs_index(index: str, backend: str) -> None:
    """Raise unless ``backend`` (``"auto"``, ``"faiss"`` or ``"torch"``) has a search of
    ``index``."""
    if backend == "auto" or search_for(index, backend) is not None:
        return
    runs = " or ".join(repr(s.backend) for s in SEARCHES if s.index == index)
    if backend == "torch":
        raise ParameterError(
            f"index={index!r} is an approximate FAISS index: it needs backend={runs} or "
            "'auto', not 'torch' (the torch backend searches exactly)"
        )
    raise ParameterError(f"index={index!r} has no {backend} search: it needs backend={runs}")


def resolve_backend(backend: str, device: torch.device, index: str = "exact") -> str:
    """The backend that runs: ``"auto"`` resolved (faiss where it is installed, runs the
    index and can search where the data is, torch otherwise); an index without a torch
    search, FAISS.

    Raises:
        ImportError: faiss is needed (``backend="faiss"``, or an index only FAISS runs) but
            not installed.
    """
    torch_runs_it = search_for(index, "torch") is not None
    if backend == "torch" or (backend == "auto" and search_for(index, "faiss") is None):
        return "torch"
    try:
        import faiss
    except ImportError as error:
        if backend == "auto" and torch_runs_it:
            return "torch"
        needs = "backend='faiss'" if torch_runs_it else f"index={index!r}"
        raise ImportError(
            f"{needs} needs the faiss package: pip install faiss-cpu (or rmlc[faiss])"
        ) from error
    if backend == "auto" and torch_runs_it and device.type == "cuda" and not faiss_has_gpu(faiss):
        return "torch"  # CUDA data never makes a round trip through the CPU for the search
    return "faiss"


def nearest_neighbors(
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    device: torch.device,
    backend: str,
    chunk_size: int | None,
    progress: bool | None,
    index: str,
    settings: dict[str, int],
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(u,)`` int64 index of the nearest labeled row of each unlabeled row, on ``device``,
    searched chunk by chunk by ``index``'s search on ``backend`` (resolved: ``"faiss"`` or
    ``"torch"``) under a progress bar, on rows centred on ``center`` ``(d,)`` (None: the
    mean labeled row)."""
    search_class = search_for(index, backend)
    if search_class is None:  # a resolved backend runs the index: this names a wrong call
        check_backend_runs_index(index, backend)
        raise ParameterError(f"backend={backend!r} is not resolved (torch or faiss)")
    search = search_class(settings)
    n_unlabeled = unlabeled.shape[0]
    n_labeled, dim = labeled.shape
    chunk_rows, block_rows = chunks.chunk_layout(
        n_unlabeled, n_labeled, dim, chunk_size, search.backend
    )
    pairs = n_unlabeled * n_labeled
    show = pairs > chunks.AUTO_PROGRESS_PAIRS if progress is None else bool(progress)
    with tqdm(
        total=n_unlabeled,
        desc=f"propagate_labels ({search.describe()})",
        unit="sample",
        disable=not show,
    ) as bar:
        if n_unlabeled == 0:
            return torch.empty(0, dtype=torch.int64, device=device)
        if center is None:
            center = mean_row(labeled, block_rows)
        return search.nearest(labeled, unlabeled, center, device, chunk_rows, block_rows, bar)
