"""Checkpoints written atomically: a crash or a full disk never damages the previous one.

A checkpoint is written to a temporary file in the same directory, flushed to disk and
renamed over the old one (``os.replace`` is atomic on POSIX and Windows), so at any moment
the path holds either the previous complete checkpoint or the new complete one.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "atomic_save", "check_compatible", "load_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or does not fit the model it is loaded into."""


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename.

    Raises:
        CheckpointError: the directory cannot be written or the disk is full; the file
            previously at ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
            raise CheckpointError(
                f"could not write checkpoint {path}: {reason}; the previous file is intact"
            ) from error
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by the trainer, with an error naming the file if it is not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} is not an rmlc checkpoint (no 'model' entry)")
    return payload


def check_compatible(
    checkpoint: dict[str, Any], backbone: str, num_classes: int, path: str | Path
) -> None:
    """Raise a :class:`CheckpointError` when a checkpoint belongs to another model."""
    saved_backbone = checkpoint.get("backbone")
    if saved_backbone is not None and saved_backbone != backbone:
        raise CheckpointError(
            f"checkpoint {path} is for backbone {saved_backbone!r}, not {backbone!r}"
        )
    saved_classes = checkpoint.get("num_classes")
    if saved_classes is not None and saved_classes != num_classes:
        raise CheckpointError(
            f"checkpoint {path} has {saved_classes} classes, the data has {num_classes}"
        )
