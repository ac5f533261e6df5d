"""Label statistics of a multi-label target matrix: cardinality, frequencies, co-occurrence.

:func:`mosaic_statistics` summarises a ``(N, m)`` target matrix (mosaics or any
multi-label data set) as a JSON-serialisable dict; :func:`format_statistics` renders it as
the text tables printed by ``rmlc data-stats``; :func:`table_statistics` and
:func:`format_table_statistics` do the same for a user's tags table, sparse (any number of
classes), with per class the verified negatives and the fraction of images where the class
is known (partial labels). The *lift* of a class pair ``(a, b)`` is
``P(a, b) / (P(a) P(b))``: 1 under independence, above 1 for pairs that co-occur more
often than chance (Trouser and Sneaker in outfit mosaics), below 1 for pairs that avoid
each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rmlc.data.tags_table import TagsTable
from rmlc.labels import positive_mask_numpy

__all__ = [
    "format_statistics",
    "format_table_statistics",
    "mosaic_statistics",
    "table_statistics",
]


def _pair_rows(
    pairs: list[tuple[int, int]],
    counts: np.ndarray,
    expected: np.ndarray,
    lift: np.ndarray,
    names: list[str],
    n: int,
) -> list[dict[str, Any]]:
    return [
        {
            "pair": [a, b],
            "names": [names[a], names[b]],
            "count": int(counts[a, b]),
            "observed": float(counts[a, b] / n),
            "expected": float(expected[a, b] / n),
            "lift": float(lift[a, b]),
        }
        for a, b in pairs
    ]


def mosaic_statistics(
    targets: np.ndarray,
    class_names: Sequence[str] | None = None,
    top_k: int = 10,
    min_count: int = 5,
) -> dict[str, Any]:
    """Summarise a multi-label target matrix.

    Args:
        targets: ``(N, m)`` in {0, 1} or {-1, +1} (or bool).
        class_names: ``m`` names (default ``"0" .. "m-1"``).
        top_k: number of class pairs listed in ``top_pairs`` and ``bottom_pairs``.
        min_count: pairs need this many co-occurrences (``top_pairs``) or this expected
            count under independence (``bottom_pairs``) to be listed, to avoid noise.

    Returns:
        dict with ``n_images``, ``num_classes``, ``class_names``, ``labels_per_image``
        (list: number of images with 0, 1, 2, ... positive labels),
        ``mean_labels_per_image``, ``class_counts``, ``class_frequency``, ``cooccurrence``
        (``m x m`` list of counts; the diagonal holds the class counts), ``top_pairs`` and
        ``bottom_pairs`` (dicts with ``pair``, ``names``, ``count``, ``observed`` and
        ``expected`` frequencies, and ``lift``, sorted by lift).
    """
    positive = positive_mask_numpy(np.asarray(targets), "targets")
    if positive.ndim != 2:
        raise ValueError(f"targets must have shape (N, m), got shape {positive.shape}")
    n, m = positive.shape
    if n == 0:
        raise ValueError("targets has no rows")
    names = [str(c) for c in range(m)] if class_names is None else [str(c) for c in class_names]
    if len(names) != m:
        raise ValueError(f"class_names has {len(names)} names for {m} target columns")
    indicator = positive.astype(np.int64)
    per_image = indicator.sum(axis=1)
    counts = indicator.T @ indicator
    class_counts = np.diag(counts).copy()
    expected = np.outer(class_counts, class_counts) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(expected > 0, counts / np.where(expected > 0, expected, 1.0), np.nan)
    upper = [(a, b) for a in range(m) for b in range(a + 1, m)]
    frequent = [p for p in upper if counts[p] >= min_count]
    top = sorted(frequent, key=lambda p: (-lift[p], p))[:top_k]
    plausible = [p for p in upper if expected[p] >= min_count]
    bottom = sorted(plausible, key=lambda p: (lift[p], p))[:top_k]
    return {
        "n_images": int(n),
        "num_classes": int(m),
        "class_names": names,
        "labels_per_image": np.bincount(per_image, minlength=1).tolist(),
        "mean_labels_per_image": float(per_image.mean()),
        "class_counts": class_counts.tolist(),
        "class_frequency": (class_counts / n).tolist(),
        "cooccurrence": counts.tolist(),
        "top_pairs": _pair_rows(top, counts, expected, lift, names, n),
        "bottom_pairs": _pair_rows(bottom, counts, expected, lift, names, n),
    }


def _pair_table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return [f"{title}: none"]
    width = max(len(" + ".join(row["names"])) for row in rows)
    lines = [
        f"{title}:",
        f"  {'pair':<{width}}  {'count':>7}  {'observed':>8}  {'expected':>8}  {'lift':>6}",
    ]
    for row in rows:
        pair = " + ".join(row["names"])
        lines.append(
            f"  {pair:<{width}}  {row['count']:>7d}  {row['observed']:>8.4f}  "
            f"{row['expected']:>8.4f}  {row['lift']:>6.2f}"
        )
    return lines


def format_statistics(stats: dict[str, Any]) -> str:
    """Render the output of :func:`mosaic_statistics` as plain-text tables."""
    n = stats["n_images"]
    lines = [
        f"{n} images, {stats['num_classes']} classes, "
        f"{stats['mean_labels_per_image']:.3f} labels per image on average",
        "",
        "Labels per image:",
        f"  {'labels':>6}  {'images':>7}  {'percent':>7}",
    ]
    for k, count in enumerate(stats["labels_per_image"]):
        lines.append(f"  {k:>6d}  {count:>7d}  {100 * count / n:>6.2f}%")
    width = max(len(name) for name in stats["class_names"])
    lines += ["", "Class frequencies:", f"  {'class':<{width}}  {'images':>7}  {'percent':>7}"]
    for name, count, freq in zip(
        stats["class_names"], stats["class_counts"], stats["class_frequency"], strict=True
    ):
        lines.append(f"  {name:<{width}}  {count:>7d}  {100 * freq:>6.2f}%")
    above = "Pairs most above independence (lift = P(a,b) / P(a) P(b))"
    lines += ["", *_pair_table(above, stats["top_pairs"])]
    lines += ["", *_pair_table("Pairs most below independence", stats["bottom_pairs"])]
    return "\n".join(lines)


def table_statistics(table: TagsTable) -> dict[str, Any]:
    """Per-class counts of a tags table, computed on its sparse matrices.

    Returns:
        dict with ``n_images``, ``n_labeled``, ``num_classes``, ``class_names``,
        ``has_negatives``, ``labels_per_image`` (labeled images with 0, 1, 2, ...
        positives), ``class_counts`` (positives), ``negative_counts`` (verified absent;
        None without a negatives column) and ``known_fraction`` (per class, the fraction of
        labeled images where it is known: 1 without a negatives column).
    """
    m = len(table.classes)
    labeled = table.labeled
    per_image = np.diff(table.targets.indptr)[labeled]
    negatives = None
    if table.negatives is not None:
        negatives = np.bincount(table.negatives.indices, minlength=m).tolist()
    return {
        "n_images": len(table),
        "n_labeled": int(labeled.sum()),
        "num_classes": m,
        "class_names": list(table.classes),
        "has_negatives": table.has_negatives,
        "labels_per_image": np.bincount(per_image, minlength=1).tolist(),
        "class_counts": np.bincount(table.targets.indices, minlength=m).tolist(),
        "negative_counts": negatives,
        "known_fraction": table.known_fraction().tolist(),
    }


def format_table_statistics(stats: dict[str, Any]) -> str:
    """Render the output of :func:`table_statistics` as plain-text tables."""
    n, labeled = stats["n_images"], stats["n_labeled"]
    lines = [
        f"{n} images ({labeled} labeled, {n - labeled} unlabeled), {stats['num_classes']} "
        "classes"
        + (
            ", tags verified absent listed (others unknown)"
            if stats["has_negatives"]
            else ", every tag not listed is negative"
        ),
        "",
        "Positive tags per labeled image:",
        f"  {'labels':>6}  {'images':>7}  {'percent':>7}",
    ]
    for k, count in enumerate(stats["labels_per_image"]):
        lines.append(f"  {k:>6d}  {count:>7d}  {100 * count / max(labeled, 1):>6.2f}%")
    width = max([len("class"), *(len(name) for name in stats["class_names"])])
    negatives = stats["negative_counts"] or [None] * stats["num_classes"]
    lines += [
        "",
        "Per class (known: labeled images where the tag is positive or verified absent):",
        f"  {'class':<{width}}  {'positive':>8}  {'negative':>8}  {'known':>7}",
    ]
    for name, count, negative, known in zip(
        stats["class_names"],
        stats["class_counts"],
        negatives,
        stats["known_fraction"],
        strict=True,
    ):
        shown = "all" if negative is None else f"{negative:d}"
        lines.append(f"  {name:<{width}}  {count:>8d}  {shown:>8}  {100 * known:>6.2f}%")
    return "\n".join(lines)
