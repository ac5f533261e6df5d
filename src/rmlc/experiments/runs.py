"""The runs file of an experiment (``<name>-runs.csv``): one row per trained run, appended
as runs finish, so that a reproduction resumes where it stopped.

A row records the learning rate it trained with. A run counts as done only at the rate its
method is given now: when a grown search changes a method's rate, its runs train again and
the new rows supersede the old ones (the last row of a key wins).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rmlc.atomic import atomic_write_text
from rmlc.experiments.spec import RunKey

__all__ = [
    "RUN_FIELDS",
    "appending",
    "prepare_runs_file",
    "read_runs",
    "run_rate",
    "runs_done",
    "trained_at",
]

RUN_FIELDS = ["variant", "axis", "seed", "method", "lr", "seconds", "metrics", "commit", "device"]


def _key(row: dict[str, Any]) -> RunKey:
    return RunKey(row["variant"], row["axis"], int(row["seed"]), row["method"])


def _latest_rows(path: Path) -> list[dict[str, str]]:
    """The last row of each (variant, axis, seed, method), in the file's order."""
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    return list({_key(row): row for row in rows}.values())


def run_rate(spec, method_name: str, rates: dict[str, Any]) -> float | None:
    """The learning rate a method's run trains with: a fixed-feature method's is that of the
    network whose features it reads (``None`` when no rate is known for it)."""
    method = spec.method(method_name)
    if method is None:
        return None
    rate = rates.get(method.source or method_name)
    return float(rate) if isinstance(rate, (int, float)) else None


def trained_at(row: dict[str, Any], spec, rates: dict[str, Any]) -> bool:
    """Whether a row recorded the learning rate its method is given now (a row from before
    rates were recorded has an empty ``lr`` and does not)."""
    wanted = run_rate(spec, row["method"], rates)
    recorded = row.get("lr") or ""
    return wanted is not None and bool(recorded) and math.isclose(float(recorded), wanted)


def runs_done(path: Path, spec, rates: dict[str, Any]) -> dict[RunKey, dict[str, str]]:
    """The runs that need not train again, keyed by (variant, axis, seed, method)."""
    if not path.is_file():
        return {}
    return {_key(row): row for row in _latest_rows(path) if trained_at(row, spec, rates)}


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The latest row of each run, with ``metrics`` parsed and ``seconds``, ``seed`` numbers."""
    rows: list[dict[str, Any]] = _latest_rows(path)
    for row in rows:
        row["metrics"] = json.loads(row["metrics"])
        row["seconds"] = float(row["seconds"])
        row["seed"] = int(row["seed"])
    return rows


def prepare_runs_file(path: Path) -> None:
    """Give a runs file from before the rate and provenance columns existed the current
    header (its old rows keep empty ``lr``, ``commit`` and ``device``), so that new rows
    record their learning rate and where they ran."""
    if not path.is_file():
        return
    with path.open() as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
    if reader.fieldnames == RUN_FIELDS:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_FIELDS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(buffer.getvalue(), path)


@contextlib.contextmanager
def appending(path: Path) -> Iterator[Callable[..., None]]:
    """``record(key, **fields)`` appends one run's row to the runs file ``path`` (created
    with its header, or an old one given the current header first), flushed at once: a
    reproduction stopped at any moment keeps every run it finished."""
    prepare_runs_file(path)
    new_file = not path.is_file()
    with path.open("a", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=RUN_FIELDS)
        if new_file:
            writer.writeheader()

        def record(key: RunKey, **fields: Any) -> None:
            writer.writerow({**key._asdict(), **fields})
            stream.flush()

        yield record
