"""Tests of the approximate FAISS indexes of rmlc.propagation (``index="ivf"`` / ``"hnsw"``)
against the exact search: equality where the index is exhaustive, recall where it is not,
reproducibility, the settings' checks and defaults, and the options reaching the search from
the trainer and the command line."""

from __future__ import annotations

import signal
import sys

import numpy as np
import pytest
import torch

from rmlc.propagation import index_settings, propagate_labels
from rmlc.propagation.search.ivf import FaissIVF
from tests.sharding import assert_two_shards_give_the_whole
from tests.test_propagation import assert_same_result, brute_force

faiss = pytest.importorskip("faiss")


def latent_clusters(seed: int, n_labeled: int, n_unlabeled: int, dim: int = 32):
    """Network-like features: 30 clusters in an 8-d latent space, a random linear map to
    ``dim``, a little isotropic noise; {0, 1} labels (l, 5). float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(30, 8))
    layer = rng.normal(size=(8, dim)) / np.sqrt(8)

    def features(count: int) -> np.ndarray:
        latent = centres[rng.integers(30, size=count)] + rng.normal(scale=0.7, size=(count, 8))
        return (latent @ layer + 0.05 * rng.normal(size=(count, dim))).astype(np.float32)

    X_labeled, X_unlabeled = features(n_labeled), features(n_unlabeled)
    Y_labeled = (rng.random((n_labeled, 5)) < 0.3).astype(np.int64)
    return X_labeled, Y_labeled, X_unlabeled


def recall(result, exact) -> float:
    """Share of rows whose neighbour is the exact one or at the same distance (a tie)."""
    same = np.asarray(result.neighbors) == np.asarray(exact.neighbors)
    tied = np.abs(result.distances - exact.distances) <= 1e-9 * exact.distances
    return float(np.mean(same | tied))


# ---------------------------------------------------------------------------------------
# Against the exact search
# ---------------------------------------------------------------------------------------


def test_ivf_visiting_every_cell_is_the_exact_search() -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(0, 800, 300)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    np.testing.assert_array_equal(exact.neighbors, brute_force(X_labeled, X_unlabeled)[0])
    ivf = propagate_labels(
        X_labeled, Y_labeled, X_unlabeled, index="ivf", index_params={"nlist": 16, "nprobe": 16}
    )
    assert_same_result(ivf, exact)  # neighbours, labels, exact distances, t, weights


def test_approximate_indexes_find_most_exact_neighbours_on_clustered_data() -> None:
    """4,000 labeled x 600 unlabeled: the defaults (IVF: 102 cells, 10 visited; HNSW: m=32,
    ef_search=64) find nearly every exact neighbour, and the others are nearly as close. A
    broken index (a neighbour at random, or from the wrong cell) would have a recall near 0
    and distances several times the exact ones."""
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(1, 4000, 600)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    assert index_settings("ivf", None, 4000) == {
        "nlist": 102,
        "nprobe": 10,
        "train_size": 4000,
        "seed": 0,
    }
    for index in ("ivf", "hnsw"):
        result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, index=index)
        assert recall(result, exact) >= 0.95, index
        assert np.all(result.distances >= exact.distances - 1e-9), index  # never closer
        assert np.mean(result.distances / exact.distances) <= 1.01, index
        np.testing.assert_array_equal(
            result.labels, Y_labeled[result.neighbors], err_msg=index
        )  # the labels are those of the neighbour found


def test_ivf_recall_grows_with_nprobe() -> None:
    """nprobe reaches the index: one cell misses neighbours that every cell finds."""
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(2, 2000, 400)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    recalls = [
        recall(
            propagate_labels(
                X_labeled,
                Y_labeled,
                X_unlabeled,
                index="ivf",
                index_params={"nlist": 40, "nprobe": nprobe},
            ),
            exact,
        )
        for nprobe in (1, 4, 40)
    ]
    assert recalls[0] < recalls[1] <= recalls[2] == 1.0
    assert recalls[0] >= 0.5  # one cell of 40 still holds most neighbours


def test_hnsw_searching_the_whole_small_graph_is_the_exact_search() -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(3, 300, 200)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    hnsw = propagate_labels(
        X_labeled, Y_labeled, X_unlabeled, index="hnsw", index_params={"ef_search": 300}
    )
    assert_same_result(hnsw, exact)


def test_approximate_search_on_tensors_with_an_offset() -> None:
    """Tensors in, tensors out; the index works on the centred features, so a large shared
    offset (raw ReLU features) does not hurt it."""
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(4, 800, 300)
    offset = np.full(X_labeled.shape[1], 300.0, dtype=np.float32)
    exact = propagate_labels(X_labeled + offset, Y_labeled, X_unlabeled + offset, backend="faiss")
    result = propagate_labels(
        torch.from_numpy(X_labeled + offset),
        torch.from_numpy(Y_labeled),
        torch.from_numpy(X_unlabeled + offset),
        index="ivf",
        index_params={"nlist": 8, "nprobe": 8},
    )
    assert isinstance(result.neighbors, torch.Tensor)
    np.testing.assert_array_equal(result.neighbors.numpy(), exact.neighbors)
    np.testing.assert_array_equal(result.distances.numpy(), exact.distances)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_approximate_search_of_cuda_tensors_runs_on_the_cpu_and_answers_on_cuda() -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(11, 800, 300)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    device = torch.device("cuda")
    result = propagate_labels(
        torch.from_numpy(X_labeled).to(device),
        torch.from_numpy(Y_labeled).to(device),
        torch.from_numpy(X_unlabeled).to(device),
        index="ivf",
        index_params={"nlist": 8, "nprobe": 8},
    )
    assert result.neighbors.device.type == "cuda"
    np.testing.assert_array_equal(result.neighbors.cpu().numpy(), exact.neighbors)
    np.testing.assert_allclose(result.distances.cpu().numpy(), exact.distances, rtol=1e-12)


def test_a_query_the_index_finds_nothing_for_is_searched_exactly(monkeypatch) -> None:
    """An IVF query whose visited cells are empty gets -1 from FAISS: such rows are searched
    exactly rather than given labeled row -1 (the last one)."""
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(5, 500, 200)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")

    class MissingEveryThirdRow:
        def __init__(self, dim: int) -> None:
            self.index, self.seen = faiss.IndexFlatL2(dim), 0

        def add(self, rows: np.ndarray) -> None:
            self.index.add(rows)

        def search(self, queries: np.ndarray, k: int):
            distances, found = self.index.search(queries, k)
            rows = self.seen + np.arange(len(queries))
            found[rows % 3 == 0] = -1
            self.seen += len(queries)
            return distances, found

    monkeypatch.setattr(
        FaissIVF,
        "build",
        lambda self, faiss, labeled, center, device: (
            MissingEveryThirdRow(labeled.shape[1]),
            None,
        ),
    )
    result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="ivf", chunk_size=64)
    assert_same_result(result, exact)


# ---------------------------------------------------------------------------------------
# Reproducibility and sharding
# ---------------------------------------------------------------------------------------


def test_seeded_ivf_runs_are_reproducible() -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(6, 3000, 400)
    params = {"nlist": 50, "nprobe": 2, "train_size": 2000, "seed": 7}
    first = propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="ivf", index_params=params)
    second = propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="ivf", index_params=params)
    assert_same_result(second, first)
    chunked = propagate_labels(
        X_labeled, Y_labeled, X_unlabeled, index="ivf", index_params=params, chunk_size=33
    )
    assert_same_result(chunked, first)
    exact = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    assert recall(first, exact) < 1.0  # 2 cells of 50: an approximate search, yet repeatable


@pytest.mark.slow
def test_two_processes_building_the_same_ivf_index_give_the_single_process_result(
    tmp_path,
) -> None:
    """Each process trains the IVF index on the same labeled features with the same seed:
    the index, and so every row and the temperature, are the single process's."""

    X_labeled, Y_labeled, X_unlabeled = latent_clusters(7, 1000, 301)
    labeled, labels = torch.from_numpy(X_labeled), torch.from_numpy(Y_labeled).float()
    unlabeled = torch.from_numpy(X_unlabeled)
    params = {"nlist": 20, "nprobe": 2}
    assert_two_shards_give_the_whole(
        tmp_path, labeled, labels, unlabeled, index="ivf", index_params=params
    )


