"""A torch Dataset over a list of image files, with explicit handling of bad files.

:class:`ImageListDataset` reads images with PIL and returns ``(image, target, index)``.
Unreadable files -- missing, zero-byte, truncated, not an image -- are either an error
naming the file (``on_error="raise"``, the default) or, with ``on_error="skip"``, found by
one scan (:meth:`ImageListDataset.validate`, run automatically before first use) and
dropped with a warning that counts them and names the first few. ``index`` is always the
row in the original list, so it still addresses the caller's label arrays after skipping.

Truncated files are detected by decoding them fully; this relies on PIL's default
``ImageFile.LOAD_TRUNCATED_IMAGES = False`` (code that sets it to True makes PIL pad
truncated images instead).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rmlc.atomic import atomic_write_text
from rmlc.checks import check_choice
from rmlc.data._common import PathLike, shorten

__all__ = [
    "BadImageError",
    "ImageListDataset",
    "check_image_file",
    "describe_bad_files",
    "pil_to_uint8_tensor",
    "scan_image_files",
]

OnError = Literal["raise", "skip"]
_LISTED = 5
_LISTED_BAD_FILES = 20  # named in describe_bad_files' message; all of them in its file


def pil_to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """uint8 ``(C, H, W)`` tensor of a PIL image (like torchvision's ``pil_to_tensor``)."""
    array = np.array(image)  # a writable copy
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


class BadImageError(OSError):
    """An image file that cannot be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _load_image(path: Path, mode: str | None) -> Image.Image:
    """Open and fully decode ``path`` (optionally converting to ``mode``)."""
    try:
        if path.stat().st_size == 0:
            raise BadImageError(path, "empty file (0 bytes)")
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode else image.copy()
    except BadImageError:
        raise
    except FileNotFoundError as error:
        raise BadImageError(path, "file not found") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise BadImageError(path, f"{type(error).__name__}: {error}") from error


def check_image_file(path: PathLike) -> str | None:
    """Why ``path`` cannot be read as an image, or None if it decodes fully."""
    try:
        _load_image(Path(path), None)
    except BadImageError as error:
        return error.reason
    return None


def scan_image_files(paths: Sequence[PathLike], threads: int | None = None) -> dict[int, str]:
    """Every unreadable file of ``paths`` in one pass: ``{position: reason}``.

    Each file is decoded fully (as :func:`check_image_file`), in ``threads`` threads
    (default: one per CPU; PIL decodes without holding the GIL).
    """
    threads = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(threads) as pool:
        reasons = pool.map(check_image_file, paths)
        return {index: reason for index, reason in enumerate(reasons) if reason is not None}


def describe_bad_files(found: Sequence[tuple[str, str, str]], total: int, report: Path) -> str:
    """A message naming bad image files all at once, their full list written to ``report``.

    Args:
        found: ``(split, path, reason)`` of each bad file.
        total: how many files were checked.
        report: where the full list goes (tab-separated; atomically).

    Returns:
        their count and the first ``_LISTED_BAD_FILES`` with what is wrong with each, and
        where the full list is.
    """
    try:
        atomic_write_text("".join(f"{s}\t{p}\t{r}\n" for s, p, r in found), report)
        where = f"the full list: {report}"
    except OSError as error:
        where = f"(the full list could not be written: {error})"
    listed = "\n".join(
        f"  {path}: {reason} ({split})" for split, path, reason in found[:_LISTED_BAD_FILES]
    )
    more = (
        f"\n  ... and {len(found) - _LISTED_BAD_FILES} more"
        if len(found) > _LISTED_BAD_FILES
        else ""
    )
    return f"{len(found)} of {total} image files cannot be read:\n{listed}{more}\n{where}"


class ImageListDataset(Dataset):
    """Images from a list of files, with targets.

    Args:
        paths: ``N`` image paths, relative to ``root`` (absolute paths are kept).
        targets: ``(N, ...)`` array (e.g. ``(N, m)`` multi-hot or ``(N,)`` classes), or
            None for unlabeled images (the target returned is then ``-1``).
        root: folder the relative paths are resolved against (default: as given).
        transform: callable applied to the PIL image; default: a uint8 ``(C, H, W)`` tensor.
        on_error: ``"raise"`` (bad files are a :class:`BadImageError` naming the file) or
            ``"skip"`` (bad files are dropped by :meth:`validate`, with a warning).
        mode: PIL mode images are converted to (``"RGB"``, ``"L"``; None keeps it).

    Items are ``(image, target, index)``: the transformed image, the target as a tensor,
    and the position of the image in ``paths``.
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        targets: np.ndarray | torch.Tensor | None = None,
        root: PathLike | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        on_error: OnError = "raise",
        mode: str | None = "RGB",
    ) -> None:
        check_choice(on_error, ("raise", "skip"), "on_error")
        self.paths = [str(path) for path in paths]
        if targets is not None:
            targets = torch.as_tensor(np.asarray(targets))
            if targets.ndim == 0 or targets.shape[0] != len(self.paths):
                raise ValueError(
                    f"targets must have {len(self.paths)} rows (one per path), got shape "
                    f"{tuple(targets.shape)}"
                )
        self.targets = targets
        self.root = None if root is None else Path(root)
        self.transform = transform
        self.on_error = on_error
        self.mode = mode
        self.indices = np.arange(len(self.paths), dtype=np.int64)
        self._validated = False

    def path(self, index: int) -> Path:
        """Resolved path of the image at position ``index`` of the original list."""
        path = Path(self.paths[index])
        return path if self.root is None or path.is_absolute() else self.root / path

    def validate(self) -> list[tuple[str, str]]:
        """Decode every image once; drop (skip mode) or report (raise mode) bad files.

        Returns:
            ``(path, reason)`` for each bad file found (empty when all are readable).

        Raises:
            BadImageError: in raise mode, naming the first bad file (and counting all).
        """
        bad: list[tuple[str, str]] = []
        keep = []
        for index in self.indices:
            reason = check_image_file(self.path(int(index)))
            if reason is None:
                keep.append(index)
            else:
                bad.append((str(self.path(int(index))), reason))
        if bad and self.on_error == "raise":
            first_path, first_reason = bad[0]
            more = f" ({len(bad)} bad files in all)" if len(bad) > 1 else ""
            raise BadImageError(first_path, first_reason + more)
        if bad:
            listed = shorten([f"{path} ({reason})" for path, reason in bad], _LISTED)
            warnings.warn(
                f"ImageListDataset: skipped {len(bad)} of {len(self.indices)} images that "
                f"cannot be read: {listed}",
                stacklevel=2,
            )
        self.indices = np.asarray(keep, dtype=np.int64)
        self._validated = True
        return bad

    def _ensure_validated(self) -> None:
        if self.on_error == "skip" and not self._validated:
            self.validate()

    def __len__(self) -> int:
        self._ensure_validated()
        return int(self.indices.size)

    def __getitem__(self, item: int) -> tuple[Any, torch.Tensor, int]:
        self._ensure_validated()
        index = int(self.indices[item])
        image = _load_image(self.path(index), self.mode)
        data = self.transform(image) if self.transform is not None else pil_to_uint8_tensor(image)
        target = torch.tensor(-1) if self.targets is None else self.targets[index]
        return data, target, index
