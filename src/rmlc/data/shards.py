"""Image shards: a tags table and its image files packed into WebDataset tar files.

Millions of small image files are slow to copy, list and open; a few hundred tar files of
about a thousand images each are not. :func:`write_shards` (``rmlc shard``) packs a tags
table into such shards with the ``webdataset`` library; ``rmlc train --train DIR`` (and
``--unlabeled DIR``, ``--test DIR``) trains from them wherever a tags table is accepted.

Layout of a shard folder:

- ``shard-000000.tar``, ``shard-000001.tar``, ...: WebDataset tar files. Sample ``k`` (the
  table's row ``k``, in order) is two members: ``{k:09d}.{ext}``, the image file's bytes
  as stored (never re-encoded; ``ext`` is the file's suffix, e.g. ``png``, ``jpg``), and
  ``{k:09d}.json``, ``{"image": "<path in the table>", "labels": ["dog", "person"]}``
  (an empty list for an unlabeled row), with ``"negatives": [...]`` (the tags verified
  absent) when the table has a negatives column.
- ``shard-000000.tar.index.json``, ...: each shard's index, ``{"samples": [[key, image
  offset, image size, record], ...]}`` (``record`` as in the ``.json`` member).
- ``shards.json``, the manifest: format and version, the class list, whether the samples
  list verified negatives (``"negatives": true``; absent = false), each shard's name,
  sample count and byte size and its index's name and byte size, the sample counts, and
  the source table and image root.
  The folder is written under a scratch name and renamed into place whole, so it is
  complete or absent; a folder without a manifest is refused.

Reading: random access, not streaming. :func:`read_shards` checks the manifest against the
shards and reads each shard's index (about 7 us a sample); a folder written without
indexes (before they existed) is indexed from the tar headers and the small ``.json``
members with the standard library's :mod:`tarfile` instead (about 60 us a sample;
``webdataset`` reads tar files only as streams). Training then reads each image at its
``(shard, byte offset, size)`` (:class:`rmlc.train.data.ShardStore`). A shard folder is
thus an image store like a folder of files, and everything that addresses samples by
position works unchanged: each epoch's seeded order, exact resumes at a step inside an
epoch (the order is a function of the seed and the epoch; the position in it is in the
checkpoint), label propagation over any subset, and DDP, where each rank reads disjoint
samples from its own run of shards (:class:`rmlc.train.sampling.EpochOrder` with
``shards``). The shards must be on a file system that can seek (local disk, NFS and the
like), not an object store read as a stream.

Nothing read from a shard runs code: members are bytes, labels are JSON, images are decoded
by PIL; member names are never used as file system paths.
"""

from __future__ import annotations

import array
import json
import os
import shutil
import tarfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from rmlc.atomic import atomic_write_text
from rmlc.checks import check_choice
from rmlc.data._common import PathLike, as_path, shorten
from rmlc.data.image_dataset import describe_bad_files, scan_image_files
from rmlc.data.tags_table import TagsTable, csr_of_tags, read_tags_table

__all__ = [
    "MANIFEST",
    "SHARD_FORMAT",
    "ShardSet",
    "is_shard_folder",
    "read_shards",
    "write_shards",
]

MANIFEST = "shards.json"
SHARD_FORMAT = "rmlc-shards"
_VERSION = 1
_PATTERN = "shard-%06d.tar"
_KEY_DIGITS = 9
_INDEX_SUFFIX = ".index.json"
_TAR_BLOCK = 512