# ---------------------------------------------------------------------------------------
# Settings: defaults and checks
# ---------------------------------------------------------------------------------------


def test_default_settings_follow_the_labeled_count() -> None:
    assert index_settings("exact", None, 10) == {}
    assert index_settings("ivf", None, 200_000) == {
        "nlist": 1789,  # 4 sqrt(l)
        "nprobe": 42,  # sqrt(nlist)
        "train_size": 114_496,  # 64 per cell
        "seed": 0,
    }
    assert index_settings("ivf", None, 10**6)["nlist"] == 4000
    # small sets: at most l // 39 cells (k-means's minimum of points per cell), at least 1
    assert index_settings("ivf", None, 1000) == {
        "nlist": 25,
        "nprobe": 5,
        "train_size": 1000,
        "seed": 0,
    }
    assert index_settings("ivf", None, 10)["nlist"] == 1
    assert index_settings("ivf", {"nlist": 100}, 10**4)["nprobe"] == 10
    assert index_settings("hnsw", {"m": 8}, 10) == {"m": 8, "ef_search": 64, "ef_construction": 40}
    assert index_settings("ivf", {"nprobe": 3}) == {"nprobe": 3}  # names only, without l


@pytest.mark.parametrize(
    ("index", "params", "message"),
    [
        ("annoy", None, "index must be one of 'exact', 'ivf', 'hnsw'; got 'annoy'"),
        ("ivf", {"nprobe": 0}, r"index_params\['nprobe'\] must be an integer >= 1; got 0"),
        ("ivf", {"nprobe": -2}, r"index_params\['nprobe'\] must be an integer >= 1; got -2"),
        ("ivf", {"nprobe": 2.5}, r"index_params\['nprobe'\] must be an integer >= 1; got 2.5"),
        ("ivf", {"nlist": 0}, r"index_params\['nlist'\] must be an integer >= 1"),
        (
            "ivf",
            {"nlist": 201},
            r"index_params\['nlist'\] must be <= the number of labeled samples \(200\)",
        ),
        ("ivf", {"nlist": 10, "nprobe": 11}, r"index_params\['nprobe'\] must be <= nlist \(10\)"),
        ("ivf", {"nprobe": 6}, r"index_params\['nprobe'\] must be <= nlist \(5\)"),
        (
            "ivf",
            {"nlist": 10, "train_size": 9},
            r"index_params\['train_size'\] must lie in \[nlist, l\] = \[10, 200\]",
        ),
        ("ivf", {"seed": -1}, r"index_params\['seed'\] must be an integer >= 0"),
        (
            "ivf",
            {"nprob": 3},
            "index='ivf' takes nlist, nprobe, train_size, seed; got unknown nprob",
        ),
        ("hnsw", {"nprobe": 3}, "index='hnsw' takes m, ef_search, ef_construction; got unknown"),
        ("hnsw", {"m": 1}, r"index_params\['m'\] must be an integer >= 2"),
        ("hnsw", {"ef_search": 0}, r"index_params\['ef_search'\] must be an integer >= 1"),
        ("exact", {"nprobe": 3}, "index='exact' takes no settings; got unknown nprobe"),
    ],
)
def test_bad_settings_are_named(index, params, message) -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(8, 200, 20)
    with pytest.raises(ValueError, match=message):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, index=index, index_params=params)


