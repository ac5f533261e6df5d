"""Corrupt the labels stored in a file: the engine of the ``rmlc corrupt`` command.

:func:`corrupt_file` reads a tags table (``.csv``/``.jsonl``, see
:mod:`rmlc.data.tags_table`) or a features file with labels (``.npz`` with ``X`` and
``Y``, see :mod:`rmlc.data.features`), applies :func:`~rmlc.data.corrupt_labels` (label
noise on a ``rate`` fraction of the labeled samples) and then
:func:`~rmlc.data.drop_positives` (missing labels with probability ``drop``), writes the
corrupted copy and returns a JSON-serialisable report of the realised noise.

In a tags table only labeled rows are corrupted; unlabeled rows are copied unchanged. A
labeled row that loses all its positives to ``drop`` is written as unlabeled (the format
cannot hold a labeled row without labels) and counted in ``became_unlabeled``. In a
``.npz`` file every array other than ``Y`` is copied unchanged.
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

    Returns:
        report dict: ``input``, ``output``, ``kind`` (``"tags"``/``"features"``),
        ``n_samples``, ``n_labeled``, ``rate``, ``drop``, ``seed``, ``protocol``,
        ``n_corrupted``, ``n_changed``, ``flipped_fraction``, ``corrupted_indices`` (row
        indices in the file) and, when ``drop > 0``, ``n_positives``, ``n_dropped``,
        ``dropped_fraction``; for tags tables ``became_unlabeled``.
    """
    source, target = as_path(input_path, "input_path"), as_path(output_path, "output_path")
    rate, drop, seed = check_fraction(rate, "rate"), check_fraction(drop, "drop"), check_seed(seed)
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
        report.update(_corrupt_table(source, target, rate, drop, seed, protocol))
    elif in_suffix == ".npz":
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
    source: Path, target: Path, rate: float, drop: float, seed: int, protocol: Protocol
) -> dict[str, Any]:
    table = read_tags_table(source)
    rows = np.flatnonzero(table.labeled)
    targets = table.targets.toarray()  # the corruption protocols work on dense rows
    noisy, result = _corrupt(targets[rows], rate, drop, seed, protocol)
    targets[rows] = noisy
    labeled = table.labeled & targets.any(axis=1)
    became = np.flatnonzero(table.labeled & ~labeled)
    result["corrupted_indices"] = rows[result["corrupted_indices"]].tolist()
    write_tags_table(target, TagsTable(table.images, targets, labeled, table.classes))
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
