"""Tests of rmlc.propagation against a brute-force loop, across backends, chunks and types."""

from __future__ import annotations

import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch

import rmlc.propagation.chunks as chunks
import rmlc.propagation.search as search
from rmlc.propagation import Propagation, chunk_layout, propagate_labels
from rmlc.propagation.search import faiss_flat, torch_exact
from tests.sharding import (
    assert_two_labeled_shards_give_the_whole,
    assert_two_shards_give_the_whole,
    errors_when_one_process_has_bad_input,
)

try:
    import faiss
except ImportError:  # pragma: no cover - faiss is a test dependency
    faiss = None

needs_faiss = pytest.mark.skipif(faiss is None, reason="faiss is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
BACKENDS = [pytest.param("faiss", marks=needs_faiss), "torch"]


def brute_force(X_labeled: np.ndarray, X_unlabeled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest labeled row of each unlabeled row, literally: a loop, float64 norms, first min."""
    labeled = np.asarray(X_labeled, dtype=np.float64)
    neighbors, distances = [], []
    for row in np.asarray(X_unlabeled, dtype=np.float64):
        norms = np.linalg.norm(labeled - row, axis=1)
        nearest = int(np.argmin(norms))  # the first of equal minima
        neighbors.append(nearest)
        distances.append(norms[nearest])
    return np.array(neighbors, dtype=np.int64), np.array(distances)


def second_gap(X_labeled: np.ndarray, X_unlabeled: np.ndarray) -> np.ndarray:
    """Per unlabeled row, second-smallest minus smallest distance (0 on exact ties)."""
    labeled = np.asarray(X_labeled, dtype=np.float64)
    gaps = []
    for row in np.asarray(X_unlabeled, dtype=np.float64):
        norms = np.sort(np.linalg.norm(labeled - row, axis=1))
        gaps.append(norms[1] - norms[0] if len(norms) > 1 else np.inf)
    return np.array(gaps)


def clustered_case(seed: int, n_labeled: int = 60, n_unlabeled: int = 90, dim: int = 12):
    """Features around a few centres, {0, 1} labels (l, 5)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(4, dim))
    X_labeled = centres[rng.integers(4, size=n_labeled)] + rng.normal(size=(n_labeled, dim))
    X_unlabeled = centres[rng.integers(4, size=n_unlabeled)] + rng.normal(size=(n_unlabeled, dim))
    Y_labeled = (rng.random((n_labeled, 5)) < 0.3).astype(np.int64)
    return X_labeled.astype(np.float32), Y_labeled, X_unlabeled.astype(np.float32)


def assert_same_result(got: Propagation, expected: Propagation) -> None:
    for field in ("labels", "weights", "neighbors", "distances"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)
    assert got.t == expected.t


# ---------------------------------------------------------------------------------------
# Against the brute-force loop
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed: int, backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(seed, dim=4 + 7 * seed)
    neighbors, distances = brute_force(X_labeled, X_unlabeled)
    result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend=backend)

    # Neighbours closer to each other than float32 rounding could go either way.
    clear = second_gap(X_labeled, X_unlabeled) > 1e-4 * distances.max()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(result.neighbors[clear], neighbors[clear])
    np.testing.assert_allclose(result.distances, distances, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(result.labels, Y_labeled[result.neighbors])
    assert result.t == pytest.approx(distances.mean(), rel=1e-12)
    np.testing.assert_allclose(result.weights, np.exp(-distances / distances.mean()), rtol=1e-6)
    assert ((result.weights > 0) & (result.weights <= 1)).all()
    assert result.neighbors.dtype == np.int64
    assert result.distances.dtype == np.float64
    assert result.weights.dtype == np.float32


@pytest.mark.parametrize("seed", range(4))
def test_backends_agree(seed: int) -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(100 + seed)
    X_labeled = rng.normal(size=(300, 64)).astype(np.float32)
    X_unlabeled = rng.normal(size=(400, 64)).astype(np.float32)
    Y_labeled = rng.integers(0, 2, size=(300, 3))
    by_faiss = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
    by_torch = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", chunk_size=37)
    # Ties aside: rows whose two nearest are closer than float32 rounding may differ.
    clear = second_gap(X_labeled, X_unlabeled) > 1e-5 * by_faiss.distances
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(by_torch.neighbors[clear], by_faiss.neighbors[clear])
    np.testing.assert_allclose(by_torch.distances, by_faiss.distances, rtol=1e-6)
    if clear.all():
        assert_same_result(by_torch, by_faiss)


@pytest.mark.parametrize("seed", range(4))
def test_ties_go_to_the_lowest_labeled_index(seed: int, monkeypatch) -> None:
    rng = np.random.default_rng(seed)
    distinct = rng.normal(size=(15, 10)).astype(np.float32)
    X_labeled = distinct[rng.integers(15, size=120)]  # every vector several times
    X_unlabeled = rng.normal(size=(80, 10)).astype(np.float32)
    X_unlabeled[:30] = X_labeled[rng.integers(120, size=30)]  # exact copies: distance 0
    neighbors, distances = brute_force(X_labeled, X_unlabeled)
    Y_labeled = np.arange(120)

    result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch")
    np.testing.assert_array_equal(result.neighbors, neighbors)
    # Small labeled blocks too: a tie across blocks keeps the earlier block.
    monkeypatch.setattr(chunks, "TILE_ELEMENTS", 96)
    assert chunk_layout(80, 120, 10, 16) == (16, 6)
    blocked = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", chunk_size=16)
    np.testing.assert_array_equal(blocked.neighbors, neighbors)
    np.testing.assert_array_equal(blocked.distances[:30], 0.0)
    if faiss is not None:  # faiss promises no tie rule: any of the equally near rows
        by_faiss = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")
        np.testing.assert_array_equal(X_labeled[by_faiss.neighbors], X_labeled[neighbors])
        np.testing.assert_allclose(by_faiss.distances, distances, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------------------
# Temperature and weights
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("t", "expected_t"),
    [
        ("mean", lambda d, n_l, n_u: d.mean()),
        ("authors", lambda d, n_l, n_u: d.mean() * n_u / (n_l + n_u)),
        (0.7, lambda d, n_l, n_u: 0.7),
        (3, lambda d, n_l, n_u: 3.0),
        (np.float32(2.5), lambda d, n_l, n_u: 2.5),
    ],
)
def test_temperature_choices(t, expected_t, backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(7, n_labeled=40, n_unlabeled=70)
    _, distances = brute_force(X_labeled, X_unlabeled)
    result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, t=t, backend=backend)
    t_used = expected_t(distances, 40, 70)
    assert isinstance(result.t, float)
    assert result.t == pytest.approx(t_used, rel=1e-12)
    np.testing.assert_allclose(result.weights, np.exp(-distances / t_used), rtol=1e-6)
    assert ((result.weights > 0) & (result.weights <= 1)).all()


def test_out_of_distribution_cluster_gets_lower_weights() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(3, 16))
    X_labeled = centres[rng.integers(3, size=90)] + rng.normal(size=(90, 16))
    in_distribution = centres[rng.integers(3, size=60)] + rng.normal(size=(60, 16))
    out_of_distribution = 40.0 + rng.normal(size=(20, 16))  # far from every labeled sample
    X_unlabeled = np.concatenate([in_distribution, out_of_distribution])
    Y_labeled = rng.integers(0, 2, size=(90, 4))
    for t in ("mean", "authors", 5.0):
        weights = propagate_labels(X_labeled, Y_labeled, X_unlabeled, t=t).weights
        assert weights[60:].max() < weights[:60].min()
        assert (weights > 0).all()


