"""WebDataset shards of a tags table: round trip, manifest, bad files, damaged shards."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rmlc.data.shards as shards_module
from rmlc.cli import main
from rmlc.data import read_shards, read_tags_table, write_shards
from rmlc.data.shards import MANIFEST
from rmlc.train.data import FileStore, ShardStore

CLASSES = ["cat", "dog", "person"]


def write_images(folder: Path, count: int = 30) -> Path:
    """``count`` small images (PNG, grayscale PNG and JPEG, several sizes) under
    ``folder/img`` and a tags table for them; every fifth row is unlabeled."""
    rng = np.random.default_rng(0)
    (folder / "img" / "sub").mkdir(parents=True)
    rows = ["image,labels"]
    for index in range(count):
        side = 8 + index % 5
        pixels = rng.integers(0, 256, size=(side, side + 2, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if index % 3 == 0:
            name = f"img/{index:02d}.png"
        elif index % 3 == 1:
            name, image = f"img/sub/{index:02d}.png", image.convert("L")
        else:
            name = f"img/{index:02d}.jpg"
        image.save(folder / name)
        labels = "|".join(CLASSES[j] for j in range(3) if (index >> j) & 1) or "cat"
        rows.append(f"{name},{'' if index % 5 == 4 else labels}")
    (folder / "tags.csv").write_text("\n".join(rows) + "\n")
    return folder / "tags.csv"


def test_round_trip_gives_the_files_bytes_and_labels(tmp_path) -> None:
    table_path = write_images(tmp_path)
    manifest_path = write_shards(table_path, tmp_path / "shards", samples_per_shard=7)
    table = read_tags_table(table_path)
    shards = read_shards(tmp_path / "shards")
    assert shards.table.images == table.images
    assert shards.table.classes == table.classes == CLASSES
    np.testing.assert_array_equal(shards.table.targets.toarray(), table.targets.toarray())
    np.testing.assert_array_equal(shards.table.labeled, table.labeled)
    assert (~shards.table.labeled).sum() == 6  # unlabeled rows are kept, with no labels
    store = ShardStore(shards, 12)
    files = FileStore(table.images, tmp_path, 12)
    for row, image in enumerate(table.images):
        assert store.read(row) == (tmp_path / image).read_bytes()  # as stored, not re-encoded
        assert torch.equal(store[row], files[row])
    assert manifest_path == tmp_path / "shards" / MANIFEST


def test_manifest_names_classes_shards_counts_and_source(tmp_path) -> None:
    table_path = write_images(tmp_path)
    write_shards(table_path, tmp_path / "shards", samples_per_shard=7)
    manifest = json.loads((tmp_path / "shards" / MANIFEST).read_text())
    assert manifest["format"] == "rmlc-shards" and manifest["version"] == 1
    assert manifest["classes"] == CLASSES
    assert [entry["name"] for entry in manifest["shards"]] == [
        f"shard-{i:06d}.tar" for i in range(5)
    ]
    assert [entry["samples"] for entry in manifest["shards"]] == [7, 7, 7, 7, 2]
    for entry in manifest["shards"]:
        assert entry["bytes"] == (tmp_path / "shards" / entry["name"]).stat().st_size
    assert (manifest["samples"], manifest["labeled"], manifest["unlabeled"]) == (30, 24, 6)
    assert manifest["source"]["table"] == str(table_path)
    assert manifest["source"]["image_root"] == str(tmp_path)
    assert not list((tmp_path / "shards").glob(".*"))  # no temporary file left
    assert not list(tmp_path.glob(".shards.partial-*"))  # the scratch folder was renamed


def test_webdataset_reads_the_shards_as_written(tmp_path) -> None:
    import webdataset

    table_path = write_images(tmp_path, count=9)
    write_shards(table_path, tmp_path / "shards", samples_per_shard=4)
    urls = [str(path) for path in sorted((tmp_path / "shards").glob("*.tar"))]
    samples = list(webdataset.WebDataset(urls, shardshuffle=False))
    table = read_tags_table(table_path)
    assert [sample["__key__"] for sample in samples] == [f"{i:09d}" for i in range(9)]
    for row, sample in enumerate(samples):
        extension = Path(table.images[row]).suffix[1:]
        assert sample[extension] == (tmp_path / table.images[row]).read_bytes()
        record = json.loads(sample["json"])
        assert record == {"image": table.images[row], "labels": table.labels_of(row)}


def test_bad_files_are_named_at_once_and_nothing_is_written(tmp_path) -> None:
    table_path = write_images(tmp_path)
    (tmp_path / "img" / "03.png").write_bytes(b"")
    (tmp_path / "img" / "06.png").write_bytes(b"not an image")
    (tmp_path / "img" / "09.png").unlink()
    with pytest.raises(ValueError, match="3 of 30 image files cannot be read") as info:
        write_shards(table_path, tmp_path / "shards")
    for name in ("03.png", "06.png", "09.png"):
        assert name in str(info.value)
    assert "nothing was written" in str(info.value)
    assert not (tmp_path / "shards").exists()
    report = (tmp_path / "shards.bad-images.txt").read_text().splitlines()
    assert len(report) == 3
    with pytest.warns(UserWarning, match="skipped: 3 of 30"):
        write_shards(table_path, tmp_path / "kept", bad_images="skip")
    assert len(read_shards(tmp_path / "kept")) == 27


def test_a_write_that_fails_half_way_leaves_no_folder(tmp_path, monkeypatch) -> None:
    import rmlc.data.shards as shards

    table_path = write_images(tmp_path, count=8)
    original = shards._write_into

    def fail_half_way(folder, *args):
        original(folder, *args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shards, "_write_into", fail_half_way)
    with pytest.raises(OSError, match="No space left"):
        write_shards(table_path, tmp_path / "shards", samples_per_shard=3)
    assert not (tmp_path / "shards").exists()
    assert not list(tmp_path.glob(".shards.partial-*"))


def test_a_folder_holding_files_is_not_overwritten(tmp_path) -> None:
    table_path = write_images(tmp_path, count=5)
    write_shards(table_path, tmp_path / "shards")
    with pytest.raises(ValueError, match="not an empty folder"):
        write_shards(table_path, tmp_path / "shards")


def test_damaged_shard_folders_are_errors_that_name_the_problem(tmp_path) -> None:
    table_path = write_images(tmp_path, count=10)
    write_shards(table_path, tmp_path / "shards", samples_per_shard=4)
    folder = tmp_path / "shards"
    manifest = json.loads((folder / MANIFEST).read_text())

    with pytest.raises(FileNotFoundError, match="no shard manifest shards.json"):
        read_shards(tmp_path / "img")
    with pytest.raises(ValueError, match="unknown label 'person', not among the training"):
        read_shards(folder, classes=["cat", "dog"])
    with pytest.raises(ValueError, match="2 samples have no labels"):
        read_shards(folder, require_labels=True)

    (folder / "shard-000001.tar").rename(tmp_path / "moved.tar")
    (folder / "shard-000002.tar").unlink()
    with pytest.raises(FileNotFoundError, match="2 of the 3 shards .* are missing") as info:
        read_shards(folder)
    assert "shard-000001.tar" in str(info.value) and "shard-000002.tar" in str(info.value)
    (tmp_path / "moved.tar").rename(folder / "shard-000001.tar")

    manifest["shards"] = manifest["shards"][:2]
    manifest["shards"][1]["samples"] = 5
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="holds 4 samples, the manifest says 5"):
        read_shards(folder)
    data = (folder / "shard-000000.tar").read_bytes()
    (folder / "shard-000000.tar").write_bytes(data[:3000])
    with pytest.raises(ValueError, match="shard-000000.tar is 3000 bytes, the manifest says"):
        read_shards(folder)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_shards(folder)


def test_each_shard_has_an_index_that_reads_as_its_tar_does(tmp_path, monkeypatch) -> None:
    """write_shards indexes each shard beside it (named in the manifest); reading uses the
    index and gives what scanning the tar gives (a folder without indexes is scanned)."""
    write_shards(write_images(tmp_path), tmp_path / "shards", samples_per_shard=7)
    folder = tmp_path / "shards"
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["shards"]:
        assert entry["index"] == entry["name"] + ".index.json"
        assert entry["index_bytes"] == (folder / entry["index"]).stat().st_size
    scan = shards_module._index_shard
    monkeypatch.setattr(shards_module, "_index_shard", None)  # reading must not scan
    indexed = read_shards(folder)
    monkeypatch.setattr(shards_module, "_index_shard", scan)
    for entry in manifest["shards"]:
        del entry["index"], entry["index_bytes"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    scanned = read_shards(folder)
    assert indexed.table.images == scanned.table.images and indexed.keys == scanned.keys
    np.testing.assert_array_equal(indexed.members, scanned.members)
    assert (indexed.table.targets != scanned.table.targets).nnz == 0
    np.testing.assert_array_equal(indexed.table.labeled, scanned.table.labeled)


def test_a_damaged_index_is_an_error_that_names_it(tmp_path) -> None:
    write_shards(write_images(tmp_path, count=10), tmp_path / "shards", samples_per_shard=4)
    index = tmp_path / "shards" / "shard-000001.tar.index.json"
    text = index.read_text()
    index.write_text(text[:-5])
    with pytest.raises(ValueError, match=r"shard index .*shard-000001.tar.index.json is \d+ b"):
        read_shards(tmp_path / "shards")
    index.write_text("x" * len(text))
    with pytest.raises(ValueError, match="shard-000001.tar.index.json: not an index of samples"):
        read_shards(tmp_path / "shards")
    samples = json.loads(text)["samples"]
    samples[2][1] = 10**9  # an image offset beyond the shard's end
    index.write_text(json.dumps({"samples": samples}))
    manifest = json.loads((tmp_path / "shards" / MANIFEST).read_text())
    manifest["shards"][1]["index_bytes"] = index.stat().st_size
    (tmp_path / "shards" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="inside the shard's .* bytes; got"):
        read_shards(tmp_path / "shards")
    for changed in ((2, 1, samples[2][1] + 1), (3, 1, samples[1][1]), (2, 2, True)):
        damaged = json.loads(text)["samples"]  # off its block, overlapping, not a number
        damaged[changed[0]][changed[1]] = changed[2]
        index.write_text(json.dumps({"samples": damaged}))
        manifest["shards"][1]["index_bytes"] = index.stat().st_size
        (tmp_path / "shards" / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(ValueError, match="in order on 512-byte blocks, apart"):
            read_shards(tmp_path / "shards")
    index.unlink()
    with pytest.raises(ValueError, match="shard-000001.tar.index.json is missing"):
        read_shards(tmp_path / "shards")


def test_reading_shards_holds_samples_compactly(tmp_path, monkeypatch) -> None:
    """2,000 samples with 8 labels each among 4,000 classes, in shards of 100: the index
    keeps per sample its path, key and a few numbers (700 bytes a sample at the peak, the
    class list included), not tuples and lists per sample (944 bytes before, measured on
    10,000 samples among 20,000 classes in shards of 500: a fifth of each here, the same
    classes and shards per sample, 680 bytes then). The writer's decoding check of the
    identical files (tested elsewhere) is left out: every file is reported readable."""
    import tracemalloc

    monkeypatch.setattr(shards_module, "scan_image_files", lambda paths, threads=None: {})

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    (tmp_path / "img").mkdir()
    rng = np.random.default_rng(0)
    rows = ["image,labels"]
    for i in range(2_000):
        (tmp_path / "img" / f"{i:07d}.png").write_bytes(buffer.getvalue())
        labels = "|".join(f"c{j:05d}" for j in rng.choice(4_000, 8, replace=False))
        rows.append(f"img/{i:07d}.png,{labels}")
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    write_shards(tmp_path / "tags.csv", tmp_path / "shards", samples_per_shard=100)
    tracemalloc.start()
    try:
        shards = read_shards(tmp_path / "shards")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(shards) == 2_000 and shards.table.targets.nnz == 16_000
    assert peak / 2_000 < 800, f"{peak / 2_000:.0f} bytes per sample at the peak"


def test_rmlc_shard_command(tmp_path, capsys) -> None:
    table_path = write_images(tmp_path, count=12)
    out = tmp_path / "shards"
    assert main(["shard", str(table_path), str(out), "--samples-per-shard", "5"]) == 0
    assert "wrote 12 samples (2 unlabeled) in 3 shards" in capsys.readouterr().out
    assert len(read_shards(out)) == 12
    (tmp_path / "img" / "00.png").write_bytes(b"")
    assert main(["shard", str(table_path), str(tmp_path / "again")]) == 2
    assert "00.png: empty file" in capsys.readouterr().err


def test_shards_carry_a_tables_verified_negatives(tmp_path) -> None:
    plain = write_images(tmp_path, count=12)
    from rmlc.data import corrupt_file

    hidden = tmp_path / "hidden.csv"
    corrupt_file(plain, hidden, hide=0.5, seed=0)
    table = read_tags_table(hidden)
    assert table.has_negatives and table.negatives.nnz > 0
    write_shards(hidden, tmp_path / "shards", samples_per_shard=5)
    manifest = json.loads((tmp_path / "shards" / MANIFEST).read_text())
    assert manifest["negatives"] is True
    shards = read_shards(tmp_path / "shards")
    assert (shards.table.negatives != table.negatives).nnz == 0
    assert (shards.table.targets != table.targets).nnz == 0
    np.testing.assert_array_equal(shards.table.labeled, table.labeled)
    joined = shards.joined(shards)
    assert joined.table.negatives.shape == (24, len(table.classes))
    # a folder without negatives cannot join one with them: the meaning of a missing tag differs
    write_shards(plain, tmp_path / "plain-shards", samples_per_shard=5)
    with pytest.raises(ValueError, match="with and without verified negatives cannot be joined"):
        shards.joined(read_shards(tmp_path / "plain-shards"))
    assert "negatives" not in json.loads((tmp_path / "plain-shards" / MANIFEST).read_text())