@dataclass
class ShardSet:
    """The samples of one or more shard folders, indexed for random access.

    Attributes:
        table: the samples' original image paths, targets, labeled flags and classes.
        files: the shard files.
        members: int64 ``(N, 3)``: each sample's shard (into ``files``), the byte offset
            of its image in that shard, and the image's size in bytes.
        keys: each sample's key in its shard (for messages).
    """

    table: TagsTable
    files: list[Path]
    members: np.ndarray
    keys: list[str]

    def __len__(self) -> int:
        return len(self.table)

    def joined(self, other: ShardSet) -> ShardSet:
        """These samples followed by ``other``'s (same classes)."""
        if other.table.classes != self.table.classes:
            raise ValueError("shard sets with different class lists cannot be joined")
        if other.table.has_negatives != self.table.has_negatives:
            raise ValueError(
                "shard sets with and without verified negatives cannot be joined (in one, "
                "a tag not listed is negative; in the other, unknown)"
            )
        members = other.members.copy()
        members[:, 0] += len(self.files)
        negatives = None
        if self.table.has_negatives:
            negatives = scipy.sparse.vstack(
                [self.table.negatives, other.table.negatives], format="csr"
            )
        table = TagsTable(
            self.table.images + other.table.images,
            scipy.sparse.vstack([self.table.targets, other.table.targets], format="csr"),
            np.concatenate([self.table.labeled, other.table.labeled]),
            self.table.classes,
            negatives=negatives,
        )
        return ShardSet(
            table,
            self.files + other.files,
            np.concatenate([self.members, members]),
            self.keys + other.keys,
        )

    def describe(self, row: int) -> str:
        """Where sample ``row`` lives, for messages."""
        return f"{self.files[int(self.members[row, 0])]} member {self.keys[row]}"


def is_shard_folder(path: PathLike) -> bool:
    """Whether ``path`` is meant as a shard folder (a directory) rather than a tags table."""
    return as_path(path).is_dir()


def _image_extension(path: Path) -> str:
    extension = path.suffix.lower().lstrip(".")
    if not extension:
        raise ValueError(f"{path}: an image file needs a suffix (.png, .jpg, ...) to be sharded")
    if extension == "json" or not extension.isalnum():
        raise ValueError(f"{path}: suffix {path.suffix!r} cannot name an image in a shard")
    return extension