def test_very_far_samples_keep_a_positive_weight() -> None:
    X_labeled = np.zeros((3, 2), dtype=np.float32)
    X_unlabeled = np.array([[0.0, 0.1], [1e6, 0.0]], dtype=np.float32)
    result = propagate_labels(X_labeled, np.ones((3, 1)), X_unlabeled, t=0.1)
    assert result.weights[1] == np.finfo(np.float32).tiny  # exp(-1e7) floored, not 0
    assert result.weights[0] == pytest.approx(math.exp(-1.0))


@pytest.mark.parametrize("t", ["mean", "authors"])
def test_all_distances_zero_gives_t_zero_and_weights_one(t: str) -> None:
    X_labeled = np.array([[1.0, 2.0], [3.0, 4.0]])
    X_unlabeled = X_labeled[[1, 0, 1]]
    result = propagate_labels(X_labeled, np.array([[1, 0], [0, 1]]), X_unlabeled, t=t)
    assert result.t == 0.0
    np.testing.assert_array_equal(result.weights, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(result.neighbors, [1, 0, 1])


# ---------------------------------------------------------------------------------------
# Chunks and blocks
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chunk_size", [1, 3, 17, 89, None])
def test_chunking_gives_the_one_chunk_result(chunk_size, backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(11)
    whole = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend=backend, chunk_size=90)
    chunked = propagate_labels(
        X_labeled, Y_labeled, X_unlabeled, backend=backend, chunk_size=chunk_size
    )
    assert_same_result(chunked, whole)


@pytest.mark.parametrize("tile_elements", [10, 48, 112, 400])
def test_labeled_blocks_smaller_than_the_labeled_set(tile_elements: int, monkeypatch) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(12)
    whole = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", chunk_size=90)
    monkeypatch.setattr(chunks, "TILE_ELEMENTS", tile_elements)
    chunk_rows, block_rows = chunk_layout(90, 60, 12, 16)
    assert chunk_rows == 16
    assert block_rows == max(1, tile_elements // 16) < 60  # both sets are cut
    blocked = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", chunk_size=16)
    assert_same_result(blocked, whole)
    neighbors, _ = brute_force(X_labeled, X_unlabeled)
    np.testing.assert_array_equal(blocked.neighbors, neighbors)


def test_default_layout_makes_a_64_mib_tile() -> None:
    chunk_rows, block_rows = chunk_layout(200_000, 20_000, 512)
    assert block_rows == 20_000  # the whole labeled set in one block
    assert 60 * 2**20 <= chunk_rows * block_rows * 4 <= 64 * 2**20
    chunk_rows, block_rows = chunk_layout(10**7, 10**6, 512)  # a large labeled set is cut
    assert chunk_rows == 512
    assert block_rows < 10**6
    assert chunk_rows * block_rows * 4 == 64 * 2**20
    assert chunk_layout(10, 20_000, 512) == (10, 20_000)  # small sets: one chunk
    assert chunk_layout(0, 5, 3) == (1, 5)


def test_default_faiss_chunks_hold_64_mib_of_queries() -> None:
    assert chunk_layout(200_000, 20_000, 512, backend="faiss") == (32_768, 20_000)
    assert chunk_layout(200_000, 20_000, 10**5, backend="faiss") == (4096, 20_000)
    assert chunk_layout(1000, 20_000, 512, backend="faiss") == (1000, 20_000)
    assert chunk_layout(200_000, 20_000, 512, 100, backend="faiss") == (100, 20_000)


# ---------------------------------------------------------------------------------------
# Types: tensors, label encodings, odd arrays
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensors_in_tensors_out(backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(21)
    expected = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend=backend)
    result = propagate_labels(
        torch.from_numpy(X_labeled).requires_grad_(True),
        torch.from_numpy(Y_labeled).to(torch.uint8),
        torch.from_numpy(X_unlabeled),
        backend=backend,
    )
    assert isinstance(result.labels, torch.Tensor)
    assert result.labels.dtype == torch.uint8
    assert result.weights.dtype == torch.float32
    assert result.neighbors.dtype == torch.int64
    assert result.distances.dtype == torch.float64
    for field in ("labels", "weights", "neighbors", "distances"):
        np.testing.assert_array_equal(
            getattr(result, field).numpy(), getattr(expected, field), err_msg=field
        )


def test_result_follows_x_unlabeled_when_types_are_mixed() -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(22)
    expected = propagate_labels(X_labeled, Y_labeled, X_unlabeled)
    as_array = propagate_labels(
        torch.from_numpy(X_labeled), torch.from_numpy(Y_labeled), X_unlabeled
    )
    assert isinstance(as_array.labels, np.ndarray)
    assert isinstance(as_array.weights, np.ndarray)
    assert_same_result(as_array, expected)
    as_tensor = propagate_labels(X_labeled, Y_labeled, torch.from_numpy(X_unlabeled))
    assert isinstance(as_tensor.labels, torch.Tensor)
    assert as_tensor.labels.dtype == torch.int64
    np.testing.assert_array_equal(as_tensor.labels.numpy(), expected.labels)


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "faiss", "torch"])
def test_cuda_tensors_in_cuda_tensors_out(backend: str) -> None:
    if backend == "faiss" and faiss is None:
        pytest.skip("faiss is not installed")
    X_labeled, Y_labeled, X_unlabeled = clustered_case(23)
    expected = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch")
    device = torch.device("cuda")
    result = propagate_labels(
        torch.from_numpy(X_labeled).to(device),
        torch.from_numpy(Y_labeled).to(device),
        torch.from_numpy(X_unlabeled).to(device),
        backend=backend,
        chunk_size=16,
    )
    for field in ("labels", "weights", "neighbors", "distances"):
        value = getattr(result, field)
        assert value.device.type == "cuda", field
    np.testing.assert_array_equal(result.neighbors.cpu().numpy(), expected.neighbors)
    np.testing.assert_array_equal(result.labels.cpu().numpy(), expected.labels)
    np.testing.assert_allclose(result.distances.cpu().numpy(), expected.distances, rtol=1e-12)
    np.testing.assert_allclose(result.weights.cpu().numpy(), expected.weights, rtol=1e-6)


