"""Training checkpoints: written atomically (a crash or a full disk never damages the
previous one, see :mod:`rmlc.atomic`), read back with errors that name the file, and
checked against the model they are loaded into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rmlc.atomic import atomic_write

__all__ = ["CheckpointError", "atomic_save", "check_compatible", "load_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or does not fit the model it is loaded into."""


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (:mod:`rmlc.atomic`).

    Raises:
        WriteError: the folder cannot be written or the disk is full; the file previously
            at ``path`` is left untouched.
    """
    atomic_write(path, lambda stream: torch.save(payload, stream))


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
