"""Precomputed features on disk: ``.npz`` (``X`` and optional ``Y``) or ``.npy`` (``X`` only).

``X`` is a finite ``(N, d)`` feature matrix (returned as float32); ``Y`` holds the labels:
multi-label ``(N, m)`` targets in {0, 1} or {-1, +1}, or single-label integer ``(N,)``.
Every problem (missing file or array, wrong number of dimensions, NaN or inf in ``X``,
``X`` and ``Y`` of different lengths, an unreadable file) is an error naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rmlc.atomic import atomic_write
from rmlc.data._common import PathLike, as_path
from rmlc.labels import positive_mask_numpy

__all__ = ["check_features", "load_features", "save_features"]


def check_features(
    X: np.ndarray, Y: np.ndarray | None = None, where: str = "features"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a feature matrix and its labels; return ``X`` as float32.

    Args:
        X: ``(N, d)`` real-valued, finite.
        Y: None, integer ``(N,)`` or ``(N, m)`` in {0, 1} / {-1, +1} (or bool).
        where: prefix of error messages (the file name).

    Returns:
        ``(X, Y)``: float32 ``(N, d)`` and ``Y`` unchanged.
    """
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{where}: X must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{where}: X must have shape (N, d), got {X.ndim} dimensions {X.shape}")
    X = X.astype(np.float32, copy=False)
    finite = np.isfinite(X)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(
            f"{where}: X has {int((~finite).sum())} NaN or infinite values (first in row "
            f"{rows[0]}; {rows.size} rows affected)"
        )
    if Y is None:
        return X, None
    Y = np.asarray(Y)
    if Y.ndim not in (1, 2):
        raise ValueError(f"{where}: Y must have shape (N,) or (N, m), got {Y.shape}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"{where}: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if Y.ndim == 2:
        positive_mask_numpy(Y, f"Y in {where}")
    elif Y.dtype.kind not in "iu":
        raise ValueError(f"{where}: 1-D Y must hold integer class indices, got dtype {Y.dtype}")
    return X, Y


def load_features(path: PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Load features from ``.npz`` (arrays ``X``, optional ``Y``) or ``.npy`` (``X``).

    Returns:
        ``(X, Y)``: float32 ``(N, d)`` and ``Y`` (``(N,)`` or ``(N, m)``) or None.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file: unknown suffix, unreadable file, missing ``X``, bad
            shapes, non-finite ``X``, mismatched lengths, bad label values.
    """
    path = as_path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ValueError(f"{path}: features must be a .npz or .npy file")
    if not path.is_file():
        raise FileNotFoundError(f"features file not found: {path}")
    try:
        if suffix == ".npy":
            arrays = {"X": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files if name in ("X", "Y")}
                names = sorted(archive.files)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot read features ({type(error).__name__}: {error})"
        ) from error
    if "X" not in arrays:
        raise ValueError(f"{path}: no array 'X' (arrays found: {', '.join(names) or 'none'})")
    X, Y = arrays["X"], arrays.get("Y")
    return check_features(X, Y, str(path))


def save_features(path: PathLike, X: np.ndarray, Y: np.ndarray | None = None) -> Path:
    """Save features: ``.npz`` (compressed, ``X`` and ``Y`` if given) or ``.npy`` (``X``).

    The arrays are checked as :func:`load_features` checks them, before anything is written.

    Returns:
        the path written.
    """
    path = as_path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ValueError(f"{path}: features must be saved as .npz or .npy")
    X, Y = check_features(X, Y, str(path))
    if suffix == ".npy" and Y is not None:
        raise ValueError(f"{path}: a .npy file holds X only; use .npz to save Y")
    if suffix == ".npy":
        atomic_write(path, lambda handle: np.save(handle, X))
    else:
        arrays = {"X": X} if Y is None else {"X": X, "Y": Y}
        atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))
    return path
