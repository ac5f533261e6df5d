"""Label propagation for semi-supervised RML-CNN: nearest labeled neighbour and heat-kernel weight.

The method (semi-supervised RML-CNN): every unlabeled sample ``x_i`` takes the label vector
of its nearest labeled sample ``x~_i`` (exact Euclidean distance in feature space) and a
confidence from the heat kernel ``s_i = exp(-d(x_i, x~_i) / t)``. Samples far from every
labeled sample (out-of-distribution) thus get small weights. The paper does not give ``t``:

* ``"mean"`` (default): the mean nearest-labeled distance over the unlabeled set;
* ``"authors"``: that mean times ``u / (l + u)``, as in the authors' code;
* a positive finite number, used as it is.

The authors' implementation ran a Python double loop of ``O(u l)`` norm calls (hours on
COCO). Here the search is an exact ``k = 1`` search in float32, over chunks of unlabeled rows:

* ``backend="faiss"``: ``faiss.IndexFlatL2``; a GPU index (``GpuIndexFlatL2``) when the data
  is on CUDA and faiss has GPU support, otherwise the data is copied to the CPU chunk by chunk;
* ``backend="torch"``: ``||y||^2 - 2 x.y`` tiles from ``torch.addmm`` over (chunk x labeled
  block) with a running minimum, on the data's device; exact ties go to the lowest labeled
  index;
* ``backend="auto"``: faiss when it is importable and can search where the data is (on the
  CPU, or on CUDA with a GPU build of faiss), torch otherwise (CUDA data never makes a
  round trip through the CPU for the search).

The distance to the chosen neighbour is then recomputed in float64 from the vectors, so the
reported distances, ``t`` and the weights are exact; only the choice between neighbours closer
to each other than float32 rounding can differ between backends.

Approximate search (``index=``, FAISS only, on the CPU), for labeled sets of a million images
and more, where the exact search's ``O(u l d)`` dominates:

* ``index="ivf"``: ``faiss.IndexIVFFlat``: k-means cuts the labeled set into ``nlist`` cells
  (default ``4 sqrt(l)``, at most ``l / 39``), trained on ``train_size`` labeled rows drawn
  with ``seed`` (default ``min(l, 64 nlist)``); a query visits its ``nprobe`` nearest cells
  (default ``sqrt(nlist)``). Deterministic: the same data and settings give the same index
  and neighbours (FAISS's k-means is seeded too); ``nprobe = nlist`` is an exact search.
* ``index="hnsw"``: ``faiss.IndexHNSWFlat``, a graph of ``m`` links per node (default 32),
  built with ``ef_construction`` (40) and searched with ``ef_search`` (64). No training, but
  FAISS inserts the nodes in an unspecified order when it builds with several threads, so
  two builds (two runs, two processes) can differ in the rare neighbours they miss.

See :func:`index_settings` for the settings and their defaults. The distances to the chosen
neighbours are still exact; a neighbour the approximate search misses gives a slightly
larger distance and a smaller weight. A query for which the index finds no neighbour at all
(an IVF query whose ``nprobe`` cells are empty) is searched exactly.

Memory: besides its inputs and outputs, the torch backend holds one float32 tile of
``chunk_size x labeled_block`` values (about 64 MiB by default, see :func:`chunk_layout`);
the faiss backend holds a float32 copy of the labeled set (the index) and faiss's own tile
(4096 x 1024 float32, 16 MiB), its chunks only bounding the float32 query rows (about 64 MiB
by default). Both hold a float32 copy of the labeled set when ``X_labeled`` is not float32 on
the computing device, per-chunk float32 copies of unlabeled rows that are not float32, and a
4 MiB float64 buffer for the distance re-check. The inputs are never copied whole, so
read-only memory maps work.

Sharded across ``torch.distributed`` processes (see :func:`propagate_labels`): each process
searches its own shard of the unlabeled rows, against every labeled row (memory
``O(l d + (u / R) d)``), or, with ``labeled_shard_indices``, against every process's labeled
shard in turn, broadcast chunk by chunk (memory ``O((l + u) d / R)`` plus a ~64 MiB chunk and
``O(l)`` gathered ids).

Types: ``X_labeled`` and ``X_unlabeled`` may be NumPy arrays or torch tensors (CPU or CUDA).
The result follows ``X_unlabeled``: NumPy arrays for an array, torch tensors on its device for
a tensor. The work runs on CUDA when either ``X`` is a CUDA tensor.

Edge cases: an empty unlabeled set is not an error: the result has zero rows and ``t`` is
NaN for ``"mean"`` and ``"authors"`` (there is no distance to average) or the number given.
When every distance is 0 (each unlabeled sample equals a labeled one), ``"mean"`` and
``"authors"`` give ``t = 0``; the weights are then all 1 (``exp(-0 / t)`` for any ``t > 0``)
rather than ``0 / 0``. Weights are floored at the smallest normal float32, so a very far
sample keeps a tiny positive weight rather than exactly 0.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rmlc.checks import ParameterError, check_choice, check_integer
from rmlc.gather import first_per_index, gather_objects, world_size
from rmlc.labels import positive_mask_numpy

__all__ = [
    "Backend",
    "Index",
    "Propagation",
    "Temperature",
    "chunk_layout",
    "index_settings",
    "propagate_labels",
]

Backend = Literal["auto", "faiss", "torch"]
Index = Literal["exact", "ivf", "hnsw"]
Temperature = Literal["mean", "authors"] | float
ArrayOrTensor = np.ndarray | torch.Tensor
_Checked = TypeVar("_Checked")

# One (unlabeled chunk x labeled block) float32 tile of distances: 64 MiB.
_TILE_ELEMENTS = 64 * 2**20 // 4
# Rows of the float64 distance re-check: 2**19 values per batch (4 MiB of float64).
_RECHECK_ELEMENTS = 2**19
# Chunks never get smaller than this by default (the labeled set is cut into blocks instead).
_MIN_DEFAULT_CHUNK = 512
# faiss searches 4096 queries at a time: default faiss chunks hold at least that many.
_MIN_DEFAULT_FAISS_CHUNK = 4096
_FAISS_TILE_BYTES = 16 * 2**20  # FAISS's own query tile; rows are centred in batches this size
# progress=None shows a bar when the search compares more pairs than this.
_AUTO_PROGRESS_PAIRS = 1e9
_BACKENDS = ("auto", "faiss", "torch")
_INDEXES = ("exact", "ivf", "hnsw")
# The settings each index takes (index_params keys), with their smallest values.
_INDEX_PARAMS = {
    "exact": {},
    "ivf": {"nlist": 1, "nprobe": 1, "train_size": 1, "seed": 0},
    "hnsw": {"m": 2, "ef_search": 1, "ef_construction": 1},
}
# IVF: FAISS's k-means wants at least 39 training points per cell (it warns below that).
_MIN_POINTS_PER_CELL = 39
# IVF: default training rows per cell (FAISS's k-means subsamples above 256 per cell).
_TRAIN_POINTS_PER_CELL = 64
_HNSW_DEFAULTS = {"m": 32, "ef_search": 64, "ef_construction": 40}
_TEMPERATURES = ("mean", "authors")
# Sharded labeled set: a process broadcasts its labeled rows in chunks of this many bytes of
# feature rows (float32, or float64 when some process's features are wider): 64 MiB.
_LABELED_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Propagation:
    """Labels and confidences propagated to the unlabeled samples (``u`` of them).

    Arrays are NumPy arrays, or torch tensors on ``X_unlabeled``'s device when it was a tensor.

    Attributes:
        labels: ``(u, m)`` rows of ``Y_labeled`` (same dtype and encoding), or ``(u,)`` class
            labels when ``Y_labeled`` was 1-D.
        weights: ``(u,)`` float32 heat-kernel confidences ``exp(-distance / t)`` in ``(0, 1]``
            (floored at the smallest normal float32, so that no weight is exactly 0; all 1
            when ``t`` is 0, i.e. every distance is 0).
        neighbors: ``(u,)`` int64 index of each sample's nearest labeled sample (its id
            from ``labeled_shard_indices`` when the labeled samples are sharded).
        distances: ``(u,)`` float64 Euclidean distance to that neighbour.
        t: the heat-kernel temperature used (NaN for an empty unlabeled set with ``"mean"`` or
            ``"authors"``).
    """

    labels: ArrayOrTensor
    weights: ArrayOrTensor
    neighbors: ArrayOrTensor
    distances: ArrayOrTensor
    t: float


def chunk_layout(
    n_unlabeled: int,
    n_labeled: int,
    dim: int,
    chunk_size: int | None = None,
    backend: Literal["faiss", "torch"] = "torch",
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
            chunk_size = max(_MIN_DEFAULT_FAISS_CHUNK, _TILE_ELEMENTS // max(dim, 1))
        return max(1, min(chunk_size, n_unlabeled)), max(1, n_labeled)
    if chunk_size is None:
        chunk_size = max(_MIN_DEFAULT_CHUNK, _TILE_ELEMENTS // max(n_labeled, dim, 1))
    chunk_rows = max(1, min(chunk_size, n_unlabeled))
    block_rows = max(1, min(n_labeled, _TILE_ELEMENTS // chunk_rows))
    return chunk_rows, block_rows


def index_settings(
    index: Index,
    index_params: Mapping[str, int] | None = None,
    n_labeled: int | None = None,
) -> dict[str, int]:
    """The settings of a search index, checked, with their defaults filled for ``l`` labeled.

    * ``"exact"``: none.
    * ``"ivf"``: ``nlist`` cells (default ``round(4 sqrt(l))``, at most ``l // 39`` so that
      k-means has 39 points per cell, at least 1), ``nprobe`` cells visited per query
      (default ``round(sqrt(nlist))``, ``nprobe = nlist`` is exact), ``train_size`` labeled
      rows k-means trains on (default ``min(l, 64 nlist)``) and the ``seed`` that draws them
      and seeds k-means (default 0).
    * ``"hnsw"``: ``m`` links per node (default 32), ``ef_search`` (64) and
      ``ef_construction`` (40), the candidate lists of search and construction.

    Args:
        index: ``"exact"``, ``"ivf"`` or ``"hnsw"``.
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
    check_choice(index, _INDEXES, "index")
    given = dict(index_params or {})
    allowed = _INDEX_PARAMS[index]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no settings"
        raise ParameterError(
            f"index_params for index={index!r} takes {takes}; got unknown {', '.join(unknown)}"
        )
    for name, value in given.items():
        given[name] = check_integer(value, f"index_params[{name!r}]", allowed[name])
    if index == "hnsw":
        return {**_HNSW_DEFAULTS, **given}
    if index == "exact" or n_labeled is None:
        return given
    nlist = given.get("nlist")  # "ivf" from here on
    if nlist is None:
        nlist = max(1, min(round(4 * math.sqrt(n_labeled)), n_labeled // _MIN_POINTS_PER_CELL))
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
    train_size = given.get("train_size", min(n_labeled, _TRAIN_POINTS_PER_CELL * nlist))
    if not nlist <= train_size <= n_labeled:
        raise ParameterError(
            f"index_params['train_size'] must lie in [nlist, l] = [{nlist}, {n_labeled}] "
            f"(k-means needs a point per cell, and draws from the labeled set); got "
            f"{train_size}"
        )
    seed = given.get("seed", 0)
    return {"nlist": nlist, "nprobe": nprobe, "train_size": train_size, "seed": seed}


def propagate_labels(
    X_labeled: ArrayOrTensor,
    Y_labeled: ArrayOrTensor,
    X_unlabeled: ArrayOrTensor,
    t: Temperature = "mean",
    backend: Backend = "auto",
    chunk_size: int | None = None,
    progress: bool | None = None,
    shard_indices: ArrayOrTensor | None = None,
    index: Index = "exact",
    index_params: Mapping[str, int] | None = None,
    labeled_shard_indices: ArrayOrTensor | None = None,
) -> Propagation:
    """Give each unlabeled sample its nearest labeled sample's labels and a heat-kernel weight.

    Sharded across processes (``torch.distributed``, e.g. under ``torchrun``): each process
    passes only its own shard of the unlabeled samples, with ``shard_indices``, the shard's
    row numbers in the whole unlabeled set (repeats across processes, a sampler's padding,
    are allowed); the temperature is taken over the distances of all shards (a collective:
    every process must call).

    * Without ``labeled_shard_indices``, each process passes every labeled sample and
      searches its unlabeled shard alone, so every row comes out exactly as
      :func:`propagate_labels` on the whole set gives it. Memory per process is
      ``O(l d + (u / R) d)``, plus ``O(u)`` for the distances. With ``index="ivf"`` every
      process builds the same index from the same labeled features (seeded k-means), so
      this still holds; with ``"hnsw"`` each process builds its own graph, whose
      multi-threaded construction is not deterministic, so a row's neighbour may differ
      from the single-process run's where the graph misses the exact one.
    * With ``labeled_shard_indices`` (exact search only), each process passes only its own
      shard of the labeled samples too (it may be empty), with their ids in the whole
      labeled set (unique integers; repeats across processes allowed). The processes agree
      on the centre (the float64 mean of the distinct labeled rows, summed per process: it
      may differ from one process's mean in the last bits); then each process in turn
      broadcasts its shard in chunks of about 64 MiB of feature rows, in increasing id
      order, and every process searches its unlabeled shard against each chunk and keeps,
      per row, the nearest labeled sample by float64 distance (exact ties: the lowest id;
      with ``backend="faiss"``, a tie inside one chunk goes where faiss puts it). Memory
      per process is ``O((l + u) d / R)`` plus one chunk (and the search's own buffers for
      it), ``O(l)`` for the gathered ids and ``O(u)`` for the distances. ``neighbors`` are
      then ids from ``labeled_shard_indices``, not positions; ``l`` (for ``"authors"``) is
      the number of distinct ids. On data without float32 near-ties, every row is the one
      a single process computes on the whole sets ordered by id; where two labeled samples
      are closer to a row than float32 rounding tells apart, the float64 comparison across
      chunks may pick the other one.

    Args:
        X_labeled: ``(l, d)`` features of the labeled samples, ``l >= 1``.
        Y_labeled: ``(l, m)`` labels in {0, 1} or in {-1, +1} (or bool), or ``(l,)`` class
            labels; array or tensor.
        X_unlabeled: ``(u, d)`` features of the unlabeled samples (``u`` may be 0).
        t: heat-kernel temperature: ``"mean"``, ``"authors"`` or a positive finite number
            (see the module docstring).
        backend: ``"auto"``, ``"faiss"`` or ``"torch"``.
        chunk_size: unlabeled rows per chunk (per search call); None picks the default of
            :func:`chunk_layout` (a ~64 MiB float32 tile for torch, ~64 MiB of rows for faiss).
        progress: show a tqdm bar over the chunks; None shows one when ``u * l > 1e9``.
        shard_indices: ``(u,)`` integer rows of ``X_unlabeled`` in the whole unlabeled set,
            when the unlabeled samples are sharded across processes (see above).
        index: ``"exact"`` (default), or an approximate FAISS index, ``"ivf"`` or ``"hnsw"``
            (see the module docstring); needs faiss and ``backend`` ``"auto"`` or ``"faiss"``.
        index_params: the approximate index's settings, by name (see :func:`index_settings`);
            None for the defaults.
        labeled_shard_indices: ``(l_local,)`` integer ids of this process's labeled samples
            in the whole labeled set, when the labeled samples are sharded too (see above);
            needs ``shard_indices`` and ``index="exact"``.

    Returns:
        a :class:`Propagation`, in NumPy or torch as ``X_unlabeled``.

    Raises:
        ValueError: an empty labeled set, features of different dimensions, NaN or inf in a
            feature matrix, ``Y_labeled`` of the wrong length or encoding, or a bad ``t``,
            ``backend``, ``chunk_size``, ``index`` or ``index_params``, an approximate
            index with ``backend="torch"``, or ``labeled_shard_indices`` without
            ``shard_indices``, with an approximate index, of the wrong length or not
            integers; sharded labeled sets empty on every process or disagreeing between
            processes (feature count, label dtype or row shape).
        TypeError: non-numeric features, or non-numeric 1-D labels for a torch result or a
            sharded labeled set.
        ImportError: ``backend="faiss"`` or an approximate index without faiss installed.
    """
    sharded = labeled_shard_indices is not None

    def checks() -> tuple[tuple[torch.Tensor, torch.Tensor, ArrayOrTensor, dict], str, Any, Any]:
        """The checked arguments, the resolved backend, and the shards' unlabeled rows and
        labeled ids as int64 tensors (None where not sharded)."""
        if sharded:
            _check_sharded_labeled(shard_indices, index)
        checked = _checked_arguments(
            X_labeled, Y_labeled, X_unlabeled, t, backend, chunk_size, index, index_params, sharded
        )
        rows = None if shard_indices is None else _shard_rows(shard_indices, checked[1].shape[0])
        ids = _labeled_ids(labeled_shard_indices, checked[0].shape[0]) if sharded else None
        return checked, _resolve_backend(backend, _computing_device(*checked[:2]), index), rows, ids

    # sharded: every process learns of any one's bad input before the first collective
    checked, backend, rows, ids = checks() if shard_indices is None else _checked_everywhere(checks)
    labeled, unlabeled, labels_source, settings = checked
    device = _computing_device(labeled, unlabeled)
    out_device = X_unlabeled.device if isinstance(X_unlabeled, torch.Tensor) else None
    if sharded:
        search = _SearchSettings(device, backend, chunk_size, progress)
        neighbors, labels, distances, n_labeled = _search_labeled_shards(
            labeled, labels_source, ids, unlabeled, search
        )
    else:
        neighbors = _nearest_neighbors(
            labeled, unlabeled, device, backend, chunk_size, progress, index, settings
        )
        distances = _exact_distances(labeled, unlabeled, neighbors, device)
        labels, n_labeled = _take_labels(labels_source, neighbors, out_device), labeled.shape[0]
    everywhere = distances if rows is None else _all_distances(distances, rows)
    t_used = _temperature(everywhere, t, n_labeled)
    if t_used == 0.0:  # every distance is 0: exp(-0 / t) is 1 for every t > 0
        weights = torch.ones(unlabeled.shape[0], dtype=torch.float32, device=device)
    else:
        weights = torch.exp(-distances / t_used).to(torch.float32)
        weights.clamp_(min=torch.finfo(torch.float32).tiny)
    return _propagation(labels, weights, neighbors, distances, t_used, out_device)


# ---------------------------------------------------------------------------------------
# Validation and conversion
# ---------------------------------------------------------------------------------------


def _checked_arguments(
    X_labeled: ArrayOrTensor,
    Y_labeled: ArrayOrTensor,
    X_unlabeled: ArrayOrTensor,
    t: Temperature,
    backend: Backend,
    chunk_size: int | None,
    index: Index,
    index_params: Mapping[str, int] | None,
    labeled_sharded: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, ArrayOrTensor, dict[str, int]]:
    """:func:`propagate_labels`'s arguments checked: the labeled and unlabeled features as
    tensors, the labels to take rows from, and the index's settings. A labeled shard
    (``labeled_sharded``) may be empty, and its labels must be numeric (they travel as
    tensors)."""
    labeled = _as_feature_tensor(X_labeled, "X_labeled")
    unlabeled = _as_feature_tensor(X_unlabeled, "X_unlabeled")
    n_labeled, dim = labeled.shape
    if n_labeled == 0 and not labeled_sharded:
        raise ValueError(
            f"X_labeled is empty (shape {tuple(labeled.shape)}): label propagation needs at "
            "least one labeled sample"
        )
    if unlabeled.shape[1] != dim:
        raise ValueError(
            "X_labeled and X_unlabeled must have the same number of features; got X_labeled "
            f"of shape {tuple(labeled.shape)} and X_unlabeled of shape {tuple(unlabeled.shape)}"
        )
    if dim == 0:
        raise ValueError("X_labeled and X_unlabeled have no features (d = 0)")
    output_is_tensor = isinstance(X_unlabeled, torch.Tensor)
    labels_source = _checked_labels(Y_labeled, n_labeled, output_is_tensor)
    if labeled_sharded and _label_kind(labels_source) not in "biuf":
        raise TypeError(
            "Y_labeled must be numeric (or bool) when the labeled samples are sharded "
            f"(labeled_shard_indices): label rows travel between processes as tensors; got "
            f"dtype {labels_source.dtype}"
        )
    _check_temperature(t)
    check_choice(backend, _BACKENDS, "backend")
    check_integer(chunk_size, "chunk_size", 1, allow_none=True)
    settings = index_settings(index, index_params, n_labeled)
    if index != "exact" and backend == "torch":
        raise ParameterError(
            f"index={index!r} is an approximate FAISS index: it needs backend='faiss' or "
            "'auto', not 'torch' (the torch backend searches exactly)"
        )
    _check_finite(labeled, "X_labeled")
    _check_finite(unlabeled, "X_unlabeled")
    return labeled, unlabeled, labels_source, settings


def _as_feature_tensor(features: Any, name: str) -> torch.Tensor:
    """A 2-D real tensor viewing ``features`` (no copy for arrays NumPy and torch share)."""
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
    else:
        array = np.asarray(features)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
        tensor = _tensor_view(array)
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D feature matrix (samples, features); got shape "
            f"{tuple(tensor.shape)}"
        )
    return tensor


def _tensor_view(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without a copy, also for read-only arrays (never written to)."""
    if array.dtype.byteorder not in "=|" or any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _checked_labels(labels: Any, n_labeled: int, output_is_tensor: bool) -> ArrayOrTensor:
    """``Y_labeled`` as an array or tensor of ``l`` rows, its encoding checked when 2-D."""
    labels = labels.detach() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    shape = tuple(labels.shape)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"Y_labeled must be a label matrix (l, m) or class labels (l,); got shape {shape}"
        )
    if shape[0] != n_labeled:
        raise ValueError(
            f"Y_labeled has {shape[0]} rows but X_labeled has {n_labeled}: one row of labels "
            "per labeled sample"
        )
    as_array = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    if len(shape) == 2:
        positive_mask_numpy(as_array, name="Y_labeled")
    elif output_is_tensor and as_array.dtype.kind not in "biuf":
        raise TypeError(
            f"Y_labeled must be numeric to be returned as a tensor; got dtype {as_array.dtype}"
        )
    return labels


def _check_temperature(t: Any) -> None:
    if isinstance(t, str):
        if t in _TEMPERATURES:
            return
    elif (
        isinstance(t, numbers.Real)
        and not isinstance(t, bool)
        and math.isfinite(float(t))
        and float(t) > 0
    ):
        return
    raise ValueError(f"t must be 'mean', 'authors' or a positive finite number; got {t!r}")


def _check_finite(features: torch.Tensor, name: str) -> None:
    """Raise when ``features`` holds NaN or inf, checked in blocks of rows (bounded memory)."""
    if not features.is_floating_point():
        return
    rows_per_block = max(1, _TILE_ELEMENTS // max(1, features.shape[1]))
    for start in range(0, features.shape[0], rows_per_block):
        block = features[start : start + rows_per_block]
        # One fast pass: a sum is finite only when every term is (NaN and inf never leave
        # a sum); a non-finite sum may also be an overflow, so the block is then inspected.
        if math.isfinite(block.sum()):
            continue
        finite = torch.isfinite(block)
        if not bool(finite.all()):
            row = start + int((~finite).any(dim=1).nonzero()[0, 0])
            kind = "NaN" if bool(torch.isnan(features[row]).any()) else "inf"
            raise ValueError(
                f"{name} contains {kind} (first at row {row}); features must be finite"
            )


def _computing_device(labeled: torch.Tensor, unlabeled: torch.Tensor) -> torch.device:
    """CUDA when either feature matrix is on CUDA (the unlabeled one's first), else the CPU."""
    for tensor in (unlabeled, labeled):
        if tensor.device.type == "cuda":
            return tensor.device
    return torch.device("cpu")


def _resolve_backend(backend: str, device: torch.device, index: str = "exact") -> str:
    """The backend that runs: ``"auto"`` resolved; an approximate ``index`` always FAISS."""
    if backend == "torch":
        return backend
    try:
        import faiss
    except ImportError as error:
        if backend == "auto" and index == "exact":
            return "torch"
        needs = f"index={index!r}" if index != "exact" else "backend='faiss'"
        raise ImportError(
            f"{needs} needs the faiss package: pip install faiss-cpu (or rmlc[faiss])"
        ) from error
    exact_on_cuda = index == "exact" and device.type == "cuda"
    if backend == "auto" and exact_on_cuda and not _faiss_has_gpu(faiss):
        return "torch"
    return "faiss"


def _faiss_has_gpu(faiss: Any) -> bool:
    return hasattr(faiss, "StandardGpuResources")


def _mean_row(rows: torch.Tensor, block_rows: int) -> torch.Tensor:
    """``(d,)`` float64 mean of ``rows`` ``(n, d)``, summed block by block."""
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[0], block_rows):
        total += rows[start : start + block_rows].sum(dim=0, dtype=torch.float64)
    return total / rows.shape[0]


def _center_into(rows: torch.Tensor, center: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``rows - center`` into the float32 buffer ``out`` ``(n, d)`` (a view of it is
    returned): no temporary beyond the buffer. ``center`` is a float32 ``(d,)`` on its device;
    a float32 difference of two floats is correctly rounded, so centring costs no accuracy."""
    view = out[: len(rows)]
    view.copy_(rows)
    return view.sub_(center)


# ---------------------------------------------------------------------------------------
# Search backends: index (u,) int64 of the nearest labeled row, on the computing device
# ---------------------------------------------------------------------------------------


def _nearest_neighbors(
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
    """The nearest labeled row of each unlabeled row, searched chunk by chunk by
    ``backend`` (resolved: ``"faiss"`` or ``"torch"``) under a progress bar, on rows
    centred on ``center`` ``(d,)`` (None: the mean labeled row)."""
    n_unlabeled = unlabeled.shape[0]
    n_labeled, dim = labeled.shape
    chunk_rows, block_rows = chunk_layout(n_unlabeled, n_labeled, dim, chunk_size, backend)
    show = n_unlabeled * n_labeled > _AUTO_PROGRESS_PAIRS if progress is None else bool(progress)
    with tqdm(
        total=n_unlabeled,
        desc=f"propagate_labels ({backend if index == 'exact' else f'{backend}, {index}'})",
        unit="sample",
        disable=not show,
    ) as bar:
        if n_unlabeled == 0:
            return torch.empty(0, dtype=torch.int64, device=device)
        # both searches rank by ||y||^2 - 2 x.y in float32: centred, its rounding error
        # scales with the features' spread, not with an offset they share
        if center is None:
            center = _mean_row(labeled, block_rows)
        if backend == "faiss":
            return _nearest_faiss(
                labeled, unlabeled, center, device, chunk_rows, bar, index, settings
            )
        return _nearest_torch(labeled, unlabeled, center, device, chunk_rows, block_rows, bar)


def _faiss_flat_l2(faiss: Any, dim: int, device: torch.device) -> tuple[Any, Any]:
    """An exact L2 index and the GPU resources it needs (None on the CPU)."""
    if device.type == "cuda" and _faiss_has_gpu(faiss):
        resources = faiss.StandardGpuResources()
        config = faiss.GpuIndexFlatConfig()
        config.device = device.index if device.index is not None else 0
        return faiss.GpuIndexFlatL2(resources, dim, config), resources
    return faiss.IndexFlatL2(dim), None


def _faiss_approximate(
    faiss: Any, kind: str, settings: dict[str, int], labeled: torch.Tensor, center: torch.Tensor
) -> tuple[Any, Any]:
    """An approximate CPU index over rows centred on ``center`` (float32 ``(d,)``), trained
    (IVF) but empty, and what it refers to (kept alive beside it)."""
    dim = labeled.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings["m"])
        index.hnsw.efConstruction = settings["ef_construction"]
        index.hnsw.efSearch = settings["ef_search"]
        return index, None
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, settings["nlist"])
    index.cp.seed = settings["seed"]  # k-means's initial centroids (and any subsampling)
    index.nprobe = settings["nprobe"]
    index.train(_training_rows(labeled, center, settings["train_size"], settings["seed"]))
    return index, quantizer


def _training_rows(
    labeled: torch.Tensor, center: torch.Tensor, count: int, seed: int
) -> np.ndarray:
    """``(count, d)`` float32 centred labeled rows, drawn without replacement with ``seed``
    (in their order in the labeled set), or all of them when ``count`` is ``l``."""
    n_labeled = labeled.shape[0]
    if count < n_labeled:
        chosen = np.sort(np.random.default_rng(seed).choice(n_labeled, count, replace=False))
    else:
        chosen = np.arange(n_labeled)
    rows = torch.empty(count, labeled.shape[1], dtype=torch.float32)
    step = max(1, _FAISS_TILE_BYTES // (4 * labeled.shape[1]))
    for start in range(0, count, step):
        picked = torch.from_numpy(chosen[start : start + step]).to(labeled.device)
        rows[start : start + len(picked)] = labeled.index_select(0, picked).cpu()
    return rows.sub_(center).numpy()


def _nearest_faiss(
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    device: torch.device,
    chunk_rows: int,
    bar: tqdm,
    kind: str = "exact",
    settings: dict[str, int] | None = None,
) -> torch.Tensor:
    import faiss

    center32 = center.to(torch.float32).cpu()
    if kind == "exact":
        index, keep = _faiss_flat_l2(faiss, labeled.shape[1], device)
    else:
        index, keep = _faiss_approximate(faiss, kind, settings or {}, labeled, center32)
    # Rows are centred through one CPU buffer the size of FAISS's own tile.
    rows = max(1, min(chunk_rows, _FAISS_TILE_BYTES // (4 * labeled.shape[1])))
    buffer = torch.empty(rows, labeled.shape[1], dtype=torch.float32)
    for start in range(0, labeled.shape[0], rows):
        index.add(_center_into(labeled[start : start + rows], center32, buffer).numpy())
    neighbors = np.empty(unlabeled.shape[0], dtype=np.int64)
    for start in range(0, unlabeled.shape[0], rows):
        queries = _center_into(unlabeled[start : start + rows], center32, buffer).numpy()
        _, found = index.search(queries, 1)
        neighbors[start : start + len(queries)] = found[:, 0]
        bar.update(len(queries))
    del index, keep
    missing = np.flatnonzero(neighbors < 0)  # approximate: no labeled row in the cells visited
    if len(missing):
        queries = unlabeled.index_select(0, torch.from_numpy(missing).to(unlabeled.device))
        chunk, block = chunk_layout(len(missing), labeled.shape[0], labeled.shape[1])
        with tqdm(disable=True) as quiet:
            found = _nearest_torch(labeled, queries, center, device, chunk, block, quiet)
        neighbors[missing] = found.cpu().numpy()
    return torch.from_numpy(neighbors).to(device)


@contextlib.contextmanager
def _ieee_float32_matmul(device: torch.device) -> Iterator[None]:
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


def _nearest_torch(
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    device: torch.device,
    chunk_rows: int,
    block_rows: int,
    bar: tqdm,
) -> torch.Tensor:
    """Running minimum of ``||y||^2 - 2 x.y`` over labeled blocks, on rows centred on
    ``center`` ``(d,)``; ties to the lowest index."""
    center = center.to(device=device, dtype=torch.float32)
    centered = torch.empty(labeled.shape, dtype=torch.float32, device=device)  # l*d*4 bytes
    squared_norms = torch.empty(labeled.shape[0], dtype=torch.float32, device=device)
    for start in range(0, labeled.shape[0], block_rows):
        block = _center_into(labeled[start : start + block_rows], center, centered[start:])
        squared_norms[start : start + len(block)] = torch.linalg.vector_norm(block, dim=1) ** 2
    labeled = centered
    queries_buffer = torch.empty(chunk_rows, labeled.shape[1], dtype=torch.float32, device=device)
    neighbors = torch.empty(unlabeled.shape[0], dtype=torch.int64, device=device)
    tile_buffer = torch.empty(chunk_rows * block_rows, dtype=torch.float32, device=device)
    with _ieee_float32_matmul(device):
        for start in range(0, unlabeled.shape[0], chunk_rows):
            queries = _center_into(unlabeled[start : start + chunk_rows], center, queries_buffer)
            neighbors[start : start + len(queries)] = _nearest_in_blocks(
                queries, labeled, squared_norms, block_rows, tile_buffer
            )
            bar.update(len(queries))
    return neighbors


def _nearest_in_blocks(
    queries: torch.Tensor,
    labeled: torch.Tensor,
    squared_norms: torch.Tensor,
    block_rows: int,
    tile_buffer: torch.Tensor,
) -> torch.Tensor:
    """``(c,)`` index of the nearest ``labeled`` row ``(l, d)`` to each query ``(c, d)``."""
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
        value, index = tile.min(dim=1)  # the first minimum of the row on ties
        if best_value is None:
            best_value, best_index = value, index
        else:  # strictly smaller only: an earlier block keeps its ties
            better = value < best_value
            best_value = torch.where(better, value, best_value)
            best_index = torch.where(better, index + block_start, best_index)
    return best_index


# ---------------------------------------------------------------------------------------
# Exact distances, temperature and outputs
# ---------------------------------------------------------------------------------------


def _exact_distances(
    labeled: torch.Tensor, unlabeled: torch.Tensor, neighbors: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """``(u,)`` float64 distance from each unlabeled row to its neighbour, from the vectors.

    Works in batches of ``_RECHECK_ELEMENTS / d`` rows through a reused float64 buffer. On the
    CPU it runs in NumPy: single-threaded, these memory-bound passes lose nothing, and they
    do not stall on a busy machine the way many short parallel regions do.
    """
    n_unlabeled, dim = unlabeled.shape
    rows_per_batch = max(1, min(n_unlabeled, _RECHECK_ELEMENTS // dim))
    if device.type == "cpu" and _numpy_compatible(labeled) and _numpy_compatible(unlabeled):
        labeled_array, unlabeled_array = labeled.numpy(), unlabeled.numpy()
        neighbor_array = neighbors.numpy()
        distances = np.empty(n_unlabeled, dtype=np.float64)
        buffer = np.empty((rows_per_batch, dim), dtype=np.float64)
        for start in range(0, n_unlabeled, rows_per_batch):
            stop = min(start + rows_per_batch, n_unlabeled)
            difference = buffer[: stop - start]
            chosen = labeled_array[neighbor_array[start:stop]]
            np.subtract(unlabeled_array[start:stop], chosen, out=difference, dtype=np.float64)
            distances[start:stop] = np.einsum("ij,ij->i", difference, difference)
        return torch.from_numpy(np.sqrt(distances, out=distances))
    distances = torch.empty(n_unlabeled, dtype=torch.float64, device=device)
    rows64 = torch.empty(rows_per_batch, dim, dtype=torch.float64, device=device)
    chosen64 = torch.empty_like(rows64)
    for start in range(0, n_unlabeled, rows_per_batch):
        stop = min(start + rows_per_batch, n_unlabeled)
        rows, chosen = rows64[: stop - start], chosen64[: stop - start]
        rows.copy_(unlabeled[start:stop])
        chosen.copy_(labeled.index_select(0, neighbors[start:stop].to(labeled.device)))
        distances[start:stop] = torch.linalg.vector_norm(rows.sub_(chosen), dim=1)
    return distances


def _numpy_compatible(tensor: torch.Tensor) -> bool:
    return tensor.device.type == "cpu" and tensor.dtype != torch.bfloat16


def _temperature(distances: torch.Tensor, t: Temperature, n_labeled: int) -> float:
    if not isinstance(t, str):
        return float(t)
    n_unlabeled = distances.shape[0]
    if n_unlabeled == 0:
        return math.nan
    mean = float(distances.mean())
    return mean if t == "mean" else mean * n_unlabeled / (n_labeled + n_unlabeled)


def _all_distances(local: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Every process's distances, one per row of the whole unlabeled set, in row order
    (the order a single process computes them in, so that their mean is the same);
    ``rows`` ``(u_local,)`` int64, this process's rows (checked by :func:`_shard_rows`)."""
    parts = gather_objects((local.cpu(), rows))
    distances = torch.cat([part[0] for part in parts])
    indices = torch.cat([part[1] for part in parts])
    return distances[first_per_index(indices)]


def _shard_rows(shard_indices: ArrayOrTensor, n_local: int) -> torch.Tensor:
    """``(u_local,)`` int64 CPU rows of this process's unlabeled samples, checked."""
    rows = torch.as_tensor(
        np.asarray(
            shard_indices.cpu() if isinstance(shard_indices, torch.Tensor) else shard_indices
        )
    )
    if rows.shape != (n_local,) or rows.dtype.is_floating_point:
        raise ValueError(
            f"shard_indices must be {n_local} integer rows, one per unlabeled sample; "
            f"got shape {tuple(rows.shape)}, dtype {rows.dtype}"
        )
    return rows.to(torch.int64)


def _checked_everywhere(checks: Callable[[], _Checked]) -> _Checked:
    """``checks()`` on every process of a ``torch.distributed`` group; if any process's
    checks raised, every process raises (naming that process and its error), so that none
    waits in a later collective for one that stopped. One small gather of messages."""
    try:
        result, failure = checks(), None
    except (ValueError, TypeError, ImportError) as error:
        result, failure = None, error
    messages = gather_objects(None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
    if failed:
        rank, message = failed[0]
        raise ValueError(
            f"label propagation stopped: process {rank}'s input failed its checks ({message})"
        )
    return result


def _take_labels(
    labels: ArrayOrTensor, neighbors: torch.Tensor, out_device: torch.device | None
) -> ArrayOrTensor:
    """Rows ``neighbors`` of the labels, as a tensor on ``out_device`` or (None) an array."""
    if isinstance(labels, torch.Tensor):
        taken = labels.index_select(0, neighbors.to(labels.device))
        return taken.cpu().numpy() if out_device is None else taken.to(out_device)
    taken = labels[neighbors.cpu().numpy()]
    return taken if out_device is None else _tensor_view(np.ascontiguousarray(taken)).to(out_device)


def _propagation(
    labels: ArrayOrTensor,
    weights: torch.Tensor,
    neighbors: torch.Tensor,
    distances: torch.Tensor,
    t_used: float,
    out_device: torch.device | None,
) -> Propagation:
    """The result, as tensors on ``out_device``, or (None) as arrays; ``labels`` are the
    ``u`` chosen label rows (converted when they are a tensor)."""

    def output(value: torch.Tensor) -> ArrayOrTensor:
        return value.cpu().numpy() if out_device is None else value.to(out_device)

    return Propagation(
        labels=output(labels) if isinstance(labels, torch.Tensor) else labels,
        weights=output(weights),
        neighbors=output(neighbors),
        distances=output(distances),
        t=t_used,
    )


# ---------------------------------------------------------------------------------------
# Sharded labeled set: every process's labeled shard broadcast chunk by chunk
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SearchSettings:
    """How this process searches: computing device, resolved backend, unlabeled chunk rows
    and progress setting (as :func:`propagate_labels` takes them)."""

    device: torch.device
    backend: str
    chunk_size: int | None
    progress: bool | None


@dataclass(frozen=True)
class _LocalShard:
    """This process's labeled shard: features ``(l_local, d)``, label rows ``(l_local, ...)``
    as a tensor, ids ``(l_local,)`` int64 and ``order``, the rows in increasing id order."""

    features: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    order: torch.Tensor


@dataclass(frozen=True)
class _ShardLayout:
    """What every process agrees on before the labeled shards travel."""

    counts: list[int]  # labeled rows of each process, in rank order
    dim: int
    feature_dtype: torch.dtype  # float32, or float64 when some process's features are wider
    label_dtype: torch.dtype
    label_shape: tuple[int, ...]  # one label row's shape: () or (m,)
    n_labeled: int  # distinct labeled ids over all processes
    center: torch.Tensor  # (d,) float64 mean of the distinct labeled rows


@dataclass(frozen=True)
class _Nearest:
    """Running nearest labeled sample of each unlabeled row ``(u,)``: float64 distance, id
    and label row as its bytes ``(u, row bytes)`` uint8 (torch cannot assign rows of every
    dtype, e.g. uint16, by mask; bytes it can), updated in place."""

    distances: torch.Tensor
    ids: torch.Tensor
    labels: torch.Tensor


def _check_sharded_labeled(shard_indices: ArrayOrTensor | None, index: str) -> None:
    """Raise unless a sharded labeled set can be searched: with ``shard_indices``, exactly."""
    if shard_indices is None:
        raise ParameterError(
            "labeled_shard_indices needs shard_indices: the labeled samples are sharded across "
            "processes (torch.distributed) only together with the unlabeled ones; pass "
            "shard_indices too, or every labeled sample without labeled_shard_indices"
        )
    if index != "exact":
        raise ParameterError(
            f"index={index!r} cannot search a sharded labeled set (labeled_shard_indices): an "
            "approximate index over one chunk of labeled rows is not the whole set's index; "
            "use index='exact', or give every process every labeled sample"
        )


def _label_kind(labels: ArrayOrTensor) -> str:
    """NumPy's kind letter of the labels' dtype (``"b"``, ``"i"``, ``"u"``, ``"f"``, ...)."""
    if not isinstance(labels, torch.Tensor):
        return labels.dtype.kind
    if labels.dtype == torch.bool:
        return "b"
    if labels.is_complex():
        return "c"
    return "f" if labels.is_floating_point() else "i"


def _labeled_ids(labeled_shard_indices: ArrayOrTensor, n_local: int) -> torch.Tensor:
    """``(l_local,)`` int64 CPU ids of this process's labeled rows, checked."""
    given = labeled_shard_indices
    ids = torch.as_tensor(np.asarray(given.cpu() if isinstance(given, torch.Tensor) else given))
    not_integer = ids.dtype.is_floating_point or ids.dtype in (torch.bool, torch.complex64)
    if ids.shape != (n_local,) or (not_integer and ids.numel() > 0):
        raise ValueError(
            f"labeled_shard_indices must be {n_local} integer ids, one per labeled sample of "
            f"this process; got shape {tuple(ids.shape)}, dtype {ids.dtype}"
        )
    return ids.to(torch.int64)


def _rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def _communication_device(device: torch.device) -> torch.device:
    """Where broadcast tensors live: a CUDA device under NCCL, the CPU otherwise."""
    if world_size() > 1 and dist.get_backend() == "nccl":
        return (
            device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        )
    return torch.device("cpu")


def _shard_layout(shard: _LocalShard) -> _ShardLayout:
    """Every process's shard sizes, dtypes and ids gathered (a collective), checked to agree;
    the centre is the float64 mean of the distinct labeled rows (each id's first row over
    the processes in rank order), summed per process and added in rank order."""
    features, labels = shard.features, shard.labels
    local = (len(features), features.shape[1], features.dtype, labels.dtype, labels.shape[1:])
    parts = gather_objects((*local, shard.ids))
    by_rank = [part[1] for part in parts]
    if len(set(by_rank)) > 1:
        raise ValueError(
            f"X_labeled must have the same number of features on every process; got {by_rank} "
            "(by rank)"
        )
    label_kinds = [(part[3], tuple(part[4])) for part in parts]
    if len(set(label_kinds)) > 1:
        raise ValueError(
            "Y_labeled must have the same dtype and row shape on every process; got "
            f"{label_kinds} (dtype, row shape by rank)"
        )
    all_ids = torch.cat([part[5] for part in parts])
    firsts = first_per_index(all_ids)
    if len(firsts) == 0:
        raise ValueError(
            "X_labeled is empty on every process: label propagation needs at least one "
            "labeled sample"
        )
    counts = [part[0] for part in parts]
    is_first = torch.zeros(len(all_ids), dtype=torch.bool)
    is_first[firsts] = True
    offset = sum(counts[: _rank()])
    mine = is_first[offset : offset + len(features)].to(features.device)
    sums = gather_objects(_masked_sum(features, mine).cpu())
    narrow = all(part[2] in (torch.float32, torch.float16, torch.bfloat16) for part in parts)
    return _ShardLayout(
        counts=counts,
        dim=features.shape[1],
        feature_dtype=torch.float32 if narrow else torch.float64,
        label_dtype=labels.dtype,
        label_shape=tuple(labels.shape[1:]),
        n_labeled=len(firsts),
        center=torch.stack(sums).sum(dim=0) / len(firsts),  # rank order on every process
    )


def _masked_sum(rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(d,)`` float64 sum of the rows where ``mask`` ``(n,)`` is true, block by block."""
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    block_rows = max(1, _TILE_ELEMENTS // rows.shape[1])
    for start in range(0, rows.shape[0], block_rows):
        block = rows[start : start + block_rows][mask[start : start + block_rows]]
        total += block.sum(dim=0, dtype=torch.float64)
    return total


def _broadcast_chunk(
    source: int, start: int, size: int, shard: _LocalShard, layout: _ShardLayout, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows ``start:start+size`` (in id order) of process ``source``'s labeled shard, on every
    process (a collective): features ``(size, d)`` (``layout.feature_dtype``), ids
    ``(size,)`` and label rows ``(size, ...)``, on the communication device."""
    comm = _communication_device(device)
    if _rank() == source:
        picked = shard.order[start : start + size]
        features = shard.features.index_select(0, picked.to(shard.features.device))
        features = features.to(comm, layout.feature_dtype)
        ids = shard.ids[picked].to(comm)
        labels = shard.labels.index_select(0, picked.to(shard.labels.device)).to(comm)
    else:
        features = torch.empty(size, layout.dim, dtype=layout.feature_dtype, device=comm)
        ids = torch.empty(size, dtype=torch.int64, device=comm)
        labels = torch.empty(size, *layout.label_shape, dtype=layout.label_dtype, device=comm)
    if world_size() > 1:  # label rows travel as bytes, whatever their dtype (bool included)
        for tensor in (features, ids, labels.reshape(-1).view(torch.uint8)):
            dist.broadcast(tensor, src=source)
    return features, ids, labels


def _keep_nearer(
    nearest: _Nearest,
    chunk: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    unlabeled: torch.Tensor,
    center: torch.Tensor,
    search: _SearchSettings,
) -> None:
    """Search the unlabeled rows against one chunk of labeled rows; where the chunk's
    nearest row is nearer in float64 (or as near, with a lower id), it replaces the kept one."""
    device = search.device
    features, ids, labels = (tensor.to(device) for tensor in chunk)
    found = _nearest_neighbors(
        features, unlabeled, device, search.backend, search.chunk_size, False, "exact", {}, center
    )
    distances = _exact_distances(features, unlabeled, found, device).to(device)
    candidates = ids[found]
    nearer = (distances < nearest.distances) | (
        (distances == nearest.distances) & (candidates < nearest.ids)
    )
    nearest.distances[nearer] = distances[nearer]
    nearest.ids[nearer] = candidates[nearer]
    nearest.labels[nearer] = _row_bytes(labels)[found[nearer]]


def _row_bytes(rows: torch.Tensor) -> torch.Tensor:
    """``(n, row bytes)`` uint8 view of the rows ``(n, ...)`` of a contiguous tensor."""
    return rows.reshape(rows.shape[0], -1).view(torch.uint8)


def _search_labeled_shards(
    labeled: torch.Tensor,
    labels: ArrayOrTensor,
    ids: torch.Tensor,
    unlabeled: torch.Tensor,
    search: _SearchSettings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Each unlabeled row's nearest labeled sample over every process's labeled shard (a
    collective): every process broadcasts its shard in chunks of ``_LABELED_CHUNK_BYTES``, in
    rank order, and each searches its own unlabeled rows against each chunk. ``ids``:
    ``(l_local,)`` int64 CPU ids of this process's labeled rows (from :func:`_labeled_ids`).

    Returns:
        the winners' ids ``(u,)`` int64, label rows ``(u, ...)`` (a tensor), float64
        distances ``(u,)``, all on the computing device, and ``l``, the distinct ids.
    """
    if not isinstance(labels, torch.Tensor):
        labels = _tensor_view(np.ascontiguousarray(labels))
    # chunks travel in increasing id order: a tie inside a chunk goes to the lowest id
    shard = _LocalShard(labeled, labels, ids, torch.argsort(ids, stable=True))
    layout = _shard_layout(shard)
    n_unlabeled, device = unlabeled.shape[0], search.device
    nearest = _Nearest(
        distances=torch.full((n_unlabeled,), math.inf, dtype=torch.float64, device=device),
        ids=torch.full((n_unlabeled,), torch.iinfo(torch.int64).max, device=device),
        labels=torch.zeros(
            (n_unlabeled, math.prod(layout.label_shape) * layout.label_dtype.itemsize),
            dtype=torch.uint8,
            device=device,
        ),
    )
    row_bytes = layout.dim * layout.feature_dtype.itemsize
    chunk_rows = max(1, _LABELED_CHUNK_BYTES // row_bytes)
    total = sum(layout.counts)
    show = n_unlabeled * total > _AUTO_PROGRESS_PAIRS
    with tqdm(
        total=total,
        desc=f"propagate_labels ({search.backend}, labeled shards)",
        unit="labeled sample",
        disable=not (show if search.progress is None else search.progress),
    ) as bar:
        for source, count in enumerate(layout.counts):
            for start in range(0, count, chunk_rows):
                size = min(chunk_rows, count - start)
                chunk = _broadcast_chunk(source, start, size, shard, layout, device)
                if n_unlabeled:
                    _keep_nearer(nearest, chunk, unlabeled, layout.center, search)
                bar.update(size)
    labels = nearest.labels.view(layout.label_dtype).reshape(n_unlabeled, *layout.label_shape)
    return nearest.ids, labels, nearest.distances, layout.n_labeled
