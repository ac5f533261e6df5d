"""Writing results without ever damaging the previous version of a file.

A file is written to a temporary name in the same folder, flushed to disk and renamed over
the old one (``os.replace`` is atomic on POSIX and Windows): at any moment the path holds
either the previous complete file or the new complete one, whether the process is killed,
the disk fills up or the write fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["WriteError", "atomic_write", "atomic_write_text", "check_writable"]


class WriteError(OSError):
    """A results file could not be written; the previous version is intact."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(stream)`` on a temporary file, then rename it to ``path``.

    Raises:
        WriteError: the folder cannot be written or the disk is full, naming the file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise WriteError(f"could not write {path}: {error.strerror or error}") from error
    try:
        os.fchmod(handle, _permissions_of_a_new_file())  # mkstemp makes 0600: as open() would
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
            raise WriteError(
                f"could not write {path}: {reason}; the previous file is intact"
            ) from error
        raise


def _permissions_of_a_new_file() -> int:
    """``0o666`` less the process's umask: what ``open(path, "w")`` gives a new file."""
    try:  # read without changing it (Linux): setting and restoring it races other threads
        status = Path("/proc/self/status").read_text()
        umask = int(next(line for line in status.splitlines() if line.startswith("Umask:"))[6:], 8)
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file (metrics, configs) atomically."""
    atomic_write(path, lambda stream: stream.write(text.encode()))


def check_writable(folder: str | Path) -> None:
    """Fail early, naming the folder, when results could not be written there.

    Leaves nothing behind: folders it had to create for the test are removed again.
    """
    folder = Path(folder)
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise WriteError(
            f"output folder {folder} cannot be written: {error.strerror or error}"
        ) from None
    finally:
        for path in created:  # the deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
