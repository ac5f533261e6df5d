"""Training checkpoints: written atomically (a crash or a full disk never damages the
previous one, see :mod:`rmlc.atomic`), read back with errors that name the file, and
checked against the model they are loaded into. :class:`CheckpointContents` says what a
trainer's checkpoint holds."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rmlc.torch_files import CheckpointError, atomic_save, safe_load

__all__ = [
    "CheckpointContents",
    "CheckpointError",
    "atomic_save",
    "check_compatible",
    "check_same_ramp",
    "load_checkpoint",
    "safe_load",
]


@dataclass
class CheckpointContents:
    """Everything a trainer's checkpoint holds: enough to resume exactly, and to use the
    network without the run's config (inference, export).

    Written as a plain dict of tensors and data (:meth:`to_dict`; :func:`safe_load` reads
    it without running code); :meth:`from_dict` also reads older checkpoints, which lack
    ``loss``, ``dynamics`` and the relabeling state.
    """

    model: dict[str, torch.Tensor]  # the network's state dict
    optimizer: dict[str, Any]
    scaler: dict[str, Any]  # the AMP gradient scaler's
    position: dict[str, int]  # epoch, step_in_epoch, global_step
    best_metric: float
    best_epoch: int
    history: list[dict[str, Any]]  # one record per epoch (log.csv's rows)
    targets: dict[str, Any]  # SparseTargets.state_dict(): the propagated labels included
    sample_weights: torch.Tensor  # (n,) float32
    propagation_epoch: int | None
    rng: dict[str, torch.Tensor]  # the "torch" and "loss" generators' states
    dynamics: list[dict[str, Any]] = field(default_factory=list)  # dynamics.csv's rows
    loss: dict[str, Any] | None = None  # the loss's state (its hinge phase)
    relabel: dict[str, Any] | None = None  # Relabeling.state_dict(), when relabeling is on
    relabel_epoch: int | None = None
    # What inference and export read: the run's settings and the network's description.
    config: dict[str, Any] = field(default_factory=dict)  # TrainConfig.to_dict()
    backbone: str | None = None
    num_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    in_channels: int | None = None
    normalization: dict[str, Any] = field(default_factory=dict)
    single_label: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # other keys: best.pt's threshold

    def to_dict(self) -> dict[str, Any]:
        """The dict written to disk; the relabeling keys only when relabeling is on (the
        checkpoints of runs without it are as before)."""
        payload = {name: getattr(self, name) for name in _FIELDS if name != "extra"}
        if self.relabel is None:
            del payload["relabel"], payload["relabel_epoch"]
        return {**payload, **self.extra}

    @classmethod
    def from_dict(
        cls, payload: dict[str, Any], path: str | Path = "checkpoint"
    ) -> CheckpointContents:
        """The contents of a checkpoint read from ``path`` (older versions' included).

        Raises:
            CheckpointError: an entry needed to resume is missing.
        """
        fields = [name for name in _FIELDS if name != "extra"]
        missing = [name for name in _REQUIRED if name not in payload]
        if missing:
            raise CheckpointError(f"{path} cannot be resumed: it has no {', '.join(missing)}")
        known = {key: value for key, value in payload.items() if key in fields}
        extra = {key: value for key, value in payload.items() if key not in fields}
        return cls(**known, extra=extra)


_FIELDS = tuple(CheckpointContents.__dataclass_fields__)
_REQUIRED = tuple(
    name
    for name, spec in CheckpointContents.__dataclass_fields__.items()
    if spec.default is MISSING and spec.default_factory is MISSING
)


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


def check_same_ramp(saved: dict[str, Any], config: dict[str, Any], path: str | Path) -> None:
    """Raise a :class:`CheckpointError` when a resumed run would switch its loss's ramp
    (``ramp_start``, ``loss_params.hinge_steps``) from what its checkpoint trained with:
    ``--loss rmlc`` meant ``--ramp-start 0.5`` before issue 25 and means 1 (the ramp off)
    since, so the same command would change a run's loss half way. Checkpoints without a
    config (older versions) are not checked."""
    if not saved:
        return
    before = (saved.get("ramp_start"), saved.get("loss_params", {}).get("hinge_steps"))
    now = (config.get("ramp_start"), config.get("loss_params", {}).get("hinge_steps"))
    if saved.get("loss") == config.get("loss") and before != now:
        raise CheckpointError(
            f"checkpoint {path} trained with ramp_start {before[0]} and hinge_steps "
            f"{before[1]}, this run has ramp_start {now[0]} and hinge_steps {now[1]} "
            "(rmlc's default ramp_start is 1 since issue 25, 0.5 before): give the "
            "checkpoint's settings (e.g. --ramp-start 0.5) to resume it"
        )
