"""Tests of rmlc.propagation's parts: the one tie rule (blockwise and sharded paths agree),
the search registry (a new index is one module and one entry), the one check of ``t``, and
FAISS fed tensors (the GPU path, run on the CPU)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from tqdm import tqdm

import rmlc.propagation.chunks as chunks
import rmlc.propagation.search as search
from rmlc.propagation import (
    Search,
    index_names,
    index_settings,
    propagate_labels,
    search_index,
)
from rmlc.propagation.nearest import nearer
from tests.sharding import assert_two_labeled_shards_give_the_whole
from tests.test_propagation import brute_force, clustered_case

try:
    import faiss
except ImportError:  # pragma: no cover - faiss is a test dependency
    faiss = None

needs_faiss = pytest.mark.skipif(faiss is None, reason="faiss is not installed")
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rmlc" / "propagation"


# ---------------------------------------------------------------------------------------
# The tie rule
# ---------------------------------------------------------------------------------------


def test_nearer_is_smaller_distance_then_smaller_index() -> None:
    """Against the literal order on pairs, for every combination of a small grid."""
    values, indexes = [0.5, 1.0, 2.0], [3, 7, 9]
    pairs = list(itertools.product(values, indexes))
    candidate, kept = zip(*itertools.product(pairs, pairs), strict=True)
    got = nearer(
        torch.tensor([c[0] for c in candidate], dtype=torch.float64),
        torch.tensor([c[1] for c in candidate]),
        torch.tensor([k[0] for k in kept], dtype=torch.float64),
        torch.tensor([k[1] for k in kept]),
    )
    expected = [c < k for c, k in zip(candidate, kept, strict=True)]  # tuples: lexicographic
    assert got.tolist() == expected
    assert sum(expected) == len(pairs) * (len(pairs) - 1) // 2  # equal pairs are not nearer


def slow_nearest_by_id(labeled: torch.Tensor, unlabeled: torch.Tensor, ids: torch.Tensor):
    """Per unlabeled row, the smallest id among the labeled rows at the smallest float64
    distance: a loop."""
    neighbors = []
    for row in unlabeled.double():
        distances = torch.linalg.vector_norm(labeled.double() - row, dim=1)
        tied = torch.nonzero(distances == distances.min()).flatten()
        neighbors.append(int(ids[tied].min()))
    return torch.tensor(neighbors)


def integer_ties(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labeled rows ``(48, 16)``: 12 small-integer rows, each twice, and their negations
    (mean exactly 0); unlabeled ``(40, 16)``: copies of labeled rows, each as near to two
    labeled rows or more; ids ``(48,)`` in no order. Every float32 product and sum of the
    search is exact, so copies tie exactly in float32 as in float64, whatever order BLAS adds
    in (with other floats, two copies at different places of a product can round apart)."""
    generator = torch.Generator().manual_seed(seed)
    distinct = torch.randint(-3, 4, (12, 16), generator=generator).float()
    twice = distinct[torch.randperm(24, generator=generator) % 12]
    labeled = torch.cat([twice, -twice])
    unlabeled = labeled[torch.randint(48, (40,), generator=generator)]
    return labeled, unlabeled, torch.randperm(48, generator=generator) * 3 + 2


@pytest.mark.parametrize("seed", range(4))
def test_blockwise_and_sharded_paths_keep_the_same_tied_row(seed: int, monkeypatch) -> None:
    """Exact ties (copies of labeled rows): the torch search in 6-row labeled blocks, on the
    rows ordered by id, and the sharded search in 4-row chunks, on the rows as given, both
    keep the smallest id of the tied rows, as the loop does."""
    labeled, unlabeled, ids = integer_ties(seed)
    labels = torch.arange(48) * 10  # class labels: which row was kept
    expected = slow_nearest_by_id(labeled, unlabeled, ids)
    order = torch.argsort(ids)
    monkeypatch.setattr(chunks, "TILE_ELEMENTS", 6 * 8)
    assert chunks.chunk_layout(40, 48, 16, 8) == (8, 6)
    blockwise = propagate_labels(
        labeled[order], labels[order], unlabeled, backend="torch", chunk_size=8
    )
    monkeypatch.setattr(chunks, "LABELED_CHUNK_BYTES", 4 * 4 * 16)  # 4 rows a chunk
    sharded = propagate_labels(
        labeled,
        labels,
        unlabeled,
        backend="torch",
        chunk_size=8,
        shard_indices=torch.arange(40),
        labeled_shard_indices=ids,
    )
    assert bool((sharded.distances == 0).all())
    assert torch.equal(ids[order][blockwise.neighbors], expected)
    assert torch.equal(sharded.neighbors, expected)
    for name in ("labels", "weights", "distances"):
        assert torch.equal(getattr(sharded, name), getattr(blockwise, name)), name


