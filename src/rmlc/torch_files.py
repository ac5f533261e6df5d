"""torch files, written and read safely: atomic writes (a crash or a full disk never damages
the previous file, see :mod:`rmlc.atomic`) and reads of tensors and plain data only (a file
from elsewhere never runs code when opened)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from rmlc.atomic import atomic_write

__all__ = ["CheckpointError", "atomic_save", "safe_load"]


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