def write_shards(
    table: PathLike,
    out_dir: PathLike,
    image_root: PathLike | None = None,
    samples_per_shard: int = 1000,
    bad_images: str = "raise",
    threads: int | None = None,
) -> Path:
    """Pack a tags table and its image files into WebDataset tar shards.

    Every image file is decoded once first (:func:`~rmlc.data.scan_image_files`); bad ones
    are named all at once before anything is written (the full list in
    ``<out_dir>.bad-images.txt``). The images go into the shards as stored. The shards and
    the manifest are written into a scratch folder beside ``out_dir``, renamed into place
    whole: ``out_dir`` appears complete or not at all.

    Args:
        table: the tags table (CSV or JSONL); unlabeled rows are kept, with no labels.
        out_dir: the folder to write; it must not hold shards already.
        image_root: folder the table's image paths start from (default: the table's).
        samples_per_shard: samples per tar file (the last one may hold fewer).
        bad_images: ``"raise"`` (an error naming them) or ``"skip"`` (left out, with a
            warning counting them).
        threads: threads decoding the images for the check (default: one per CPU).

    Returns:
        the manifest's path, ``out_dir/shards.json``.
    """
    check_choice(bad_images, ("raise", "skip"), "bad_images")
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    table_path, out = as_path(table, "table"), as_path(out_dir, "out_dir")
    root = Path(image_root) if image_root is not None else table_path.parent
    tags = read_tags_table(table_path)
    if len(tags) == 0:
        raise ValueError(f"{table_path} has no rows: nothing to shard")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder: shards go into a new one")
    paths = [root / image for image in tags.images]
    extensions = [_image_extension(path) for path in paths]
    reasons = scan_image_files(paths, threads=threads)
    if reasons:
        found = [("table", str(paths[row]), reason) for row, reason in reasons.items()]
        report = Path(f"{str(out).rstrip('/')}.bad-images.txt")
        summary = describe_bad_files(found, len(paths), report)
        if bad_images == "raise":
            raise ValueError(
                f"{summary}\nnothing was written. Fix or remove them, or pass --bad-images "
                "skip to leave them out."
            )
        warnings.warn(f"skipped: {summary}", stacklevel=2)
    rows = [row for row in range(len(paths)) if row not in reasons]
    if not rows:
        raise ValueError(f"{table_path}: no readable image is left to shard")

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()  # as a new folder's permissions (mkdtemp would make it private)
    try:
        _write_into(scratch, tags, paths, extensions, rows, samples_per_shard)
        manifest = _manifest(scratch, tags, rows, samples_per_shard)
        for entry in manifest["shards"]:
            entry["index"], entry["index_bytes"] = _write_index(scratch, entry["name"])
        manifest["source"] = {
            "table": str(table_path),
            "image_root": str(root),
            "skipped_bad_images": len(reasons),
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(text, scratch / MANIFEST)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.rename(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out / MANIFEST


def _write_into(
    folder: Path,
    tags: TagsTable,
    paths: list[Path],
    extensions: list[str],
    rows: list[int],
    samples_per_shard: int,
) -> None:
    """The shards of ``rows`` of the table, written into ``folder`` with ``webdataset``."""
    import webdataset

    writer = webdataset.ShardWriter(
        str(folder / _PATTERN),
        maxcount=samples_per_shard,
        maxsize=float("inf"),
        verbose=0,
        mtime=int(time.time()),  # whole seconds: a float would add a PAX header per member
    )
    try:
        for number, row in enumerate(rows):
            record = {"image": tags.images[row], "labels": tags.labels_of(row)}
            if tags.has_negatives:
                record["negatives"] = tags.negatives_of(row)
            writer.write(
                {
                    "__key__": f"{number:0{_KEY_DIGITS}d}",
                    extensions[row]: paths[row].read_bytes(),
                    "json": json.dumps(record, ensure_ascii=False).encode(),
                }
            )
    finally:
        writer.close()


def _manifest(
    folder: Path, tags: TagsTable, rows: list[int], samples_per_shard: int
) -> dict[str, Any]:
    """The manifest of the shards just written into ``folder`` (``source`` left out)."""
    counts = [
        min(samples_per_shard, len(rows) - start)
        for start in range(0, len(rows), samples_per_shard)
    ]
    names = [_PATTERN % index for index in range(len(counts))]
    labeled = int(tags.labeled[rows].sum())
    return {
        "format": SHARD_FORMAT,
        "version": _VERSION,
        "classes": tags.classes,
        **({"negatives": True} if tags.has_negatives else {}),
        "samples": len(rows),
        "labeled": labeled,
        "unlabeled": len(rows) - labeled,
        "shards": [
            {"name": name, "samples": count, "bytes": (folder / name).stat().st_size}
            for name, count in zip(names, counts, strict=True)
        ],
    }


def _write_index(folder: Path, name: str) -> tuple[str, int]:
    """Index the shard ``name`` just written (its tar headers and ``.json`` members, as
    :func:`read_shards` would) into ``<name>.index.json``: ``{"samples": [[key, image
    offset, image size, record], ...]}``. Returns the index's name and size in bytes."""
    index = f"{name}{_INDEX_SUFFIX}"
    samples = [list(sample) for sample in _index_shard(folder / name)]
    text = json.dumps({"samples": samples}, ensure_ascii=False, separators=(",", ":"))
    atomic_write_text(text, folder / index)
    return index, (folder / index).stat().st_size


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise FileNotFoundError(f"shard folder not found: {folder}")
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} holds no shard manifest {MANIFEST}: write the shards with rmlc shard"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SHARD_FORMAT:
        raise ValueError(f'{path}: not an rmlc shard manifest (no "format": "{SHARD_FORMAT}")')
    if manifest.get("version") != _VERSION:
        raise ValueError(
            f"{path}: manifest version {manifest.get('version')!r}; this rmlc reads "
            f"version {_VERSION}"
        )
    classes, shards = manifest.get("classes"), manifest.get("shards")
    if not isinstance(classes, list) or not all(isinstance(name, str) for name in classes):
        raise ValueError(f"{path}: 'classes' must be a list of class names")
    if not isinstance(shards, list) or not shards:
        raise ValueError(f"{path}: 'shards' must be a non-empty list")
    for entry in shards:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or Path(entry["name"]).name != entry["name"]  # a file of this folder, no path
            or not isinstance(entry.get("samples"), int)
            or not isinstance(entry.get("bytes"), int)
            or ("index" in entry and not _names_index(entry))
        ):
            raise ValueError(
                f"{path}: each shard needs a file 'name' in the folder and integer "
                f"'samples' and 'bytes' (and, if it has an 'index', a file name in the "
                f"folder and integer 'index_bytes'), got {entry!r}"
            )
    return manifest