@pytest.fixture
def reduced_matmul_precision():
    """``torch.set_float32_matmul_precision("medium")``: TF32 on CUDA, bf16 in oneDNN."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    yield
    torch.set_float32_matmul_precision(previous)


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_search_runs_in_ieee_float32_and_restores_the_setting(
    device: str, reduced_matmul_precision
) -> None:
    backend = torch.backends.cuda.matmul if device == "cuda" else torch.backends.mkldnn.matmul
    before = backend.fp32_precision
    assert before != "ieee"
    with torch_exact.ieee_float32_matmul(torch.device(device)):
        assert backend.fp32_precision == "ieee"
    assert backend.fp32_precision == before
    assert torch.get_float32_matmul_precision() == "medium"  # still a consistent setting


def offset_case(seed: int):
    """Features far from the origin (norm ~100, distances ~5): float32 products are needed."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(size=16) * 25
    X_labeled = (offset + rng.normal(size=(80, 16))).astype(np.float32)
    X_unlabeled = (offset + rng.normal(size=(120, 16))).astype(np.float32)
    return X_labeled, rng.integers(0, 2, size=(80, 3)), X_unlabeled


@pytest.mark.parametrize("backend", BACKENDS)
def test_features_far_from_the_origin(backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = offset_case(25)
    neighbors, distances = brute_force(X_labeled, X_unlabeled)
    clear = second_gap(X_labeled, X_unlabeled) > 1e-2
    assert clear.mean() > 0.8
    result = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend=backend)
    np.testing.assert_array_equal(result.neighbors[clear], neighbors[clear])
    np.testing.assert_allclose(result.distances, distances, rtol=1e-3)  # near-ties: either


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(3))
def test_a_large_shared_offset_does_not_change_the_neighbours(backend: str, seed: int) -> None:
    """Raw ReLU features share a large offset. Ranked by ||y||^2 - 2 x.y in float32, an
    offset of norm 800 made the search pick a farther neighbour for ~1% of rows; centred on
    the labeled mean, it is exact wherever the two nearest distances differ by more than
    float32 can resolve (here: every row)."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(size=64)
    offset *= 800 / np.linalg.norm(offset)
    X_labeled = (rng.normal(size=(500, 64)) + offset).astype(np.float32)
    X_unlabeled = (rng.normal(size=(300, 64)) + offset).astype(np.float32)
    neighbors, distances = brute_force(X_labeled, X_unlabeled)
    resolvable = second_gap(X_labeled, X_unlabeled) > 1e-5 * distances
    assert resolvable.all()
    result = propagate_labels(X_labeled, np.eye(500, 5), X_unlabeled, backend=backend)
    np.testing.assert_array_equal(result.neighbors, neighbors)
    np.testing.assert_allclose(result.distances, distances, rtol=1e-12)


@needs_cuda
def test_cuda_search_is_float32_under_tf32(reduced_matmul_precision) -> None:
    X_labeled, Y_labeled, X_unlabeled = offset_case(24)
    neighbors, _ = brute_force(X_labeled, X_unlabeled)
    clear = second_gap(X_labeled, X_unlabeled) > 1e-2
    assert clear.mean() > 0.8
    device = torch.device("cuda")
    result = propagate_labels(
        torch.from_numpy(X_labeled).to(device),
        Y_labeled,
        torch.from_numpy(X_unlabeled).to(device),
        backend="torch",
    )
    np.testing.assert_array_equal(result.neighbors.cpu().numpy()[clear], neighbors[clear])


def test_class_labels_1d() -> None:
    X_labeled, _, X_unlabeled = clustered_case(31)
    classes = np.random.default_rng(31).integers(0, 7, size=60)
    result = propagate_labels(X_labeled, classes, X_unlabeled)
    assert result.labels.shape == (90,)
    np.testing.assert_array_equal(result.labels, classes[result.neighbors])
    names = np.array([f"class{c}" for c in classes])  # any 1-D values for NumPy output
    named = propagate_labels(X_labeled, names, X_unlabeled)
    np.testing.assert_array_equal(named.labels, names[result.neighbors])
    as_tensor = propagate_labels(
        X_labeled, torch.from_numpy(classes), torch.from_numpy(X_unlabeled)
    )
    np.testing.assert_array_equal(as_tensor.labels.numpy(), classes[result.neighbors])


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float64])
def test_signed_labels_are_kept(dtype) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(32)
    signed = (2 * Y_labeled - 1).astype(dtype)
    result = propagate_labels(X_labeled, signed, X_unlabeled)
    assert result.labels.dtype == dtype
    assert set(np.unique(result.labels)) <= {-1, 1}
    np.testing.assert_array_equal(result.labels, signed[result.neighbors])
    tensor = propagate_labels(X_labeled, torch.from_numpy(signed), torch.from_numpy(X_unlabeled))
    assert tensor.labels.dtype == torch.from_numpy(signed).dtype
    np.testing.assert_array_equal(tensor.labels.numpy(), signed[result.neighbors])


def test_bool_labels_and_odd_feature_arrays(tmp_path) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(33)
    expected = propagate_labels(X_labeled, Y_labeled, X_unlabeled)
    path = tmp_path / "unlabeled.npy"
    np.save(path, X_unlabeled.astype(np.float64))
    read_only = np.load(path, mmap_mode="r")  # a read-only memory map, float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = propagate_labels(X_labeled.tolist(), Y_labeled.astype(bool), read_only)
    np.testing.assert_array_equal(result.neighbors, expected.neighbors)
    np.testing.assert_array_equal(result.labels, Y_labeled.astype(bool)[expected.neighbors])
    reversed_rows = propagate_labels(X_labeled, Y_labeled, X_unlabeled[::-1])
    np.testing.assert_array_equal(reversed_rows.neighbors, expected.neighbors[::-1])
    integers = propagate_labels(np.eye(3, dtype=np.int64), np.eye(3), np.array([[0, 0, 5]]))
    assert integers.neighbors.tolist() == [2]
    assert integers.distances.tolist() == [4.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_and_float64_tensors(backend: str) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(34)
    for dtype in (torch.bfloat16, torch.float64):
        labeled = torch.from_numpy(X_labeled).to(dtype)
        unlabeled = torch.from_numpy(X_unlabeled).to(dtype)
        neighbors, distances = brute_force(labeled.double().numpy(), unlabeled.double().numpy())
        result = propagate_labels(labeled, Y_labeled, unlabeled, backend=backend, chunk_size=7)
        np.testing.assert_array_equal(result.neighbors.numpy(), neighbors)
        np.testing.assert_allclose(result.distances.numpy(), distances, rtol=1e-12)


def test_result_is_frozen() -> None:
    result = propagate_labels(np.zeros((1, 2)), np.ones((1, 1)), np.ones((2, 2)))
    with pytest.raises(AttributeError):
        result.t = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Progress, backends
# ---------------------------------------------------------------------------------------


def test_progress_bar(capsys, monkeypatch) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(41)
    propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", chunk_size=10)
    assert "propagate_labels" not in capsys.readouterr().err  # 60 x 90 pairs: no bar
    propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", progress=True)
    assert "propagate_labels (torch)" in capsys.readouterr().err
    monkeypatch.setattr(chunks, "AUTO_PROGRESS_PAIRS", 5000)  # 5400 pairs > 5000
    propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch")
    assert "90/90" in capsys.readouterr().err
    propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch", progress=False)
    assert capsys.readouterr().err == ""


def test_auto_backend_without_faiss(monkeypatch) -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(42)
    expected = propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="torch")
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    assert_same_result(propagate_labels(X_labeled, Y_labeled, X_unlabeled), expected)
    with pytest.raises(ImportError, match="backend='faiss' needs the faiss package"):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="faiss")


class _FakeGpuFaiss(types.SimpleNamespace):
    """Stands in for a GPU build of faiss: records the GPU index it is asked for."""

    def __init__(self) -> None:
        super().__init__(made=[])

    def StandardGpuResources(self):  # noqa: N802
        return "resources"

    def GpuIndexFlatConfig(self):  # noqa: N802
        return types.SimpleNamespace(device=None)

    def GpuIndexFlatL2(self, resources, dim, config):  # noqa: N802
        self.made.append((resources, dim, config.device))
        return "gpu index"

    def IndexFlatL2(self, dim):  # noqa: N802
        return "cpu index"


def test_faiss_gpu_index_is_used_for_cuda_data_when_faiss_has_gpu_support(monkeypatch) -> None:
    fake = _FakeGpuFaiss()
    index, resources = faiss_flat.faiss_flat_l2(fake, 8, torch.device("cuda", 1))
    assert (index, resources, fake.made) == ("gpu index", "resources", [("resources", 8, 1)])
    assert faiss_flat.faiss_flat_l2(fake, 8, torch.device("cpu")) == ("cpu index", None)
    if faiss is not None:  # faiss-cpu: no GPU index, the CUDA data is searched on the CPU
        _, no_resources = faiss_flat.faiss_flat_l2(faiss, 8, torch.device("cuda", 0))
        assert no_resources is None
    monkeypatch.setitem(sys.modules, "faiss", fake)
    assert search.resolve_backend("auto", torch.device("cuda", 0)) == "faiss"
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace())  # no GPU support
    assert search.resolve_backend("auto", torch.device("cuda", 0)) == "torch"
    assert search.resolve_backend("auto", torch.device("cpu")) == "faiss"
    assert search.resolve_backend("faiss", torch.device("cuda", 0)) == "faiss"


# ---------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("t", "expected_t"), [("mean", math.nan), ("authors", math.nan), (2.0, 2.0)]
)
def test_empty_unlabeled_set_gives_an_empty_result(t, expected_t, backend: str) -> None:
    X_labeled, Y_labeled, _ = clustered_case(51)
    result = propagate_labels(X_labeled, Y_labeled, np.empty((0, 12)), t=t, backend=backend)
    assert result.labels.shape == (0, 5)
    assert result.labels.dtype == Y_labeled.dtype
    for field in ("weights", "neighbors", "distances"):
        assert getattr(result, field).shape == (0,)
    assert result.t == expected_t or (math.isnan(result.t) and math.isnan(expected_t))
    tensor = propagate_labels(X_labeled, Y_labeled, torch.empty(0, 12), t=t, backend=backend)
    assert tuple(tensor.labels.shape) == (0, 5)


def test_errors_name_the_argument() -> None:
    X_labeled, Y_labeled, X_unlabeled = clustered_case(52)
    with pytest.raises(ValueError, match=r"X_labeled is empty \(shape \(0, 12\)\)"):
        propagate_labels(np.empty((0, 12)), np.empty((0, 5)), X_unlabeled)
    with pytest.raises(
        ValueError, match=r"X_labeled of shape \(60, 12\) and X_unlabeled of shape \(90, 11\)"
    ):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled[:, :11])
    with pytest.raises(
        ValueError, match=r"X_unlabeled must be a 2-D feature matrix .* shape \(90,\)"
    ):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled[:, 0])
    with pytest.raises(TypeError, match="X_labeled must be numeric"):
        propagate_labels(np.full((2, 2), "a"), np.ones((2, 1)), X_unlabeled[:, :2])

    bad = X_labeled.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"X_labeled contains NaN \(first at row 7\)"):
        propagate_labels(bad, Y_labeled, X_unlabeled)
    bad = X_unlabeled.copy()
    bad[40, 0] = -np.inf
    with pytest.raises(ValueError, match=r"X_unlabeled contains inf \(first at row 40\)"):
        propagate_labels(X_labeled, Y_labeled, bad)
    with pytest.raises(ValueError, match=r"X_unlabeled contains NaN \(first at row 40\)"):
        bad[40, 5] = np.nan  # NaN and inf on one row: NaN is named
        propagate_labels(X_labeled, Y_labeled, torch.from_numpy(bad))

    with pytest.raises(ValueError, match="Y_labeled has 59 rows but X_labeled has 60"):
        propagate_labels(X_labeled, Y_labeled[:59], X_unlabeled)
    with pytest.raises(ValueError, match=r"Y_labeled must hold values in \{0, 1\}.*\{0, 1, 2\}"):
        propagate_labels(X_labeled, Y_labeled + Y_labeled[:, :1], X_unlabeled)
    with pytest.raises(ValueError, match=r"Y_labeled must hold values .*found values \{-1, 0, 1\}"):
        propagate_labels(X_labeled, torch.from_numpy(Y_labeled - Y_labeled[::-1]), X_unlabeled)
    with pytest.raises(ValueError, match=r"Y_labeled must be a label matrix .* shape \(60, 5, 1\)"):
        propagate_labels(X_labeled, Y_labeled[..., None], X_unlabeled)
    with pytest.raises(TypeError, match="Y_labeled must be numeric to be returned as a tensor"):
        propagate_labels(X_labeled, np.array(["a"] * 60), torch.from_numpy(X_unlabeled))

    for t in ("median", 0, -1.0, math.inf, math.nan, True, None, "MEAN"):
        with pytest.raises(ValueError, match="t must be 'mean', 'authors' or a positive finite"):
            propagate_labels(X_labeled, Y_labeled, X_unlabeled, t=t)
    message = "backend must be one of 'auto', 'faiss', 'torch'; got 'gpu'"
    with pytest.raises(ValueError, match=message):
        propagate_labels(X_labeled, Y_labeled, X_unlabeled, backend="gpu")
    for chunk_size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be an integer >= 1 or None"):
            propagate_labels(X_labeled, Y_labeled, X_unlabeled, chunk_size=chunk_size)
    with pytest.raises(ValueError, match=r"no features \(d = 0\)"):
        propagate_labels(np.empty((3, 0)), np.ones((3, 1)), np.empty((2, 0)))


@pytest.mark.slow
def test_two_processes_each_searching_a_shard_give_the_single_process_result(tmp_path) -> None:
    """Each process holds all labeled features but a shard of the unlabeled ones; the rows
    come out exactly as one process computes them, temperature included."""

    generator = torch.Generator().manual_seed(3)
    offset = 40.0 * torch.ones(16)  # shared offset, as raw ReLU features have
    labeled = torch.randn(50, 16, generator=generator) + offset
    unlabeled = torch.randn(41, 16, generator=generator) + offset
    labels = (torch.rand(50, 5, generator=generator) < 0.3).float()
    assert_two_shards_give_the_whole(
        tmp_path, labeled, labels, unlabeled, t="authors", backend="torch"
    )


def test_shard_indices_must_name_one_row_per_sample() -> None:
    labeled, unlabeled = torch.randn(5, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="shard_indices must be 4 integer rows"):
        propagate_labels(labeled, torch.ones(5, 2), unlabeled, shard_indices=torch.arange(3))


# ---------------------------------------------------------------------------------------
# Sharded labeled set (labeled_shard_indices)
# ---------------------------------------------------------------------------------------


def labeled_with_copies(seed: int, n_labeled: int = 50, n_unlabeled: int = 41, dim: int = 16):
    """float32 tensors around a shared offset: labeled rows 30-39 copy rows 0-9, and
    unlabeled rows 0-7 copy labeled rows (exact ties at distance 0); otherwise random (no
    float32 near-ties)."""
    generator = torch.Generator().manual_seed(seed)
    offset = 40.0 * torch.ones(dim)
    labeled = torch.randn(n_labeled, dim, generator=generator) + offset
    labeled[30:40] = labeled[0:10]
    unlabeled = torch.randn(n_unlabeled, dim, generator=generator) + offset
    unlabeled[:8] = labeled[torch.tensor([0, 3, 31, 35, 39, 12, 44, 8])]
    return labeled, unlabeled, generator


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("t", ["mean", "authors"])
def test_one_labeled_shard_in_small_chunks_gives_the_whole_result(
    backend: str, t: str, monkeypatch
) -> None:
    """One process, its labeled shard in any order with arbitrary ids and repeated rows,
    broadcast in chunks of 7 rows: the result is the whole set's, neighbours as ids."""
    X_labeled, Y_labeled, X_unlabeled = clustered_case(61)
    X_labeled += 30.0  # a shared offset: the centre matters
    X_unlabeled += 30.0
    whole = propagate_labels(X_labeled, Y_labeled, X_unlabeled, t=t, backend=backend)
    ids = 1000 + 3 * np.arange(60)  # increasing with the position, not contiguous
    rows = np.concatenate([np.random.default_rng(0).permutation(60), [4, 17, 4]])  # repeats
    monkeypatch.setattr(chunks, "LABELED_CHUNK_BYTES", 7 * 4 * 12)
    sharded = propagate_labels(
        X_labeled[rows],
        Y_labeled[rows],
        X_unlabeled,
        t=t,
        backend=backend,
        shard_indices=np.arange(90),
        labeled_shard_indices=ids[rows],
    )
    np.testing.assert_array_equal(sharded.neighbors, ids[whole.neighbors])
    for field in ("labels", "weights", "distances"):
        np.testing.assert_array_equal(getattr(sharded, field), getattr(whole, field), field)
    assert sharded.t == whole.t  # "authors": l counts distinct ids, not the repeats


