"""A disk cache of decoded, resized images: memory-mapped uint8 arrays, one row per file.

Decoding and resizing image files is most of the cost of training a small network on
them. With a cache, each file is decoded once; from then on its row of a memory-mapped
array is read instead (from the page cache, once warm). A row is keyed by the file's path,
byte size and modification time: a file that changed since its row was written is decoded
again. The check runs when the cache is opened (a training run's start), one ``stat`` per
file.

Layout, under ``<folder>/<key>/`` (``key``: a hash of the image side, channels and the
resolved paths, so each list of files at each size has its own arrays):

- ``images.npy``: ``(N, C, S, S)`` uint8, the decoded images;
- ``stamps.npy``: ``(N, 2)`` int64, the byte size and modification time (ns) of the file
  each row was decoded from;
- ``filled.npy``: ``(N,)`` uint8, 1 where a row holds a decoded image (written last).

The arrays are created by the process that opens the cache; decoding worker processes
open them themselves (the cache pickles without them) and write disjoint rows. The files
take ``N * C * S * S`` bytes of disk, allocated as rows are written where the file
system supports sparse files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

__all__ = ["DecodedImageCache"]


def _stamp(path: str) -> tuple[int, int]:
    """``(byte size, modification time in ns)`` of a file; ``(-1, -1)`` when it is gone."""
    try:
        status = os.stat(path)
    except OSError:
        return -1, -1
    return status.st_size, status.st_mtime_ns


class DecodedImageCache:
    """Decoded ``(C, size, size)`` uint8 images of ``paths``, cached under ``folder``.

    Args:
        folder: where caches live (created if need be); several lists of files can share it.
        paths: the image files, one cache row each, in order.
        size: side of the square the images are resized to.
        channels: 3 (RGB) or 1 (grayscale).

    :meth:`get` returns a row's image, or None when the row was never filled or its file
    changed since; :meth:`put` stores a freshly decoded image.
    """

    def __init__(self, folder: str | Path, paths: Sequence[str | Path], size: int, channels: int):
        self.paths = [os.path.abspath(path) for path in paths]
        self.shape = (len(self.paths), channels, size, size)
        digest = hashlib.sha256(json.dumps([size, channels, self.paths]).encode()).hexdigest()
        self.directory = Path(folder) / digest[:24]
        self._arrays: tuple[np.memmap, np.memmap, np.memmap] | None = None
        if not (self.directory / "filled.npy").is_file():
            self._create()
        self._invalidate_changed()

    def _create(self) -> None:
        """Empty arrays, made in a scratch folder beside the cache and renamed into place (a
        run that stops half-way leaves no partial cache; another creating the same one at
        the same moment wins the rename)."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.directory.parent))
        try:
            open_memmap(scratch / "images.npy", "w+", np.uint8, self.shape).flush()
            open_memmap(scratch / "stamps.npy", "w+", np.int64, (self.shape[0], 2)).flush()
            open_memmap(scratch / "filled.npy", "w+", np.uint8, (self.shape[0],)).flush()
            (scratch / "paths.txt").write_text("".join(f"{path}\n" for path in self.paths))
            os.rename(scratch, self.directory)
        except OSError:
            if not (self.directory / "filled.npy").is_file():
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _open(self) -> tuple[np.memmap, np.memmap, np.memmap]:
        if self._arrays is None:
            arrays = tuple(
                np.load(self.directory / name, mmap_mode="r+")
                for name in ("images.npy", "stamps.npy", "filled.npy")
            )
            if arrays[0].shape != self.shape:
                raise ValueError(
                    f"image cache {self.directory} holds images of shape {arrays[0].shape}, "
                    f"expected {self.shape}: remove the folder to rebuild it"
                )
            self._arrays = arrays
        return self._arrays

    def _invalidate_changed(self) -> None:
        """Empty the rows whose file's size or modification time differs from when the row
        was written (or whose file is gone)."""
        _, stamps, filled = self._open()
        rows = np.flatnonzero(filled)
        if rows.size == 0:
            return
        now = np.array([_stamp(self.paths[row]) for row in rows], dtype=np.int64)
        changed = rows[(now != stamps[rows]).any(axis=1)]
        filled[changed] = 0
        filled.flush()

    @property
    def filled_rows(self) -> int:
        """How many rows hold a decoded image."""
        return int(np.count_nonzero(self._open()[2]))

    def get(self, row: int) -> torch.Tensor | None:
        """The cached ``(C, S, S)`` uint8 image of row ``row``, or None."""
        images, _, filled = self._open()
        if not filled[row]:
            return None
        return torch.from_numpy(np.array(images[row]))

    def stamp(self, row: int) -> tuple[int, int]:
        """Row ``row``'s file's ``(byte size, modification time in ns)`` now: take it before
        decoding the file and give it to :meth:`put`."""
        return _stamp(self.paths[row])

    def put(self, row: int, image: torch.Tensor, stamp: tuple[int, int]) -> None:
        """Store the decoded ``(C, S, S)`` uint8 image of row ``row``, decoded from the file
        as it was at ``stamp`` (:meth:`stamp`, taken before decoding: if the file changed
        while it was decoded, the next check finds the stamps differ)."""
        images, stamps, filled = self._open()
        images[row] = image.numpy()
        stamps[row] = stamp
        filled[row] = 1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}  # each process maps the files itself
