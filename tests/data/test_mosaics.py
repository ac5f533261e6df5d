"""Multi-label mosaics: construction, split hygiene, determinism, co-occurrence, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from rmlc.data import (
    FASHION_MNIST_CLASSES,
    OUTFIT_PRIOR,
    CooccurrencePrior,
    Theme,
    fashion_mosaic,
    format_statistics,
    load_embedded_fashion_mnist,
    make_mosaics,
    mosaic_statistics,
)
from rmlc.data.mosaics import theme_summary

TROUSER, DRESS, SANDAL, SNEAKER, BAG = 1, 3, 5, 7, 8


def tiny_images(n: int = 60, classes: int = 5, channels: int | None = None, seed: int = 0):
    """Distinct random images (never all black) with balanced labels."""
    rng = np.random.default_rng(seed)
    shape = (n, 4, 3) if channels is None else (n, channels, 4, 3)
    images = rng.integers(1, 256, size=shape, dtype=np.uint8)
    return images, np.arange(n) % classes


def cells_of(mosaics: np.ndarray, grid: int) -> np.ndarray:
    """Split ``(n, C, grid*H, grid*W)`` mosaics into ``(n, grid*grid, C, H, W)`` cells."""
    n, c, height, width = mosaics.shape
    h, w = height // grid, width // grid
    return (
        mosaics.reshape(n, c, grid, h, grid, w)
        .transpose(0, 2, 4, 1, 3, 5)
        .reshape(n, grid * grid, c, h, w)
    )


def lift(targets: np.ndarray, a: int, b: int) -> float:
    t = targets.astype(bool)
    return float((t[:, a] & t[:, b]).mean() / (t[:, a].mean() * t[:, b].mean()))


@pytest.fixture(scope="module")
def fashion_train() -> tuple[np.ndarray, np.ndarray]:
    return fashion_mosaic("train")


@pytest.mark.parametrize("grid", [1, 2, 3])
@pytest.mark.parametrize("channels", [None, 3])
def test_mosaics_match_their_cells_by_construction(grid: int, channels: int | None) -> None:
    images, labels = tiny_images(channels=channels)
    prior = CooccurrencePrior(themes=[[(0, 1), 2], [3, (4,)]], theme_probability=0.5)
    mosaics, targets, sources = make_mosaics(
        images, labels, 200, grid=grid, seed=3, prior=prior, return_sources=True
    )
    c = 1 if channels is None else channels
    assert mosaics.shape == (200, c, grid * 4, grid * 3) and mosaics.dtype == np.uint8
    assert targets.shape == (200, 5) and targets.dtype == np.uint8
    assert sources.shape == (200, grid * grid)
    assert set(np.unique(targets)) <= {0, 1}
    items = (sources >= 0).sum(axis=1)
    assert items.min() >= 1 and items.max() <= grid * grid
    cells = cells_of(mosaics, grid)
    images4 = images[:, None] if channels is None else images
    for i in range(200):
        present = {int(labels[s]) for s in sources[i] if s >= 0}
        assert set(np.flatnonzero(targets[i]).tolist()) == present
        for k, s in enumerate(sources[i]):
            expected = images4[s] if s >= 0 else np.zeros_like(images4[0])
            np.testing.assert_array_equal(cells[i, k], expected)


def test_uniform_mosaics_use_every_cell_count() -> None:
    images, labels = tiny_images()
    _, targets, sources = make_mosaics(images, labels, 2000, seed=1, return_sources=True)
    counts = np.bincount((sources >= 0).sum(axis=1), minlength=5)
    assert counts[0] == 0 and (counts[1:] > 0).all()
    assert targets.sum(axis=1).min() >= 1


def test_make_mosaics_is_deterministic_for_a_seed() -> None:
    images, labels = tiny_images()
    first = make_mosaics(images, labels, 50, seed=7, prior=None)
    again = make_mosaics(images, labels, 50, seed=7)
    other = make_mosaics(images, labels, 50, seed=8)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_fashion_mosaic_shapes_and_defaults(fashion_train) -> None:
    images, targets = fashion_train
    assert images.shape == (4000, 1, 56, 56) and images.dtype == np.uint8
    assert targets.shape == (4000, 10) and targets.dtype == np.uint8
    test_images, test_targets = fashion_mosaic("test", n=300)
    assert test_images.shape == (300, 1, 56, 56) and test_targets.shape == (300, 10)
    per_image = targets.sum(axis=1)
    assert per_image.min() >= 1 and per_image.max() <= 4


def test_train_mosaics_never_contain_a_test_image(fashion_train) -> None:
    train_images, _ = load_embedded_fashion_mnist("train")
    test_images, _ = load_embedded_fashion_mnist("test")
    train_set = {image.tobytes() for image in train_images}
    test_set = {image.tobytes() for image in test_images}
    for mosaics, own, other in (
        (fashion_train[0], train_set, test_set),
        (fashion_mosaic("test")[0], test_set, train_set),
    ):
        cells = cells_of(mosaics, 2).reshape(-1, 28, 28)
        cells = cells[cells.reshape(len(cells), -1).any(axis=1)]  # skip empty cells
        blobs = {cell.tobytes() for cell in cells}
        assert blobs <= own
        assert not blobs & other


def test_fashion_mosaic_seeds(fashion_train) -> None:
    again = fashion_mosaic("train")
    np.testing.assert_array_equal(again[0], fashion_train[0])
    np.testing.assert_array_equal(again[1], fashion_train[1])
    other = fashion_mosaic("train", seed=1)
    assert not np.array_equal(other[1], fashion_train[1])
    # The cells' classes do not depend on the images, so equal seeds for train and test
    # would give equal targets: the splits derive different seeds from ``seed``.
    assert not np.array_equal(fashion_mosaic("test", n=200)[1], fashion_mosaic("train", n=200)[1])


def test_outfit_prior_creates_label_correlations(fashion_train) -> None:
    _, targets = fashion_train
    assert lift(targets, TROUSER, SNEAKER) > 1.4
    assert lift(targets, DRESS, SANDAL) > 1.5
    assert lift(targets, DRESS, BAG) > 1.2
    assert lift(targets, TROUSER, DRESS) < 0.4
    images, labels = load_embedded_fashion_mnist("train")
    _, uniform = make_mosaics(images, labels, 4000, seed=0)
    # Without a prior no pair is special (a finite number of cells makes every lift < 1).
    uniform_lifts = [lift(uniform, TROUSER, SNEAKER), lift(uniform, TROUSER, DRESS)]
    assert max(uniform_lifts) < 1.0
    assert abs(uniform_lifts[0] - uniform_lifts[1]) < 0.2


def test_class_weights_of_random_cells() -> None:
    images, labels = tiny_images()
    prior = CooccurrencePrior(class_weights=(0, 0, 1, 0, 0))
    _, targets = make_mosaics(images, labels, 100, seed=0, prior=prior)
    assert targets[:, 2].all() and not np.delete(targets, 2, axis=1).any()


def test_bad_mosaic_arguments() -> None:
    images, labels = tiny_images()
    with pytest.raises(ValueError, match="60 images but 59 labels"):
        make_mosaics(images, labels[:-1], 5)
    with pytest.raises(ValueError, match="non-negative"):
        make_mosaics(images, labels - 1, 5)
    with pytest.raises(ValueError, match="empty_cell_probability"):
        make_mosaics(images, labels, 5, empty_cell_probability=1.5)
    with pytest.raises(ValueError, match="grid"):
        make_mosaics(images, labels, 5, grid=0)
    with pytest.raises(ValueError, match="uint8"):
        make_mosaics(images.astype(np.float32), labels, 5)
    with pytest.raises(ValueError, match=r"theme 'theme0' uses classes without images: 7"):
        make_mosaics(images, labels, 5, prior=CooccurrencePrior([[1, 7]], 0.5), num_classes=8)
    with pytest.raises(ValueError, match="required group"):
        Theme("optional only", ((1,), (2,)), (0.5, 0.5))
    with pytest.raises(ValueError, match="theme_probability"):
        CooccurrencePrior(themes=(), theme_probability=0.3)


def test_statistics_on_a_hand_made_matrix() -> None:
    targets = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1]])
    stats = mosaic_statistics(targets * 2 - 1, ["a", "b", "c"], min_count=1)
    assert stats["n_images"] == 4 and stats["labels_per_image"] == [0, 2, 2]
    assert stats["class_counts"] == [3, 2, 1]
    assert stats["cooccurrence"] == [[3, 2, 0], [2, 2, 0], [0, 0, 1]]
    top = stats["top_pairs"][0]
    assert top["names"] == ["a", "b"] and top["count"] == 2
    assert top["lift"] == pytest.approx((2 / 4) / ((3 / 4) * (2 / 4)))
    text = format_statistics(stats)
    assert "a + b" in text and "Labels per image" in text and "Class frequencies" in text


def test_statistics_of_fashion_mosaics(fashion_train) -> None:
    stats = mosaic_statistics(fashion_train[1], FASHION_MNIST_CLASSES)
    assert sum(stats["labels_per_image"]) == 4000
    assert stats["top_pairs"][0]["lift"] > 1.4
    assert stats["bottom_pairs"][0]["lift"] < 0.4
    assert "Trouser" in format_statistics(stats)
    assert "outfit" in theme_summary(OUTFIT_PRIOR, FASHION_MNIST_CLASSES)
    with pytest.raises(ValueError, match="class_names"):
        mosaic_statistics(fashion_train[1], ["x"])
