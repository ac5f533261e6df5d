"""Multi-label image mosaics built from single-label images, with correlated labels.

A mosaic is a ``grid x grid`` arrangement of real images (e.g. 2x2 Fashion-MNIST items,
56x56 pixels); its target is the *set* of classes of the images it shows. Cells may be
empty (black), so a mosaic shows 1 to ``grid * grid`` items. Real photos have correlated
labels (a person with a tie, a car with a road); a :class:`CooccurrencePrior` gives the
mosaics such correlations.

Generative process of :func:`make_mosaics` (``K = grid * grid`` cells, row-major order),
independently for each mosaic:

1. *Themed or random.* With probability ``prior.theme_probability`` the mosaic follows a
   theme, chosen with probability proportional to the themes' ``weight``; otherwise (and
   always when ``prior`` is None) it is random.
2. *Themed mosaic.* Each of the theme's class groups, in order, is included with its
   probability (1 for required groups); an included group contributes one class drawn
   uniformly from the group. The chosen classes (the first ``K`` in group order if there
   are more) go to distinct cells chosen uniformly at random; the other cells stay empty.
3. *Random mosaic.* Each cell is filled independently with probability
   ``1 - empty_cell_probability`` (if none is, one uniformly chosen cell is filled). Each
   filled cell gets a class drawn independently from ``prior.class_weights`` (uniform over
   the classes that have images when None), so a class may fill several cells.
4. *Images.* Each filled cell gets an image drawn uniformly, with replacement, from the
   images of its class; the target of the mosaic has a 1 for each class filling a cell.

:data:`OUTFIT_PRIOR` is the prior for Fashion-MNIST (classes 0 T-shirt/top, 1 Trouser,
2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot): half of
the mosaics are outfits --

* ``outfit`` (weight 0.6): a top from {T-shirt/top, Pullover, Coat, Shirt}, a Trouser,
  closed footwear from {Sneaker, Ankle boot}, and a Bag with probability 0.3;
* ``dress`` (weight 0.4): a Dress, footwear from {Sandal, Ankle boot}, and a Bag with
  probability 0.6;

-- and the other half are random with ``empty_cell_probability=0.5`` (two items on
average). Trouser and Sneaker, Dress and Sandal, Dress and Bag thus co-occur well above
independence while Trouser and Dress rarely meet (see :func:`rmlc.data.mosaic_statistics`).

:func:`fashion_mosaic` builds the train or test mosaics of Fashion-MNIST: train mosaics use
only training images, test mosaics only test images, with seeds derived per split.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

import numpy as np

from rmlc.checks import check_choice, check_fraction, check_integer, check_seed
from rmlc.data._common import derive_seed, shorten
from rmlc.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

__all__ = [
    "DEFAULT_MOSAIC_SIZES",
    "OUTFIT_PRIOR",
    "CooccurrencePrior",
    "Theme",
    "fashion_mosaic",
    "make_mosaics",
    "theme_summary",
]

DEFAULT_MOSAIC_SIZES: dict[str, dict[str, int]] = {
    "embedded": {"train": 4000, "test": 1000},
    "full": {"train": 20000, "test": 5000},
}
_SPLIT_TAGS = {"train": 0, "test": 1}
_MOSAIC_TAG = 0x6D6F73  # "mos": keeps mosaic seeds apart from other derived seeds


def _class_index(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ValueError(f"{where}: class indices must be non-negative integers, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Theme:
    """A typical combination of classes: one class from each included group.

    Attributes:
        name: label used in messages and documentation.
        groups: class groups; an included group contributes one class drawn uniformly from
            it. A bare int is a group of one class.
        probabilities: inclusion probability of each group (default: all 1). At least one
            group must be required (probability 1) so that a themed mosaic is never empty.
        weight: relative probability of this theme among the prior's themes (> 0).
    """

    name: str
    groups: tuple[tuple[int, ...], ...]
    probabilities: tuple[float, ...] | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        where = f"theme {self.name!r}"
        groups = []
        for group in self.groups:
            members = (group,) if isinstance(group, numbers.Integral) else tuple(group)
            if not members:
                raise ValueError(f"{where}: empty class group")
            groups.append(tuple(_class_index(c, where) for c in members))
        if not groups:
            raise ValueError(f"{where}: needs at least one class group")
        object.__setattr__(self, "groups", tuple(groups))
        probabilities = self.probabilities
        if probabilities is None:
            probabilities = (1.0,) * len(groups)
        probabilities = tuple(
            check_fraction(p, f"{where}: probabilities[{j}]") for j, p in enumerate(probabilities)
        )
        if len(probabilities) != len(groups):
            raise ValueError(
                f"{where}: {len(probabilities)} probabilities for {len(groups)} groups"
            )
        if 1.0 not in probabilities:
            raise ValueError(f"{where}: needs at least one required group (probability 1)")
        object.__setattr__(self, "probabilities", probabilities)
        if not (isinstance(self.weight, numbers.Real) and float(self.weight) > 0):
            raise ValueError(f"{where}: weight must be positive, got {self.weight!r}")
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def classes(self) -> tuple[int, ...]:
        """All classes the theme can produce, ascending."""
        return tuple(sorted({c for group in self.groups for c in group}))


@dataclass(frozen=True)
class CooccurrencePrior:
    """Label co-occurrence structure of mosaics: themes plus a random background.

    Attributes:
        themes: :class:`Theme` objects, or plain lists of class groups (named
            ``theme0``, ``theme1``, ... with all groups required and equal weights).
        theme_probability: probability that a mosaic follows a theme (else it is random).
        class_weights: relative class probabilities for the cells of random mosaics
            (length ``num_classes``); None for uniform over the classes that have images.
    """

    themes: tuple[Theme, ...] = field(default_factory=tuple)
    theme_probability: float = 0.0
    class_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        themes = tuple(
            theme if isinstance(theme, Theme) else Theme(f"theme{i}", tuple(theme))
            for i, theme in enumerate(self.themes)
        )
        object.__setattr__(self, "themes", themes)
        probability = check_fraction(self.theme_probability, "theme_probability")
        if probability > 0 and not themes:
            raise ValueError("theme_probability > 0 needs at least one theme")
        object.__setattr__(self, "theme_probability", probability)
        if self.class_weights is not None:
            weights = np.asarray(self.class_weights, dtype=np.float64)
            if weights.ndim != 1 or not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("class_weights must be a 1-D list of finite, non-negative numbers")
            object.__setattr__(self, "class_weights", tuple(weights.tolist()))


OUTFIT_PRIOR = CooccurrencePrior(
    themes=(
        Theme("outfit", ((0, 2, 4, 6), (1,), (7, 9), (8,)), (1.0, 1.0, 1.0, 0.3), weight=0.6),
        Theme("dress", ((3,), (5, 9), (8,)), (1.0, 1.0, 0.6), weight=0.4),
    ),
    theme_probability=0.5,
)


def _check_inputs(
    images: np.ndarray, labels: np.ndarray, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"images must be uint8 (N, H, W) or (N, C, H, W), got {images.dtype} {images.shape}"
        )
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("images and labels are empty")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"labels must be non-negative class indices, found {labels.min()}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    num_classes = check_integer(num_classes, "num_classes", 1)
    if labels.max() >= num_classes:
        raise ValueError(f"label {labels.max()} is out of range for num_classes={num_classes}")
    images4 = images[:, None] if images.ndim == 3 else images
    return images4, labels, int(num_classes)


def _random_class_weights(
    prior: CooccurrencePrior | None, available: np.ndarray, num_classes: int
) -> np.ndarray:
    weights = np.zeros(num_classes)
    if prior is None or prior.class_weights is None:
        weights[available] = 1.0
    else:
        if len(prior.class_weights) != num_classes:
            raise ValueError(
                f"prior.class_weights has {len(prior.class_weights)} entries, "
                f"expected num_classes={num_classes}"
            )
        given = np.asarray(prior.class_weights)
        weights[available] = given[available]
        missing = np.flatnonzero((given > 0) & (weights == 0))
        if missing.size:
            raise ValueError(
                f"prior.class_weights gives weight to classes without images: {shorten(missing)}"
            )
    if weights.sum() <= 0:
        raise ValueError("prior.class_weights give no weight to any class that has images")
    return weights / weights.sum()


@overload
def make_mosaics(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    grid: int = ...,
    seed: int = ...,
    prior: CooccurrencePrior | None = ...,
    empty_cell_probability: float = ...,
    num_classes: int | None = ...,
    return_sources: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def make_mosaics(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    grid: int = ...,
    seed: int = ...,
    prior: CooccurrencePrior | None = ...,
    empty_cell_probability: float = ...,
    num_classes: int | None = ...,
    *,
    return_sources: Literal[True],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def make_mosaics(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    grid: int = 2,
    seed: int = 0,
    prior: CooccurrencePrior | None = None,
    empty_cell_probability: float = 0.5,
    num_classes: int | None = None,
    return_sources: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build ``n`` multi-label mosaics from single-label images (process in module doc).

    Args:
        images: uint8 ``(N, H, W)`` or ``(N, C, H, W)`` single-label images.
        labels: int ``(N,)`` class of each image, in ``0 .. num_classes - 1``.
        n: number of mosaics (>= 0).
        grid: mosaics are ``grid x grid`` cells (>= 1).
        seed: seed of the generator; the output is a deterministic function of the inputs.
        prior: co-occurrence prior; None for random mosaics only (uniform classes).
        empty_cell_probability: probability that a cell of a random mosaic is empty.
        num_classes: number of target columns (default ``labels.max() + 1``).
        return_sources: also return the index of the image in each cell.

    Returns:
        ``(mosaics, targets)`` and, if asked, ``sources``: uint8 mosaics
        ``(n, C, grid * H, grid * W)`` (``C = 1`` for ``(N, H, W)`` input), uint8 {0, 1}
        targets ``(n, num_classes)``, and int64 ``(n, grid * grid)`` image indices of the
        cells in row-major order (-1 for an empty cell).
    """
    images4, labels, num_classes = _check_inputs(images, labels, num_classes)
    n, grid = check_integer(n, "n", 0), check_integer(grid, "grid", 1)
    empty = check_fraction(empty_cell_probability, "empty_cell_probability")
    if empty == 1.0:
        raise ValueError("empty_cell_probability must be below 1 (mosaics need an item)")
    if prior is not None and not isinstance(prior, CooccurrencePrior):
        raise TypeError(f"prior must be a CooccurrencePrior or None, got {type(prior).__name__}")
    n, grid, cells_per = int(n), int(grid), int(grid) * int(grid)
    rng = np.random.default_rng(check_seed(seed))

    pools = [np.flatnonzero(labels == c) for c in range(num_classes)]
    available = np.array([c for c in range(num_classes) if pools[c].size], dtype=np.int64)
    if prior is not None:
        _check_theme_classes(prior, pools, num_classes)
    weights = _random_class_weights(prior, available, num_classes)
    # Random mosaics (drawn for every row, then overwritten by themed rows).
    cells = _random_cells(rng, n, cells_per, empty, num_classes, weights)
    if prior is not None and prior.themes and prior.theme_probability > 0:
        _place_themes(rng, prior, cells)

    sources = np.full((n, cells_per), -1, dtype=np.int64)
    for c in available:
        where = cells == c
        sources[where] = pools[c][rng.integers(pools[c].size, size=int(where.sum()))]

    occupied = sources >= 0
    mosaics = _tiled(images4, sources, occupied, grid)
    targets = np.zeros((n, num_classes), dtype=np.uint8)
    targets[np.nonzero(occupied)[0], cells[occupied]] = 1
    if return_sources:
        return mosaics, targets, sources
    return mosaics, targets


