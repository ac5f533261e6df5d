"""Reader and writer for the IDX format of (Fashion-)MNIST, gzip-compressed or not.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian
uint32 dimension sizes, then the values in C order, big-endian. MNIST-style image files
have magic 2051 (``0x00000803``: unsigned bytes, 3 dimensions ``(N, rows, cols)``) and
label files magic 2049 (``0x00000801``: unsigned bytes, 1 dimension ``(N,)``).

Every problem (missing file, damaged gzip stream, wrong magic, truncated or oversized data,
images and labels of different lengths) is an error that names the file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from rmlc.atomic import atomic_write
from rmlc.data._common import PathLike, as_path

__all__ = [
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
    "write_idx",
]

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian NumPy dtype.
_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in _TYPE_CODES.items()}


def _read_bytes(path: Path) -> bytes:
    """Whole (decompressed) content of ``path``; gzip is recognised by its magic bytes."""
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from error


def read_idx(path: PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a native-endian array.

    Args:
        path: the ``.idx``/``-ubyte`` file, or its ``.gz`` version.
        expected_magic: if given, the magic number the file must have (e.g. 2051).

    Returns:
        array of the shape and type stored in the file, e.g. uint8 ``(N, 28, 28)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file, for a damaged gzip stream, a wrong magic number, an
            unknown type code, or data shorter or longer than the header says.
    """
    path = as_path(path)
    content = _read_bytes(path)
    if len(content) < 4:
        raise ValueError(
            f"{path}: truncated IDX file: {len(content)} bytes, shorter than the 4-byte magic"
        )
    (magic,) = struct.unpack(">I", content[:4])
    zero, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: wrong magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"(0x{expected_magic:08x}); is this the right file?"
        )
    if zero != 0 or type_code not in _TYPE_CODES:
        raise ValueError(
            f"{path}: not an IDX file: magic number {magic} (0x{magic:08x}) has an unknown "
            f"type code 0x{type_code:02x}"
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"file has {len(content)}"
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    dtype = _TYPE_CODES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(content) - header_size
    if found < expected:
        raise ValueError(
            f"{path}: truncated IDX data: shape {shape} needs {expected} bytes after the "
            f"header, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{path}: {found - expected} unexpected bytes after the IDX data of shape {shape}"
        )
    data = np.frombuffer(content, dtype=dtype, count=expected // dtype.itemsize, offset=header_size)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_images(path: PathLike) -> np.ndarray:
    """Read an IDX image file (magic 2051) as uint8 ``(N, rows, cols)``."""
    return read_idx(path, expected_magic=IDX_IMAGES_MAGIC)


def read_idx_labels(path: PathLike) -> np.ndarray:
    """Read an IDX label file (magic 2049) as int64 ``(N,)``."""
    return read_idx(path, expected_magic=IDX_LABELS_MAGIC).astype(np.int64)


def read_idx_pair(images_path: PathLike, labels_path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files, checking that their lengths agree.

    Returns:
        ``(images, labels)``: uint8 ``(N, rows, cols)`` and int64 ``(N,)``.

    Raises:
        ValueError: naming both files when the counts differ (and see :func:`read_idx`).
    """
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise ValueError(
            f"mismatched IDX files: {images_path} holds {len(images)} images but "
            f"{labels_path} holds {len(labels)} labels"
        )
    return images, labels


def write_idx(path: PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    Args:
        path: destination file.
        array: uint8, int8, int16, int32, float32 or float64 array of at least 1 dimension.
        compress: force (True) or prevent (False) gzip; default: by the ``.gz`` suffix.

    Returns:
        the path written.
    """
    path = as_path(path)
    array = np.asarray(array)
    code = _DTYPE_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype} (writing {path})")
    if array.ndim < 1 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got shape {array.shape} ({path})")
    header = struct.pack(f">I{array.ndim}I", (code << 8) | array.ndim, *array.shape)
    content = header + np.ascontiguousarray(array, dtype=_TYPE_CODES[code]).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    data = gzip.compress(content, mtime=0) if compress else content
    atomic_write(path, lambda stream: stream.write(data))
    return path