@pytest.mark.parametrize("chunk_rows", [3, 1000])
def test_labeled_shard_ties_go_to_the_lowest_id(chunk_rows: int, monkeypatch) -> None:
    """Exact copies among the labeled rows, whose ids are not in row order: inside a chunk
    and across chunks, the lowest id wins, as it would in a whole set ordered by id."""
    labeled, unlabeled, generator = labeled_with_copies(5)
    ids = torch.randperm(50, generator=generator) * 2 + 1
    labels = (torch.rand(50, 4, generator=generator) < 0.5).float()
    order = torch.argsort(ids)
    by_id = propagate_labels(labeled[order], labels[order], unlabeled, backend="torch")
    assert int((by_id.distances == 0).sum()) >= 8
    monkeypatch.setattr(chunks, "LABELED_CHUNK_BYTES", chunk_rows * 4 * 16)
    sharded = propagate_labels(
        labeled,
        labels,
        unlabeled,
        backend="torch",
        shard_indices=torch.arange(41),
        labeled_shard_indices=ids,
    )
    assert torch.equal(sharded.neighbors, ids[order][by_id.neighbors])
    assert torch.equal(sharded.labels, by_id.labels)
    assert torch.equal(sharded.distances, by_id.distances)
    assert sharded.t == by_id.t