def _check_theme_classes(
    prior: CooccurrencePrior, pools: list[np.ndarray], num_classes: int
) -> None:
    """Raise a ``ValueError`` naming a theme that uses a class without images."""
    for theme in prior.themes:
        bad = [c for c in theme.classes if c >= num_classes or not pools[c].size]
        if bad:
            raise ValueError(
                f"theme {theme.name!r} uses classes without images: {shorten(bad)} "
                f"(num_classes={num_classes})"
            )


def _random_cells(
    rng: np.random.Generator,
    n: int,
    cells_per: int,
    empty: float,
    num_classes: int,
    weights: np.ndarray,
) -> np.ndarray:
    """``(n, cells_per)`` classes of random mosaics, -1 for an empty cell: each cell is
    empty with probability ``empty``, but every mosaic has at least one item."""
    filled = rng.random((n, cells_per)) >= empty
    lonely = np.flatnonzero(~filled.any(axis=1))
    filled[lonely, rng.integers(cells_per, size=lonely.size)] = True
    return np.where(filled, rng.choice(num_classes, size=(n, cells_per), p=weights), -1)


def _place_themes(rng: np.random.Generator, prior: CooccurrencePrior, cells: np.ndarray) -> None:
    """Overwrite a ``theme_probability`` share of the rows of ``cells`` with themed mosaics:
    one item of each included group of a drawn theme, at random cells."""
    n, cells_per = cells.shape
    themed = rng.random(n) < prior.theme_probability
    theme_weights = np.array([theme.weight for theme in prior.themes])
    which = rng.choice(len(prior.themes), size=n, p=theme_weights / theme_weights.sum())
    order = np.argsort(rng.random((n, cells_per)), axis=1)
    for t, theme in enumerate(prior.themes):
        rows = np.flatnonzero(themed & (which == t))
        items = np.full((rows.size, len(theme.groups)), -1, dtype=np.int64)
        for j, (group, probability) in enumerate(
            zip(theme.groups, theme.probabilities, strict=True)
        ):
            included = rng.random(rows.size) < probability
            picked = np.asarray(group)[rng.integers(len(group), size=rows.size)]
            items[:, j] = np.where(included, picked, -1)
        items = np.take_along_axis(items, np.argsort(items < 0, axis=1, kind="stable"), 1)
        kept = min(items.shape[1], cells_per)
        placed = np.full((rows.size, cells_per), -1, dtype=np.int64)
        np.put_along_axis(placed, order[rows, :kept], items[:, :kept], axis=1)
        cells[rows] = placed


