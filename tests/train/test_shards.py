"""Training from WebDataset shards: the same batches as from the files, exact resumes, and
disjoint samples per DDP rank."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rmlc.data import write_shards
from rmlc.train import TrainingInterrupted, build_trainer
from rmlc.train.checkpoint import load_checkpoint
from rmlc.train.data import FileStore, ShardStore
from rmlc.train.datasets import build_training_data
from rmlc.train.loading import epoch_sampler
from rmlc.train.sampling import EpochOrder, ShardedSampler
from rmlc.train.trainer import Trainer
from tests.train.conftest import tiny_config
from tests.train.test_trainer import signal_during_step


@pytest.fixture(scope="module")
def shard_tables(mosaic_tables, tmp_path_factory) -> dict[str, Path]:
    """The mosaic tables' training, unlabeled and test images as shard folders."""
    folder = tmp_path_factory.mktemp("mosaic-shards")
    shards = {"root": mosaic_tables["root"]}
    for name in ("train", "unlabeled", "test"):
        write_shards(mosaic_tables[name], folder / name, samples_per_shard=20)
        shards[name] = folder / name
    return shards


def record_batches(trainer: Trainer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(uint8 images, positions)`` of every step the trainer takes, in order."""
    batches, original_step = [], trainer.step

    def step(images, indices):
        batches.append((images.clone(), indices.clone()))
        return original_step(images, indices)

    trainer.step = step
    return batches


def assert_same_batches(one, other) -> None:
    assert len(one) == len(other)
    for (images, positions), (other_images, other_positions) in zip(one, other, strict=True):
        assert torch.equal(positions, other_positions)
        assert torch.equal(images, other_images)


def test_shards_train_like_the_files_and_resume_exactly(mosaic_tables, shard_tables, tmp_path):
    """72 labeled training images, batch 16: 5 steps per epoch, 2 epochs. From shards:
    the same images in the same order as from the files, hence the same weights; a run
    stopped in the middle of epoch 2 and resumed sees the same batches as a straight one."""

    def sharded(out: str, **overrides):
        config = tiny_config(
            shard_tables, tmp_path / out, image_root=None, image_size=None, **overrides
        )
        return build_trainer(config)

    files = build_trainer(tiny_config(mosaic_tables, tmp_path / "files", image_size=None))
    files_batches = record_batches(files)
    files.fit()
    straight = sharded("straight")
    assert isinstance(straight.data.train.store, ShardStore)
    assert isinstance(straight.data.test[0].store, ShardStore)
    assert straight.data.normalization == files.data.normalization  # 56 px, the images' own
    straight_batches = record_batches(straight)
    straight.fit()
    assert_same_batches(straight_batches, files_batches)
    weights = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    for name, value in load_checkpoint(tmp_path / "files" / "last.pt")["model"].items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0)
    assert straight.history[-1]["val_mAP"] == files.history[-1]["val_mAP"]

    interrupted = sharded("resumed")
    seen = record_batches(interrupted)
    signal_during_step(interrupted, 7, signal.SIGINT)  # step 2 of epoch 2
    with pytest.raises(TrainingInterrupted, match="checkpoint saved"):
        interrupted.fit()
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["position"]["step_in_epoch"] == 2
    resumed = sharded("resumed", resume=True)
    seen_after = record_batches(resumed)
    resumed.fit()
    assert len(seen) == 7
    assert_same_batches(seen + seen_after, straight_batches)
    final = load_checkpoint(tmp_path / "resumed" / "last.pt")["model"]
    for name, value in weights.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_ranks_read_disjoint_samples_from_their_own_shards(
    shard_tables, tmp_path, world_size
) -> None:
    """Rank r of w takes positions r, r + w, ... of each epoch's order (the trainer's own
    sampler). From shards, that order gives each rank its own run of shards: the ranks
    together open at most w - 1 shards more than there are (the shards at the runs'
    boundaries), against w times as many when every rank reads every shard. Every sample
    is read, a rank repeats only its own samples to even out the shares, and a resumed
    step sees the rest of the same share."""
    config = tiny_config(shard_tables, tmp_path / "run", image_root=None)
    data = build_training_data(config)
    members = data.train.store.shards.members
    labeled = len(data.labeled)  # 72 training images, in shards of 20 with the validation's
    orders = []
    for epoch in (0, 1):
        samples, shards, lengths = [], [], []
        for rank in range(world_size):
            context = SimpleNamespace(rank=rank, world_size=world_size)
            sampler: ShardedSampler = epoch_sampler(data, config, context, with_unlabeled=False)
            sampler.set_epoch(epoch)
            positions = list(sampler)
            assert len(positions) == len(sampler) == -(-labeled // world_size)
            sampler.set_epoch(epoch, start_step=1)  # resuming after this rank's first batch
            assert list(sampler) == positions[sampler.batch_size :]
            rows = data.train.rows[positions]
            samples.append({tuple(members[int(row), :2]) for row in rows})
            shards.append({int(members[int(row), 0]) for row in rows})
            lengths.append(len(positions))
        orders.append(shards)
        assert len(set().union(*samples)) == labeled  # every sample is read ...
        assert sum(len(share) for share in samples) == labeled  # ... by one rank only
        opened = sum(len(share) for share in shards)
        assert opened <= len(set().union(*shards)) + world_size - 1
    assert orders[0] != orders[1]  # the shards are dealt out anew each epoch


@pytest.mark.slow
def test_two_gloo_processes_train_from_shards(shard_tables, tmp_path) -> None:
    """torchrun-style training from shards with the per-rank shard order: both ranks take
    the same number of steps, finish, and rank 0 writes the run (and a resumable end)."""
    import json

    from tests.processes import process_context
    from tests.train.test_distributed import free_port, worker

    config = tiny_config(shard_tables, tmp_path / "two", image_root=None, epochs=2)
    context = process_context()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, 2, port, config)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0, 0]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert 0.0 <= metrics["mAP"] <= 100.0
    position = load_checkpoint(tmp_path / "two" / "last.pt")["position"]
    assert position["epoch"] == 2 and position["step_in_epoch"] == 0


def test_a_single_process_reads_its_epoch_in_the_unsharded_order() -> None:
    """One reader: the order ignores the shards (the same batches as from files)."""
    shards = torch.arange(40) // 10
    plain = EpochOrder(torch.arange(40), seed=3)
    grouped = EpochOrder(torch.arange(40), seed=3, shards=shards, readers=1)
    assert torch.equal(plain.indices(2), grouped.indices(2))
    split = EpochOrder(torch.arange(40), seed=3, shards=shards, readers=4).indices(2)
    assert sorted(split.tolist()) == list(range(40))
    per_reader = [set(shards[split[reader::4]].tolist()) for reader in range(4)]
    assert sorted(per_reader, key=min) == [{0}, {1}, {2}, {3}]  # 4 shards of 10: one each


def test_shards_and_tables_mix_only_where_it_is_clear(mosaic_tables, shard_tables, tmp_path):
    # unlabeled shards join the training shards; a test table's images start at its folder
    config = tiny_config(
        shard_tables,
        tmp_path / "run",
        image_root=None,
        unlabeled=str(shard_tables["unlabeled"]),
        semi_supervised=True,
        test=str(mosaic_tables["test"]),
    )
    data = build_training_data(config)
    store = data.train.store
    assert len(data.unlabeled) == 64 and len(store) == 96 + 64
    assert isinstance(data.test[0].store, FileStore)
    unlabeled_row = int(data.train.rows[data.unlabeled[0]])
    path = mosaic_tables["root"] / store.shards.table.images[unlabeled_row]
    assert store.read(unlabeled_row) == path.read_bytes()

    foreign = tmp_path / "foreign.csv"
    foreign.write_text("image,labels\nimages/test-0000.png,Bag|Zebra\n")
    with pytest.raises(ValueError, match="unknown label 'Zebra'"):
        build_training_data(tiny_config(shard_tables, tmp_path / "r", test=str(foreign)))
    mixed = tiny_config(shard_tables, tmp_path / "r", unlabeled=str(mosaic_tables["unlabeled"]))
    with pytest.raises(ValueError, match="must be of one kind"):
        build_training_data(mixed)
    with pytest.raises(FileNotFoundError, match="trian not found .a tags table or a shard"):
        build_training_data(
            tiny_config(shard_tables, tmp_path / "r", train=str(tmp_path / "trian"))
        )
    empty = tmp_path / "not-shards"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not-shards holds no shard manifest"):
        build_training_data(tiny_config(shard_tables, tmp_path / "r", train=str(empty)))


def test_decoding_workers_read_the_shards_themselves(shard_tables) -> None:
    """Worker processes open the shard files themselves: the same images as in-process."""
    from torch.utils.data import DataLoader

    from rmlc.data import read_shards
    from rmlc.train.data import ImageView

    store = ShardStore(read_shards(shard_tables["test"]), 24)
    direct = torch.stack([store[row] for row in range(len(store))])
    store.read(0)  # a handle opened here is not used by the workers
    loader = DataLoader(ImageView(store), batch_size=10, num_workers=2)
    assert torch.equal(torch.cat([images for images, _ in loader]), direct)


def test_a_process_keeps_a_bounded_number_of_shards_open(
    shard_tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every shard in turn keeps at most ``_OPEN_SHARDS`` files open (a run over
    thousands of shards would otherwise run out of file descriptors), and re-reading a
    closed shard opens it again: the same images."""
    import rmlc.train.data as data_module
    from rmlc.data import read_shards

    monkeypatch.setattr(data_module, "_OPEN_SHARDS", 2)
    shards = read_shards(shard_tables["train"])
    store = ShardStore(shards, 24)
    assert len(shards.files) > 2
    first = [store.read(row) for row in range(len(store))]
    assert len(store._handles) == 2
    closed = [handle for handle in store._handles.values() if handle.closed]
    assert not closed
    again = [store.read(row) for row in reversed(range(len(store)))]
    assert again[::-1] == first and len(store._handles) == 2