def _names_index(entry: dict[str, Any]) -> bool:
    index = entry["index"]
    return (
        isinstance(index, str)
        and Path(index).name == index
        and isinstance(entry.get("index_bytes"), int)
    )


def _index_shard(path: Path) -> list[tuple[str, int, int, dict]]:
    """``(key, image offset, image size, json record)`` of each sample of one shard."""
    samples: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, _, extension = member.name.partition(".")
                if not member.isfile() or not key or not extension:
                    raise ValueError(f"unexpected member {member.name!r}")
                parts = samples.setdefault(key, {})
                if extension == "json":
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file
                    parts["json"] = handle.read()
                elif "image" in parts:
                    raise ValueError(f"sample {key} has two images")
                else:
                    parts["image"] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"shard {path} cannot be read as a tar file: {error}") from None
    except ValueError as error:
        raise ValueError(f"shard {path}: {error}") from None
    indexed = []
    for key, parts in samples.items():
        if "image" not in parts or "json" not in parts:
            missing = "image" if "image" not in parts else ".json"
            raise ValueError(f"shard {path}: sample {key} has no {missing}")
        try:
            record = json.loads(parts["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"shard {path}: {key}.json is not valid JSON ({error})") from None
        _check_record(record, f"shard {path}: {key}.json")
        indexed.append((key, *parts["image"], record))
    return indexed


def _check_record(record: Any, where: str) -> None:
    """Raise unless ``record`` is ``{"image": str, "labels": [str, ...]}`` (and, if
    present, ``"negatives": [str, ...]``)."""

    def names(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(label, str) for label in value)

    if (
        not isinstance(record, dict)
        or not isinstance(record.get("image"), str)
        or not names(record.get("labels"))
        or not names(record.get("negatives", []))
    ):
        raise ValueError(
            f"{where} must hold 'image' (a string) and 'labels' (a list of class names), "
            f"got {record!r}"
        )


def _read_index(folder: Path, entry: dict[str, Any]) -> list[tuple[str, int, int, dict]]:
    """A shard's samples from its index file, checked against the manifest's entry: what
    :func:`_index_shard` gives, without reading the tar."""
    path = folder / entry["index"]
    if not path.is_file() or path.stat().st_size != entry["index_bytes"]:
        found = "missing" if not path.is_file() else f"{path.stat().st_size} bytes"
        raise ValueError(
            f"shard index {path} is {found}, the manifest says {entry['index_bytes']} bytes: "
            "write the shards again"
        )
    try:
        samples = json.loads(path.read_bytes())["samples"]
    except (ValueError, RecursionError, TypeError, KeyError) as error:  # JSON errors included
        raise ValueError(f"shard index {path}: not an index of samples ({error!r})") from None
    indexed, end = [], 0  # a member's data starts on a 512-byte block after the previous one
    for sample in samples if isinstance(samples, list) else [None]:
        if (
            not isinstance(sample, list)
            or len(sample) != 4
            or not isinstance(sample[0], str)
            or not all(type(number) is int and number >= 0 for number in sample[1:3])
            or sample[1] % _TAR_BLOCK != 0
            or sample[1] < end
            or sample[1] + sample[2] > entry["bytes"]
        ):
            raise ValueError(
                f"shard index {path}: each sample must be [key, image offset, image size, "
                f"record], the images in order on 512-byte blocks, apart, inside the shard's "
                f"{entry['bytes']} bytes; got {sample!r}"
            )
        _check_record(sample[3], f"shard index {path}: sample {sample[0]}")
        indexed.append(tuple(sample))
        end = sample[1] + sample[2]
    return indexed


def _shard_files(folder: Path, entries: list[dict[str, Any]]) -> list[Path]:
    """The manifest's shard files, each checked present at its recorded size."""
    files = [folder / entry["name"] for entry in entries]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(files)} shards of {folder}/{MANIFEST} are missing: "
            f"{shorten(missing)}"
        )
    for path, entry in zip(files, entries, strict=True):
        if path.stat().st_size != entry["bytes"]:
            raise ValueError(
                f"shard {path} is {path.stat().st_size} bytes, the manifest says "
                f"{entry['bytes']}: it was truncated or rewritten; write the shards again"
            )
    return files