def _tiled(images4: np.ndarray, sources: np.ndarray, occupied: np.ndarray, grid: int) -> np.ndarray:
    """``(n, C, grid * H, grid * W)`` mosaics: the image of each occupied cell in its place
    (row-major), zeros elsewhere."""
    n, cells_per = sources.shape
    _, channels, height, width = images4.shape
    tiles = np.zeros((n, cells_per, channels, height, width), dtype=np.uint8)
    tiles[occupied] = images4[sources[occupied]]
    return (
        tiles.reshape(n, grid, grid, channels, height, width)
        .transpose(0, 3, 1, 4, 2, 5)
        .reshape(n, channels, grid * height, grid * width)
    )


def fashion_mosaic(
    split: Literal["train", "test"] = "train",
    source: Literal["embedded", "full"] = "embedded",
    n: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST 2x2 outfit mosaics (:data:`OUTFIT_PRIOR`) for one split.

    Train mosaics are made only of training images and test mosaics only of test images;
    the two splits use different seeds derived from ``seed``.

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"embedded"`` (packaged subset) or ``"full"`` (60k/10k IDX files, see
            :func:`rmlc.data.load_fashion_mnist`).
        n: number of mosaics; default 4000/1000 (embedded) or 20000/5000 (full).
        seed: base seed.

    Returns:
        ``(images, targets)``: uint8 ``(n, 1, 56, 56)`` and uint8 {0, 1} ``(n, 10)``.
    """
    check_choice(split, tuple(_SPLIT_TAGS), "split")
    check_choice(source, tuple(DEFAULT_MOSAIC_SIZES), "source")
    if n is None:
        n = DEFAULT_MOSAIC_SIZES[source][split]
    images, labels = load_fashion_mnist(split, source=source)
    return make_mosaics(
        images,
        labels,
        n,
        grid=2,
        seed=derive_seed(seed, _MOSAIC_TAG, _SPLIT_TAGS[split]),
        prior=OUTFIT_PRIOR,
        num_classes=len(FASHION_MNIST_CLASSES),
    )


def theme_summary(prior: CooccurrencePrior, class_names: Sequence[str]) -> str:
    """One line per theme, naming its groups (for documentation and CLI help)."""
    lines = []
    for theme in prior.themes:
        parts = []
        for group, probability in zip(theme.groups, theme.probabilities, strict=True):
            names = " | ".join(class_names[c] for c in group)
            parts.append(names if probability == 1 else f"{names} (p={probability:g})")
        lines.append(f"{theme.name} (weight {theme.weight:g}): " + " + ".join(parts))
    return "\n".join(lines)
