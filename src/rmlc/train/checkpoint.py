"""Training checkpoints: written atomically (a crash or a full disk never damages the
previous one, see :mod:`rmlc.atomic`), read back with errors that name the file, and
checked against the model they are loaded into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rmlc.torch_files import CheckpointError, atomic_save, safe_load

__all__ = ["CheckpointError", "atomic_save", "check_compatible", "load_checkpoint", "safe_load"]


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
