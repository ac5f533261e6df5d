"""Corrupt the labels stored in a file: the engine of the ``rmlc corrupt`` command.

:func:`corrupt_file` reads a tags table (``.csv``/``.jsonl``, see
:mod:`rmlc.data.tags_table`) or a features file with labels (``.npz`` with ``X`` and
``Y``, see :mod:`rmlc.data.features`), applies :func:`~rmlc.data.corrupt_labels` (label
noise on a ``rate`` fraction of the labeled samples) and then
:func:`~rmlc.data.drop_positives` (missing labels with probability ``drop``) and, in a tags
table, :func:`~rmlc.data.hide_tags` (each known entry made unknown with probability
``hide``) or :func:`~rmlc.data.keep_single_positive`; writes the corrupted copy and
returns a JSON-serialisable report of the realised noise.

In a tags table only labeled rows are corrupted; unlabeled rows are copied unchanged. A
labeled row that loses all its positives to ``drop`` is written as unlabeled (the format
cannot hold a labeled row without labels) and counted in ``became_unlabeled``. In a
``.npz`` file every array other than ``Y`` is copied unchanged.

Hiding writes a table with a ``negatives`` column: the tags still known to be absent (in a
table without one, every absent tag was known). A table that already has negatives can be
hidden further; ``rate`` and ``drop`` are refused on it (they redraw and remove positives
of a label vector that is only partly known). A row left with no known tag is written as
unlabeled (``became_unlabeled``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rmlc.atomic import atomic_write
from rmlc.checks import check_fraction, check_seed
from rmlc.data._common import PathLike, as_path
from rmlc.data.corruption import Protocol, corrupt_labels, drop_positives
from rmlc.data.features import check_features
from rmlc.data.hiding import hide_tags, keep_single_positive
from rmlc.data.tags_table import TagsTable, read_tags_table, write_tags_table

__all__ = ["corrupt_file"]

_TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson")


def _corrupt(
    targets: np.ndarray, rate: float, drop: float, seed: int, protocol: Protocol
) -> tuple[np.ndarray, dict[str, Any]]:
    noisy, report = corrupt_labels(targets, rate, seed, protocol, return_report=True)
    result: dict[str, Any] = {
        "n_corrupted": report.n_corrupted,
        "n_changed": report.n_changed,
        "flipped_fraction": report.flipped_fraction,
        "corrupted_indices": report.indices.tolist(),
    }
    if drop > 0:
        if noisy.ndim != 2:
            raise ValueError("drop= needs multi-label (N, m) labels, got single-label (N,)")
        noisy, dropped = drop_positives(noisy, drop, seed, return_report=True)
        result.update(
            n_positives=dropped.n_positives,
            n_dropped=dropped.n_dropped,
            dropped_fraction=dropped.dropped_fraction,
        )
    return noisy, result


def corrupt_file(
    input_path: PathLike,
    output_path: PathLike,
    rate: float = 0.0,
    drop: float = 0.0,
    seed: int = 0,
    protocol: Protocol = "paper",
    overwrite: bool = False,
    hide: float = 0.0,
    single_positive: bool = False,
) -> dict[str, Any]:
    """Write a copy of a labels file with corrupted and/or dropped labels.

    Args:
        input_path: tags table (``.csv``, ``.jsonl``) or features file (``.npz`` with ``Y``).
        output_path: destination; a tags table may change format (``.csv`` <-> ``.jsonl``),
            a features file must stay ``.npz``.
        rate: fraction of labeled samples whose labels are corrupted (``protocol``).
        drop: probability of dropping each positive label (multi-label only).
        seed: seed of both steps.
        protocol: see :func:`rmlc.data.corrupt_labels`.
        overwrite: allow replacing an existing ``output_path``.
        hide: probability of making each known tag unknown (tags tables only).
        single_positive: keep one positive tag per labeled row and hide every other tag
            (tags tables only; not with ``hide``).

    Returns:
        report dict: ``input``, ``output``, ``kind`` (``"tags"``/``"features"``),
        ``n_samples``, ``n_labeled``, ``rate``, ``drop``, ``seed``, ``protocol``,
        ``n_corrupted``, ``n_changed``, ``flipped_fraction``, ``corrupted_indices`` (row
        indices in the file) and, when ``drop > 0``, ``n_positives``, ``n_dropped``,
        ``dropped_fraction``; for tags tables ``became_unlabeled``; when hiding, ``hide``,
        ``single_positive``, ``n_positives_known``, ``n_negatives_known``,
        ``hidden_positives``, ``hidden_negatives`` (counted over the labeled rows).
    """
    source, target = as_path(input_path, "input_path"), as_path(output_path, "output_path")
    rate, drop, seed = check_fraction(rate, "rate"), check_fraction(drop, "drop"), check_seed(seed)
    hide = check_fraction(hide, "hide")
    if hide > 0 and single_positive:
        raise ValueError("hide and single_positive are two settings: choose one")
    if not source.is_file():
        raise FileNotFoundError(f"input file not found: {source}")
    if target.resolve() == source.resolve():
        raise ValueError(f"output_path must differ from input_path ({source})")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    report: dict[str, Any] = {
        "input": str(source),
        "output": str(target),
        "rate": rate,
        "drop": drop,
        "seed": seed,
        "protocol": protocol,
    }
    in_suffix, out_suffix = source.suffix.lower(), target.suffix.lower()
    if in_suffix in _TABLE_SUFFIXES:
        if out_suffix not in _TABLE_SUFFIXES:
            raise ValueError(f"{target}: a tags table must be written as .csv or .jsonl")
        hiding = {"hide": hide, "single_positive": single_positive}
        report.update(_corrupt_table(source, target, rate, drop, seed, protocol, hiding))
    elif in_suffix == ".npz":
        if hide > 0 or single_positive:
            raise ValueError(
                f"{source}: hide and single_positive apply to tags tables; a features file "
                "has no place for unknown tags"
            )
        if out_suffix != ".npz":
            raise ValueError(f"{target}: a features file must be written as .npz")
        report.update(_corrupt_features(source, target, rate, drop, seed, protocol))
    else:
        raise ValueError(
            f"{source}: cannot corrupt a {in_suffix or 'suffix-less'} file; use a tags table "
            "(.csv, .jsonl) or a features file with labels (.npz with X and Y)"
        )
    return report


def _corrupt_table(
    source: Path,
    target: Path,
    rate: float,
    drop: float,
    seed: int,
    protocol: Protocol,
    hiding: dict[str, Any],
) -> dict[str, Any]:
    table = read_tags_table(source)
    rows = np.flatnonzero(table.labeled)
    targets = table.targets.toarray()  # the corruption protocols work on dense rows
    result: dict[str, Any] = {}
    if table.has_negatives and (rate > 0 or drop > 0):
        raise ValueError(
            f"{source}: rate and drop need a table without a negatives column (its label "
            "vectors are only partly known); hide works on it"
        )
    if not table.has_negatives:
        noisy, result = _corrupt(targets[rows], rate, drop, seed, protocol)
        targets[rows] = noisy
        result["corrupted_indices"] = rows[result["corrupted_indices"]].tolist()
    negatives = None
    if table.has_negatives or hiding["hide"] > 0 or hiding["single_positive"]:
        known = table.known_mask()
        if hiding["single_positive"]:
            known[rows], hidden = keep_single_positive(targets[rows], seed, known[rows])
        else:
            known[rows], hidden = hide_tags(targets[rows], hiding["hide"], seed, known[rows])
        targets = targets * known  # a hidden positive is unknown, not negative
        negatives = known & ~targets.astype(bool) & table.labeled[:, None]
        result.update(hiding)
        result.update(
            n_positives_known=hidden.n_positives,
            n_negatives_known=hidden.n_negatives,
            hidden_positives=hidden.hidden_positives,
            hidden_negatives=hidden.hidden_negatives,
        )
    listed = targets.any(axis=1) | (negatives.any(axis=1) if negatives is not None else False)
    labeled = table.labeled & listed
    became = np.flatnonzero(table.labeled & ~labeled)
    corrupted = TagsTable(table.images, targets, labeled, table.classes, negatives=negatives)
    write_tags_table(target, corrupted)
    return {
        "kind": "tags",
        "n_samples": len(table),
        "n_labeled": int(rows.size),
        **result,
        "became_unlabeled": became.tolist(),
    }


def _corrupt_features(
    source: Path, target: Path, rate: float, drop: float, seed: int, protocol: Protocol
) -> dict[str, Any]:
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{source}: cannot read ({type(error).__name__}: {error})") from error
    if "Y" not in arrays:
        raise ValueError(f"{source}: no labels to corrupt (array 'Y' missing)")
    if "X" in arrays:
        check_features(arrays["X"], arrays["Y"], str(source))
    arrays["Y"], result = _corrupt(arrays["Y"], rate, drop, seed, protocol)
    atomic_write(target, lambda handle: np.savez_compressed(handle, **arrays))
    n = len(arrays["Y"])
    return {"kind": "features", "n_samples": n, "n_labeled": n, **result}