@pytest.mark.slow
def test_a_lower_id_broadcast_later_wins_a_tie(tmp_path) -> None:
    """Two processes: copies (higher ids) on rank 0, broadcast first, and the rows they copy
    (lower ids) on rank 1: each tie goes to the lower id, as on one process."""
    generator = torch.Generator().manual_seed(8)
    distinct = torch.randint(-3, 4, (12, 16), generator=generator).float()
    labeled = torch.cat([distinct, -distinct, distinct, -distinct])  # exact float32 sums
    case = {
        "labeled": labeled,
        "labels": torch.arange(48),
        "unlabeled": labeled[torch.randint(48, (30,), generator=generator)],
        "ids": 7 + 3 * torch.arange(48),
        "labeled_rows": (range(24, 48), range(24)),
        "chunk_bytes": 5 * 4 * 16,
        "options": {"backend": "torch"},
    }
    assert_two_labeled_shards_give_the_whole(tmp_path, [case])


# ---------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------


def test_each_index_declares_what_the_callers_ask_of_it() -> None:
    assert index_names() == ("exact", "ivf", "hnsw")
    exact, ivf, hnsw = (search_index(name) for name in index_names())
    assert (exact.supports_sharded_labeled, exact.needs_faiss, exact.backend) == (
        True,
        False,
        "torch",
    )
    for approximate in (ivf, hnsw):
        assert not approximate.supports_sharded_labeled and approximate.needs_faiss
    assert index_settings("hnsw") == dict(hnsw.defaults)
    assert set(index_settings("ivf", n_labeled=10_000)) == set(ivf.params)
    with pytest.raises(ValueError, match="index must be one of 'exact', 'ivf', 'hnsw'; got 'kd'"):
        search_index("kd")


class ToyFloat64Search(Search):
    """A test index: a float64 loop over the labeled rows, every ``stride``-th row only."""

    index: ClassVar[str] = "toy"
    backend: ClassVar[str] = "torch"
    params: ClassVar[dict[str, int]] = {"stride": 1}
    defaults: ClassVar[dict[str, int]] = {"stride": 1}
    exact: ClassVar[bool] = False
    supports_sharded_labeled: ClassVar[bool] = False

    def nearest(self, labeled, unlabeled, center, device, chunk_rows, block_rows, bar):
        stride = self.settings["stride"]
        candidates = labeled[::stride].double()
        found = [
            int(torch.linalg.vector_norm(candidates - row, dim=1).argmin()) * stride
            for row in unlabeled.double()
        ]
        bar.update(len(found))
        return torch.tensor(found, dtype=torch.int64, device=device)


def test_a_new_index_is_one_class_and_one_entry(monkeypatch) -> None:
    """Registered, the toy index is taken by index_settings (its declared settings and
    defaults), propagate_labels (its neighbours), and the training config; what it does not
    support is refused by name."""
    from rmlc.train import TrainConfig

    monkeypatch.setattr(search, "SEARCHES", (*search.SEARCHES, ToyFloat64Search))
    assert index_settings("toy") == {"stride": 1}
    with pytest.raises(ValueError, match="index_params for index='toy' takes stride; got unkn"):
        index_settings("toy", {"nprobe": 2})
    X_labeled, Y_labeled, X_unlabeled = clustered_case(70)
    strided = propagate_labels(
        X_labeled, Y_labeled, X_unlabeled, index="toy", index_params={"stride": 2}
    )
    neighbors, distances = brute_force(X_labeled[::2], X_unlabeled)
    np.testing.assert_array_equal(strided.neighbors, 2 * neighbors)
    np.testing.assert_allclose(strided.distances, distances, rtol=1e-12)
    np.testing.assert_array_equal(strided.labels, Y_labeled[2 * neighbors])
    config = TrainConfig(
        semi_supervised=True, propagation_index="toy", propagation_index_params={"stride": 3}
    )
    assert config.propagation_index == "toy"
    with pytest.raises(ValueError, match="index='toy' cannot search a sharded labeled set"):
        propagate_labels(
            X_labeled,
            Y_labeled,
            X_unlabeled,
            index="toy",
            shard_indices=np.arange(90),
            labeled_shard_indices=np.arange(60),
        )
    with pytest.raises(ValueError, match="index='toy' has no faiss search: it needs backend='t"):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="toy", backend="faiss")


def test_no_module_of_the_package_is_over_650_lines() -> None:
    lengths = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert len(lengths) >= 12 and max(lengths.values()) <= 650, lengths


