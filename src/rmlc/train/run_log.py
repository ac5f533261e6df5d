"""What a training run records as it goes, beside its checkpoints.

``log.csv`` gets one row per epoch (appended: a crash loses at most the row being written),
``train.log`` the run's messages, ``tensorboard/`` the same scalars when TensorBoard is
installed (by default; when it is not, one line of the log says so and how to turn it on),
and ``dynamics.csv`` the ramp statistics of ``--dynamics-every``. Under ``torchrun`` only
the main process writes: the others hold a log that is not ``enabled``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rmlc.atomic import WriteError, atomic_write_text

__all__ = ["RunLog"]


class RunLog:
    """The logs of one run in ``out``.

    Args:
        out: the run folder.
        tensorboard: also write TensorBoard scalars: True or None (by default) when the
            ``tensorboard`` package is installed, False never.
        echo: print messages above the progress bars too.
        enabled: write anything at all (the main process of a run).
    """

    def __init__(self, out: Path, *, tensorboard: bool | None, echo: bool, enabled: bool) -> None:
        self.out, self.tensorboard, self.echo, self.enabled = out, tensorboard, echo, enabled
        self.writer = None

    def open(self) -> None:
        """Start TensorBoard's writer, or say in one line of the log why there is none."""
        if not self.enabled or self.tensorboard is False:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            asked = "was asked for (--tensorboard) but is off" if self.tensorboard else "is off"
            self.message(
                f"TensorBoard logging {asked}: the tensorboard package is not installed "
                "(pip install tensorboard turns it on; --no-tensorboard drops this line); "
                "log.csv holds the same numbers"
            )
            self.writer = None
        else:
            self.writer = SummaryWriter(str(self.out / "tensorboard"))

    def epoch(self, record: dict[str, Any]) -> None:
        """One epoch's numbers: a row of ``log.csv``, TensorBoard scalars, a message."""
        if not self.enabled:
            return
        path = self.out / "log.csv"
        try:
            new = not path.is_file() or path.stat().st_size == 0
            # The columns of the file's header (a run resumed by another version may order
            # its record's keys differently): a row is written under its own names.
            fieldnames = list(record) if new else _header(path) or list(record)
            with path.open("a", newline="") as stream:
                writer = csv.DictWriter(stream, fieldnames=fieldnames, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(record)
        except OSError as error:
            raise WriteError(
                f"could not append to {path}: {error.strerror or error}; the checkpoint "
                f"{self.out / 'last.pt'} of this epoch is intact: free space and --resume"
            ) from error
        if self.writer is not None:
            for key, value in record.items():
                if key != "epoch" and not (isinstance(value, float) and math.isnan(value)):
                    self.writer.add_scalar(key, value, record["epoch"])  # not a skipped curve
        summary = ", ".join(
            f"{key} {value:.4g}"
            for key, value in record.items()
            if key != "epoch" and isinstance(value, float)
        )
        self.message(f"epoch {record['epoch']}: {summary}")

    def message(self, text: str) -> None:
        """A line of ``train.log`` (and of the terminal, with ``echo``)."""
        if not self.enabled:
            return
        if self.echo:
            tqdm.write(text)
        with (self.out / "train.log").open("a") as stream:
            stream.write(text + "\n")

    def dynamics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite ``dynamics.csv`` with every record so far (atomically)."""
        if not (self.enabled and records):
            return
        stream = io.StringIO()
        writer = csv.DictWriter(stream, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        atomic_write_text(stream.getvalue(), self.out / "dynamics.csv")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _header(path: Path) -> list[str]:
    """The column names of an existing ``log.csv`` (empty for an empty file)."""
    with path.open(newline="") as stream:
        return next(csv.reader(stream), [])