def test_labeled_shard_tensors_and_bool_labels() -> None:
    """Tensors in, tensors out; bool, unsigned (which torch cannot assign by mask) and 1-D
    labels keep their dtype."""
    labeled, unlabeled, generator = labeled_with_copies(6)
    unsigned = torch.from_numpy((np.arange(100).reshape(50, 2) % 3 == 0).astype(np.uint32))
    for labels in (
        torch.rand(50, 3, generator=generator) < 0.5,
        torch.arange(50) * 10,
        torch.from_numpy(np.arange(50, dtype=np.uint16) * 7),
        unsigned,
    ):
        whole = propagate_labels(labeled, labels, unlabeled, backend="torch")
        sharded = propagate_labels(
            labeled,
            labels,
            unlabeled,
            backend="torch",
            shard_indices=torch.arange(41),
            labeled_shard_indices=torch.arange(50),
        )
        assert sharded.labels.dtype == labels.dtype
        assert torch.equal(sharded.labels, whole.labels)
        assert torch.equal(sharded.neighbors, whole.neighbors)


def test_labeled_shard_errors_name_the_problem() -> None:
    labeled, unlabeled = torch.randn(5, 3), torch.randn(4, 3)
    labels, ids, rows = torch.ones(5, 2), torch.arange(5), torch.arange(4)
    with pytest.raises(ValueError, match="labeled_shard_indices needs shard_indices"):
        propagate_labels(labeled, labels, unlabeled, labeled_shard_indices=ids)
    for index in ("ivf", "hnsw"):
        with pytest.raises(ValueError, match=f"index='{index}' cannot search a sharded labeled"):
            propagate_labels(
                labeled,
                labels,
                unlabeled,
                shard_indices=rows,
                labeled_shard_indices=ids,
                index=index,
            )
    for bad in (torch.arange(4), torch.arange(5.0), np.arange(10).reshape(5, 2)):
        with pytest.raises(ValueError, match="labeled_shard_indices must be 5 integer ids"):
            propagate_labels(
                labeled, labels, unlabeled, shard_indices=rows, labeled_shard_indices=bad
            )
    with pytest.raises(TypeError, match="Y_labeled must be numeric .* labeled samples are sharded"):
        propagate_labels(
            labeled,
            np.array(list("abcde")),
            unlabeled.numpy(),
            shard_indices=rows,
            labeled_shard_indices=ids,
        )
    with pytest.raises(ValueError, match="X_labeled is empty on every process"):
        propagate_labels(
            labeled[:0],
            labels[:0],
            unlabeled,
            shard_indices=rows,
            labeled_shard_indices=ids[:0],
        )