# ---------------------------------------------------------------------------------------
# The one check of t
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", ["median", "MEAN", 0, -1.0, math.inf, -math.inf, math.nan, True])
def test_a_temperature_propagation_refuses_is_refused_everywhere_alike(t) -> None:
    """The config (when made), the estimator (at fit) and propagate_labels give one message."""
    from rmlc.linear import RMLClassifier
    from rmlc.train import TrainConfig

    X_labeled, Y_labeled, X_unlabeled = clustered_case(71)
    messages = []
    for call in (
        lambda: propagate_labels(X_labeled, Y_labeled, X_unlabeled, t=t),
        lambda: RMLClassifier(t=t, max_epochs=1).fit(X_labeled, Y_labeled, X_unlabeled),
        lambda: TrainConfig(semi_supervised=True, t=t),
        lambda: TrainConfig(t=t),
    ):
        with pytest.raises(ValueError) as raised:
            call()
        messages.append(str(raised.value).removeprefix("config: "))
    assert messages == [f"t must be 'mean', 'authors' or a positive finite number; got {t!r}"] * 4


def test_the_temperatures_propagation_takes_are_taken_everywhere() -> None:
    from rmlc.train import TrainConfig

    for t in ("mean", "authors", 0.5, 3, np.float32(2.0)):
        assert TrainConfig(t=t).t == t


# ---------------------------------------------------------------------------------------
# FAISS fed tensors: the GPU path without host copies, run here on the CPU
# ---------------------------------------------------------------------------------------


@needs_faiss
@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_faiss_fed_tensors_finds_what_faiss_fed_arrays_finds(chunk_rows: int) -> None:
    """``search_tensors`` hands FAISS torch tensors (on CUDA, in place); on the CPU it must
    give the array path's neighbours, bit for bit."""
    from rmlc.propagation.search.faiss_flat import search_tensors

    X_labeled, Y_labeled, X_unlabeled = clustered_case(72)
    labeled, unlabeled = torch.from_numpy(X_labeled + 30), torch.from_numpy(X_unlabeled + 30)
    expected = propagate_labels(labeled, torch.from_numpy(Y_labeled), unlabeled, backend="faiss")
    center = labeled.double().mean(dim=0)
    with tqdm(disable=True) as bar:
        found = search_tensors(
            faiss.IndexFlatL2(12), labeled, unlabeled, center, torch.device("cpu"), chunk_rows, bar
        )
    assert found.dtype == torch.int64
    assert torch.equal(found, expected.neighbors)


def test_tensors_fed_to_an_index_that_misses_rows_are_searched_exactly() -> None:
    """An index that finds nothing (-1) for every third query and row ``i % 60`` for the
    others: the missed rows get the exact search's neighbours, the others the index's."""
    from rmlc.propagation.search.faiss_flat import search_tensors

    X_labeled, Y_labeled, X_unlabeled = clustered_case(73)
    labeled, unlabeled = torch.from_numpy(X_labeled), torch.from_numpy(X_unlabeled)
    exact = propagate_labels(labeled, torch.from_numpy(Y_labeled), unlabeled, backend="torch")

    class MissingEveryThirdRow:
        def __init__(self) -> None:
            self.added, self.seen = 0, 0

        def add(self, rows: torch.Tensor) -> None:
            self.added += len(rows)

        def search(self, queries: torch.Tensor, k: int, I: torch.Tensor) -> None:  # noqa: E741
            rows = self.seen + torch.arange(len(queries))
            I[:, 0] = torch.where(rows % 3 == 0, -1, rows % 60)
            self.seen += len(queries)

    index = MissingEveryThirdRow()
    with tqdm(disable=True) as bar:
        found = search_tensors(
            index, labeled, unlabeled, labeled.double().mean(0), torch.device("cpu"), 16, bar
        )
    rows = torch.arange(90)
    assert index.added == 60
    assert torch.equal(found, torch.where(rows % 3 == 0, exact.neighbors, rows % 60))


@pytest.mark.skipif(
    not torch.cuda.is_available() or faiss is None or not hasattr(faiss, "StandardGpuResources"),
    reason="needs CUDA and a GPU build of faiss",
)
def test_faiss_gpu_search_of_cuda_tensors_matches_the_torch_search() -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(74, n_labeled=3000, n_unlabeled=5000)
    labeled, unlabeled = (torch.from_numpy(x).cuda() for x in (X_labeled, X_unlabeled))
    labels = torch.from_numpy(Y_labeled).cuda()
    by_faiss = propagate_labels(labeled, labels, unlabeled, backend="faiss", chunk_size=1024)
    by_torch = propagate_labels(labeled, labels, unlabeled, backend="torch")
    assert by_faiss.neighbors.device.type == "cuda"
    same = by_faiss.neighbors == by_torch.neighbors
    assert float(same.float().mean()) > 0.999  # float32 near-ties aside
    assert torch.allclose(by_faiss.distances[same], by_torch.distances[same], rtol=0, atol=0)
