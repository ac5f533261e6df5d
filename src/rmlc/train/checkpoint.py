"""Training checkpoints: written atomically (a crash or a full disk never damages the
previous one, see :mod:`rmlc.atomic`), read back with errors that name the file, and
checked against the model they are loaded into."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from rmlc.atomic import atomic_write

__all__ = ["CheckpointError", "atomic_save", "check_compatible", "load_checkpoint", "safe_load"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or does not fit the model it is loaded into."""


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (:mod:`rmlc.atomic`).

    Raises:
        WriteError: the folder cannot be written or the disk is full; the file previously
            at ``path`` is left untouched.
    """
    atomic_write(path, lambda stream: torch.save(payload, stream))


def safe_load(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` of tensors and plain data only: a file from elsewhere never runs code.

    Raises:
        CheckpointError: the file holds other objects (unpickling them could run code), or
            is not a torch file at all; the message names the file.
    """
    if not zipfile.is_zipfile(path):  # torch.save's format; anything else is damaged or foreign
        raise CheckpointError(f"{path} is not a readable {what}: not a file written by torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain data; rmlc does not unpickle "
            f"them, as that can run code. If you trust the file, convert it yourself with "
            f"torch.load(..., weights_only=False). ({str(error).splitlines()[0]})"
        ) from None
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable {what}: {error}") from error


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by the trainer, with an error naming the file if it is not.

    Only tensors and plain data are read (:func:`safe_load`): opening a checkpoint from
    elsewhere never runs code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = safe_load(path)
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