@pytest.mark.slow
def test_two_processes_each_holding_a_labeled_and_an_unlabeled_shard(tmp_path) -> None:
    """Both sides sharded over two gloo processes (one spawn for every case): uneven
    labeled shards, an empty one, repeats on both sides, several chunks per process,
    exact copies among the labeled rows across processes, "mean" and "authors", torch and
    faiss: every row and the temperature come out as one process computes them."""
    labeled, unlabeled, generator = labeled_with_copies(7)
    float_labels = (torch.rand(50, 5, generator=generator) < 0.3).float()
    ids = 7 + 3 * torch.arange(50)  # increasing: the lowest id is the lowest position
    odd = [*range(1, 50, 2), 0, 2]  # the padding repeats rows 0 and 2
    base = {"labeled": labeled, "unlabeled": unlabeled, "ids": ids, "chunk_bytes": 5 * 4 * 16}
    cases = [
        {
            **base,
            "labels": float_labels,
            "labeled_rows": (range(12), range(12, 50)),
            "options": {"t": "authors", "backend": "torch"},
        },
        {
            **base,
            "labels": ids,
            "labeled_rows": (range(50), []),
            "chunk_bytes": 2**26,
            "options": {"t": "mean", "backend": "torch"},
        },
        {
            **base,
            "labels": float_labels,
            "labeled_rows": (range(0, 50, 2), odd),
            "options": {"t": "authors", "backend": "torch"},
        },
    ]
    if faiss is not None:  # no exact copies: faiss promises no tie rule
        X_labeled, Y_labeled, X_unlabeled = (torch.from_numpy(a) for a in clustered_case(62))
        without_copies = {"labeled": X_labeled, "labels": Y_labeled, "unlabeled": X_unlabeled}
        without_copies |= {"ids": 2 * torch.arange(60), "chunk_bytes": 9 * 4 * 12}
        cases += [
            {
                **without_copies,
                "labeled_rows": ([], range(60)),
                "options": {"t": "mean", "backend": "faiss"},
            },
            {
                **without_copies,
                "labeled_rows": (range(40), range(35, 60)),
                "options": {"t": "authors", "backend": "faiss"},
            },
        ]
    assert_two_labeled_shards_give_the_whole(tmp_path, cases)


@pytest.mark.slow
def test_bad_input_on_one_process_stops_every_process(tmp_path) -> None:
    """A NaN in one process's labeled shard: that process names it, and the other, instead
    of waiting for it in a collective, raises naming the process and its error."""
    mine, other = errors_when_one_process_has_bad_input(tmp_path)[::-1]
    assert "X_labeled" in mine and "NaN" in mine
    assert other.startswith("label propagation stopped: process 1's input failed its checks")
    assert "NaN" in other