def read_shards(
    folder: PathLike, classes: list[str] | None = None, require_labels: bool = False
) -> ShardSet:
    """Index a shard folder written by :func:`write_shards` for random access.

    Checks the manifest against the shards: every shard present, at its recorded size and
    sample count, every sample an image and its labels.

    Args:
        folder: the shard folder.
        classes: the class list to map labels into (e.g. the training data's when these
            are test shards); default: the manifest's.
        require_labels: if True, unlabeled samples are an error.

    Raises:
        FileNotFoundError: no such folder, no manifest, or shards missing (all named).
        ValueError: naming the shard and sample, for anything that does not match.
    """
    folder = as_path(folder, "folder")
    manifest = _read_manifest(folder)
    entries = manifest["shards"]
    files = _shard_files(folder, entries)
    own = list(manifest["classes"])
    classes = own if classes is None else list(classes)
    column = {name: j for j, name in enumerate(classes)}
    has_negatives = bool(manifest.get("negatives", False))
    # compact accumulation: Python objects only for the paths and keys (about 200 bytes a
    # sample in all), as the tags table reader does
    images, keys, labeled = [], [], bytearray()
    members, indptr, indices = array.array("q"), array.array("q", [0]), array.array("i")
    negative_indptr, negative_indices = array.array("q", [0]), array.array("i")
    for number, (path, entry) in enumerate(zip(files, entries, strict=True)):
        indexed = _read_index(folder, entry) if "index" in entry else _index_shard(path)
        if len(indexed) != entry["samples"]:
            raise ValueError(
                f"shard {path} holds {len(indexed)} samples, the manifest says {entry['samples']}"
            )
        for key, offset, size, record in indexed:
            labels = record["labels"]
            negatives = record.get("negatives", [])
            if has_negatives != ("negatives" in record):
                raise ValueError(
                    f"shard {path}: {key}.json "
                    + ("lacks 'negatives'" if has_negatives else "has 'negatives'")
                    + " where the manifest says "
                    + ("every" if has_negatives else "no")
                    + " sample lists them"
                )
            try:
                indices.extend([column[label] for label in labels])
                negative_indices.extend([column[label] for label in negatives])
            except KeyError as error:
                whose = "the manifest's" if classes is own else "the training data's"
                raise ValueError(
                    f"shard {path}: {key}.json: unknown label {error.args[0]!r}, not among "
                    f"{whose} {len(classes)} classes"
                ) from None
            images.append(record["image"])
            keys.append(key)
            members.extend((number, offset, size))
            indptr.append(len(indices))
            negative_indptr.append(len(negative_indices))
            labeled.append(1 if labels or negatives else 0)
    shape = (len(images), len(classes))
    targets = csr_of_tags(indices, indptr, shape)
    negative_targets = (
        csr_of_tags(negative_indices, negative_indptr, shape) if has_negatives else None
    )
    labeled_flags = np.frombuffer(labeled, np.uint8).astype(bool)
    if require_labels and not labeled_flags.all():
        unlabeled = [keys[i] for i in np.flatnonzero(~labeled_flags)]
        raise ValueError(
            f"{folder}: {len(unlabeled)} samples have no labels (labels are required): "
            f"{shorten(unlabeled)}"
        )
    table = TagsTable(images, targets, labeled_flags, classes, negatives=negative_targets)
    return ShardSet(table, files, np.frombuffer(members, np.int64).reshape(-1, 3), keys)
