"""One run per folder: a new run never mixes its files with another run's.

A run folder (``out``) holds what one run writes: :data:`RUN_FILES` and the folders of
:data:`RUN_FOLDERS`. Before a run starts, :func:`prepare_run_folder` refuses a folder that
already holds any of them, naming them, unless the run resumes the one there (``resume``)
or replaces it (``overwrite``: those run files are removed first, and nothing else of the
folder is touched). ``rmlc train``, :func:`rmlc.train.run` and :func:`rmlc.train.fit`
go through it; the experiment runner trains into fresh temporary folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rmlc.train.config import TrainConfig

__all__ = ["RUN_FILES", "RUN_FOLDERS", "RunFolderError", "prepare_run_folder", "run_files"]

# What a training run writes into its folder (rmlc.train.trainer, rmlc.train.run_log).
RUN_FILES = (
    "config.yaml",
    "log.csv",
    "train.log",
    "dynamics.csv",
    "last.pt",
    "best.pt",
    "metrics.json",
)
RUN_FOLDERS = ("tensorboard",)


class RunFolderError(FileExistsError):
    """The run folder holds another run's files and neither resume nor overwrite was asked."""


def run_files(out: str | Path) -> list[str]:
    """The names of the run files and folders present in ``out`` (in :data:`RUN_FILES`,
    then :data:`RUN_FOLDERS` order; none if ``out`` is not a folder)."""
    folder = Path(out)
    if not folder.is_dir():
        return []
    files = [name for name in RUN_FILES if (folder / name).is_file()]
    return files + [f"{name}/" for name in RUN_FOLDERS if (folder / name).is_dir()]


def prepare_run_folder(config: TrainConfig, main: bool = True) -> list[str]:
    """Make ``config.out`` ready for a new run, or refuse it.

    Args:
        config: the run's configuration (``out``, ``resume``, ``overwrite``).
        main: whether this process removes the files (the main process of a run; the
            others only check).

    Returns:
        the run files removed (``overwrite``), else an empty list.

    Raises:
        RunFolderError: ``out`` holds run files and neither ``resume`` nor ``overwrite``
            is set; the message names the files and both ways on.
    """
    found = run_files(config.out)
    if not found or config.resume:
        return []
    if not config.overwrite:
        raise RunFolderError(
            f"{config.out} already holds a run ({', '.join(found)}): a new run there would "
            "mix its log.csv and train.log with that run's and replace its checkpoints. "
            "Choose another --out, pass --resume to continue that run, or --overwrite to "
            "replace it (its run files are removed first; in Python: resume=True or "
            "overwrite=True)"
        )
    if main:
        folder = Path(config.out)
        for name in found:
            path = folder / name.rstrip("/")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    return found
