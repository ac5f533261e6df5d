"""Label propagation for semi-supervised RML-CNN: nearest labeled neighbour and heat-kernel weight.

The method (semi-supervised RML-CNN): every unlabeled sample ``x_i`` takes the label vector
of its nearest labeled sample ``x~_i`` (exact Euclidean distance in feature space) and a
confidence from the heat kernel ``s_i = exp(-d(x_i, x~_i) / t)``. Samples far from every
labeled sample (out-of-distribution) thus get small weights. The paper does not give ``t``:

* ``"mean"`` (default): the mean nearest-labeled distance over the unlabeled set;
* ``"authors"``: that mean times ``u / (l + u)``, as in the authors' code;
* a positive finite number, used as it is (:func:`check_temperature`, the one check of
  ``t``, which the training config and the estimator call too).

The authors' implementation ran a Python double loop of ``O(u l)`` norm calls (hours on
COCO). Here the search is an exact ``k = 1`` search in float32, over chunks of unlabeled rows:

* ``backend="faiss"``: ``faiss.IndexFlatL2``; for CUDA data with a GPU build of faiss,
  ``GpuIndexFlatL2`` fed the CUDA tensors in place (no copy through host memory);
  otherwise the data is copied to the CPU chunk by chunk;
* ``backend="torch"``: ``||y||^2 - 2 x.y`` tiles from ``torch.addmm`` over (chunk x labeled
  block) with a running minimum, on the data's device;
* ``backend="auto"``: faiss when it is importable and can search where the data is (on the
  CPU, or on CUDA with a GPU build of faiss), torch otherwise (CUDA data never makes a
  round trip through the CPU for the search).

Ties: wherever rmlc compares two candidates, the nearest kept is the first in the order
(smaller distance, then smaller labeled index, or id in a sharded labeled set); see
:mod:`rmlc.propagation.nearest`. Inside a FAISS search, the choice among rows FAISS finds
equally near is FAISS's.

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
(an IVF query whose ``nprobe`` cells are empty) is searched exactly. Every search is a
:class:`~rmlc.propagation.search.Search` in :mod:`rmlc.propagation.search`; a new index is
one module and one entry in its registry.

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
``O(l)`` gathered ids); :mod:`rmlc.propagation.sharded`.

Types: ``X_labeled`` and ``X_unlabeled`` may be NumPy arrays or torch tensors (CPU or CUDA).
The result follows ``X_unlabeled``: NumPy arrays for an array, torch tensors on its device for
a tensor. The work runs on CUDA when either ``X`` is a CUDA tensor.

Edge cases: an empty unlabeled set is not an error: the result has zero rows and ``t`` is
NaN for ``"mean"`` and ``"authors"`` (there is no distance to average) or the number given.
When every distance is 0 (each unlabeled sample equals a labeled one), ``"mean"`` and
``"authors"`` give ``t = 0``; the weights are then all 1 (``exp(-0 / t)`` for any ``t > 0``)
rather than ``0 / 0``. Weights are floored at the smallest normal float32, so a very far
sample keeps a tiny positive weight rather than exactly 0.

Modules: :mod:`~rmlc.propagation.api` (:func:`propagate_labels`, :class:`Propagation`),
:mod:`~rmlc.propagation.checks` (input checks), :mod:`~rmlc.propagation.heat_kernel`
(``t`` and the weights), :mod:`~rmlc.propagation.nearest` (the tie rule, the float64
distances), :mod:`~rmlc.propagation.sharded` (the sharded layout),
:mod:`~rmlc.propagation.chunks` (chunk sizes) and :mod:`~rmlc.propagation.search` (the
search backends and their registry).
"""

from __future__ import annotations

from rmlc.propagation.api import Backend, Index, Propagation, propagate_labels
from rmlc.propagation.chunks import chunk_layout
from rmlc.propagation.heat_kernel import Temperature, check_temperature
from rmlc.propagation.search import SEARCHES, Search, index_names, index_settings, search_index

__all__ = [
    "SEARCHES",
    "Backend",
    "Index",
    "Propagation",
    "Search",
    "Temperature",
    "check_temperature",
    "chunk_layout",
    "index_names",
    "index_settings",
    "propagate_labels",
    "search_index",
]
