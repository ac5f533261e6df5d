"""The decoded-image cache: each file decoded once, re-decoded when it changes, shared by
decoding workers, and training from it gives the same result as from the files."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rmlc.train import build_trainer
from rmlc.train.data import FileStore, ImageView
from tests.train.conftest import tiny_config


def _write_images(folder, count: int, side: int = 20) -> list:
    generator = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"image-{index}.png"
        pixels = generator.integers(0, 256, (side, side + 4, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def decoded(monkeypatch):
    """Counts the files FileStore decodes."""
    opened: list[str] = []
    decode = FileStore._decode

    def counting(self, path):
        opened.append(str(path))
        return decode(self, path)

    monkeypatch.setattr(FileStore, "_decode", counting)
    return opened


def test_each_file_is_decoded_once_and_read_from_the_cache_after(tmp_path, decoded) -> None:
    paths = _write_images(tmp_path, 6)
    plain = [FileStore(paths, None, 16)[row] for row in range(6)]
    decoded.clear()

    cached = FileStore(paths, None, 16, cache=tmp_path / "cache")
    first = [cached[row] for row in range(6)]
    assert len(decoded) == 6 and cached.cache.filled_rows == 6
    again = FileStore(paths, None, 16, cache=tmp_path / "cache")  # a later run
    second = [again[row] for row in range(6)]
    assert len(decoded) == 6  # no file decoded again
    for expected, a, b in zip(plain, first, second, strict=True):
        assert a.dtype == torch.uint8 and a.shape == (3, 16, 16)
        assert torch.equal(expected, a) and torch.equal(expected, b)

    other_size = FileStore(paths, None, 12, cache=tmp_path / "cache")  # its own arrays
    assert other_size.cache.filled_rows == 0 and other_size[0].shape == (3, 12, 12)


def test_a_changed_file_is_decoded_again(tmp_path, decoded) -> None:
    paths = _write_images(tmp_path, 4)
    store = FileStore(paths, None, 16, cache=tmp_path / "cache")
    before = [store[row] for row in range(4)]
    Image.fromarray(np.full((20, 24, 3), 7, dtype=np.uint8)).save(paths[2])
    stamp = os.stat(paths[2])
    os.utime(paths[2], ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    decoded.clear()

    reopened = FileStore(paths, None, 16, cache=tmp_path / "cache")
    assert reopened.cache.filled_rows == 3
    after = [reopened[row] for row in range(4)]
    assert decoded == [str(paths[2])]
    assert torch.equal(after[2], torch.full((3, 16, 16), 7, dtype=torch.uint8))
    assert all(torch.equal(before[row], after[row]) for row in (0, 1, 3))


def test_decoding_workers_fill_one_shared_cache(tmp_path) -> None:
    """The store pickles without its mapped arrays; workers map and fill them."""
    paths = _write_images(tmp_path, 8)
    store = FileStore(paths, None, 16, cache=tmp_path / "cache")
    assert len(pickle.dumps(store)) < 4096  # no image data travels to the workers
    loader = DataLoader(ImageView(store), batch_size=3, num_workers=2)
    images = torch.cat([batch for batch, _ in loader])
    assert store.cache.filled_rows == 8
    reopened = FileStore(paths, None, 16, cache=tmp_path / "cache")
    assert torch.equal(torch.stack([reopened.cache.get(row) for row in range(8)]), images)


def test_a_cache_of_another_shape_is_an_error_naming_it(tmp_path) -> None:
    paths = _write_images(tmp_path, 2)
    store = FileStore(paths, None, 16, cache=tmp_path / "cache")
    folder = store.cache.directory
    np.save(folder / "images.npy", np.zeros((2, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=f"image cache {folder} holds images of shape"):
        FileStore(paths, None, 16, cache=tmp_path / "cache")


def test_training_from_the_cache_matches_training_from_the_files(
    mosaic_tables, tmp_path, decoded
) -> None:
    config = {"epochs": 2, "image_size": 24}
    plain = build_trainer(tiny_config(mosaic_tables, tmp_path / "plain", **config)).fit()
    files_read = len(decoded)
    decoded.clear()
    cache = str(tmp_path / "cache")
    cached = build_trainer(
        tiny_config(mosaic_tables, tmp_path / "cached", image_cache=cache, **config)
    ).fit()
    assert cached["mAP"] == plain["mAP"]
    # the first epoch decodes each training, validation and test file once; the second
    # epoch and every later evaluation read the cache
    assert len(decoded) == len(set(decoded)) < files_read


def test_a_file_changed_while_it_was_decoded_is_decoded_again(tmp_path, monkeypatch) -> None:
    """The row keeps the stamp the file had before decoding: a change during decoding makes
    the stamps differ, so the next run decodes the file again instead of keeping the old
    picture."""
    paths = _write_images(tmp_path, 2)
    decode = FileStore._decode

    def changed_meanwhile(self, path):
        image = decode(self, path)
        Image.fromarray(np.full((20, 24, 3), 9, dtype=np.uint8)).save(path)
        stamp = os.stat(path)
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
        return image

    monkeypatch.setattr(FileStore, "_decode", changed_meanwhile)
    FileStore(paths, None, 16, cache=tmp_path / "cache")[0]
    monkeypatch.setattr(FileStore, "_decode", decode)
    reopened = FileStore(paths, None, 16, cache=tmp_path / "cache")
    assert reopened.cache.get(0) is None
    assert torch.equal(reopened[0], torch.full((3, 16, 16), 9, dtype=torch.uint8))