def test_an_approximate_index_needs_faiss(monkeypatch) -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(9, 200, 20)
    message = "index='ivf' is an approximate FAISS index: it needs backend='faiss' or 'auto'"
    with pytest.raises(ValueError, match=message):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", index="ivf")
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(ImportError, match="index='hnsw' needs the faiss package"):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="hnsw")


def test_progress_bar_names_the_index(capsys) -> None:
    X_labeled, Y_labeled, X_unlabeled = latent_clusters(10, 200, 20)
    propagate_labels(X_labeled, Y_labeled, X_unlabeled, index="hnsw", progress=True)
    assert "propagate_labels (faiss, hnsw)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# From the trainer and the command line
# ---------------------------------------------------------------------------------------


def test_the_command_line_sets_the_index_of_the_label_refresh(monkeypatch, capsys) -> None:
    import rmlc.train
    from rmlc.cli import main

    configs = []

    def fake_run(config):
        configs.append(config)
        return {"mAP": 50.0, "best_epoch": 1}

    monkeypatch.setattr(rmlc.train, "run", fake_run)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    flags = ["--semi-supervised", "--propagation-index", "ivf"]
    try:
        assert main(["train", *flags, "--propagation-index-params", "{nlist: 9, nprobe: 3}"]) == 0
    finally:  # `rmlc train` leaves its signal handlers installed (the process ends after it)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert configs[0].propagation_index == "ivf"
    assert configs[0].propagation_index_params == {"nlist": 9, "nprobe": 3}
    capsys.readouterr()
    # a bad setting stops the command before training, naming the problem
    assert main(["train", *flags, "--propagation-index-params", "{nprobe: 0}"]) == 2
    assert "index_params['nprobe'] must be an integer >= 1; got 0" in capsys.readouterr().err
    assert len(configs) == 1


def test_config_checks_the_index_settings(monkeypatch) -> None:
    from rmlc.train import TrainConfig

    assert TrainConfig().propagation_index == "exact"
    with pytest.raises(ValueError, match="config: propagation_index.*got 'ivff'"):
        TrainConfig(propagation_index="ivff")
    with pytest.raises(ValueError, match=r"index_params\['nprobe'\] must be an integer >= 1"):
        TrainConfig(propagation_index="ivf", propagation_index_params={"nprobe": 0})
    with pytest.raises(ValueError, match="takes m, ef_search, ef_construction; got unknown nlist"):
        TrainConfig(propagation_index="hnsw", propagation_index_params={"nlist": 4})
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "faiss" else real_find_spec(name, *args),
    )
    with pytest.raises(ValueError, match="propagation_index 'hnsw' needs the faiss package"):
        TrainConfig(semi_supervised=True, propagation_index="hnsw")
