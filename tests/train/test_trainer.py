"""End-to-end training on CPU: supervised, semi-supervised refreshes, resume, interruption."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from rmlc.propagation import propagate_labels
from rmlc.train import TrainingInterrupted, build_trainer, run
from rmlc.train.checkpoint import load_checkpoint
from rmlc.train.targets import SparseTargets
from tests.train.conftest import tiny_config

METRIC_KEYS = {"mAP", "P-C", "R-C", "F1-C", "P-O", "R-O", "F1-O"}


@pytest.mark.parametrize("loss", ["rmlc", "warp", "bce", "softmax", "asl", "gce", "llr"])
def test_supervised_run_writes_metrics_and_checkpoints(mosaic_tables, tmp_path, loss) -> None:
    config = tiny_config(mosaic_tables, tmp_path / "run", loss=loss)
    metrics = run(config)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(written) >= METRIC_KEYS and set(metrics) >= METRIC_KEYS
    for key in METRIC_KEYS:
        assert 0.0 <= written[key] <= 100.0
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()
    record = written["provenance"]  # where the numbers came from
    assert set(record) >= {"command", "commit", "versions", "device"}
    assert record["device"].startswith("cpu") and "torch" in record["versions"]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 1 + config.epochs and "val_mAP" in log[0]
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["backbone"] == "small-cnn" and checkpoint["num_classes"] == 10


def test_semi_supervised_refreshes_at_the_configured_epochs(mosaic_tables, tmp_path) -> None:
    config = tiny_config(
        mosaic_tables,
        tmp_path / "ss",
        unlabeled=str(mosaic_tables["unlabeled"]),
        semi_supervised=True,
        warmup_epochs=1,
        refresh_every=2,
        epochs=4,
    )
    trainer = build_trainer(config)
    assert isinstance(trainer.targets, SparseTargets)  # a tags table's targets stay sparse
    refreshes, snapshots = [], []
    original = trainer.refresh_labels

    def spy(epoch: int) -> None:
        original(epoch)
        refreshes.append(epoch)
        snapshots.append(trainer.targets[trainer.data.unlabeled].clone())
        # each unlabeled image holds exactly the labels of its nearest labeled image
        labeled, unlabeled = trainer.data.labeled, trainer.data.unlabeled
        subset = torch.utils.data.Subset
        features, rows = trainer.extract_features(subset(trainer.data.train, labeled.tolist()))
        queries, query_rows = trainer.extract_features(
            subset(trainer.data.train, unlabeled.tolist())
        )
        expected = propagate_labels(features, trainer.targets[rows], queries, t=config.t)
        assert torch.equal(trainer.targets[query_rows], expected.labels)
        assert torch.equal(trainer.sample_weights[query_rows], expected.weights)

    trainer.refresh_labels = spy
    trainer.fit()
    assert refreshes == [1, 3]  # after 1 warm-up epoch, then every 2 epochs
    assert len(trainer.data.unlabeled) == 64
    weights = trainer.sample_weights[trainer.data.unlabeled]
    assert ((weights > 0) & (weights <= 1)).all() and weights.min() < 1
    assert (snapshots[0].sum(dim=1) > 0).all()  # every unlabeled image got labels
    assert not torch.equal(snapshots[0], snapshots[1])  # the network changed its features
    assert [row["unlabeled_in_use"] for row in trainer.history] == [0, 1, 1, 1]


def test_the_trainer_refreshes_labels_with_the_configured_index(
    mosaic_tables, tmp_path, monkeypatch
) -> None:
    """The label refresh searches with the configured approximate index."""
    pytest.importorskip("faiss")
    import rmlc.train.refresh as refresh_module
    from rmlc.propagation import propagate_labels

    calls = []

    def spy(*args, **kwargs):
        result = propagate_labels(*args, **kwargs)
        calls.append((kwargs, result))
        return result

    monkeypatch.setattr(refresh_module, "propagate_labels", spy)
    config = tiny_config(
        mosaic_tables,
        tmp_path / "ss-ivf",
        unlabeled=str(mosaic_tables["unlabeled"]),
        semi_supervised=True,
        warmup_epochs=1,
        refresh_every=1,
        epochs=2,
        propagation_index="ivf",
        propagation_index_params={"nlist": 4, "nprobe": 2},
    )
    run(config)
    assert len(calls) == 1
    kwargs, result = calls[0]
    assert kwargs["index"] == "ivf" and kwargs["index_params"] == {"nlist": 4, "nprobe": 2}
    assert len(result.neighbors) == 64 and bool((result.weights > 0).all())


def test_index_settings_that_do_not_fit_the_labeled_count_fail_before_training(
    mosaic_tables, tmp_path
) -> None:
    """nprobe above the default nlist for this labeled count is an error when the trainer
    is built, not at the first label refresh after the warm-up."""
    pytest.importorskip("faiss")
    config = tiny_config(
        mosaic_tables,
        tmp_path / "ss-bad",
        unlabeled=str(mosaic_tables["unlabeled"]),
        semi_supervised=True,
        warmup_epochs=1,
        epochs=2,
        propagation_index="ivf",
        propagation_index_params={"nprobe": 500},
    )
    with pytest.raises(ValueError, match="labeled images: .*nprobe"):
        build_trainer(config)
    assert not (tmp_path / "ss-bad" / "last.pt").exists()


def signal_during_step(trainer, step: int, *signals: int) -> None:
    """Send these signals to this process in the middle of the trainer's step ``step`` (1-based)."""
    original_step, calls = trainer.step, []

    def step_with_signals(images, indices):
        calls.append(1)
        if len(calls) == step:
            for number in signals:
                os.kill(os.getpid(), number)
        return original_step(images, indices)

    trainer.step = step_with_signals


@pytest.fixture(scope="module")
def straight_run(mosaic_tables, tmp_path_factory) -> tuple[dict, list[dict]]:
    """The final weights and history of the 3-epoch run the interrupted ones resume to."""
    out = tmp_path_factory.mktemp("straight")
    straight = build_trainer(tiny_config(mosaic_tables, out, epochs=3))
    straight.fit()
    return load_checkpoint(out / "last.pt")["model"], straight.history


@pytest.mark.parametrize(
    ("stop_at_step", "number"),
    [(5, signal.SIGINT), (12, signal.SIGINT), (7, signal.SIGTERM)],  # mid-epoch, epoch end
)
def test_interrupted_run_resumes_to_the_same_weights(
    mosaic_tables, straight_run, tmp_path, stop_at_step, number
):
    """72 labeled training images, batch 16: 5 steps per epoch; 3 epochs. The signal comes
    in the middle of a step: that step finishes, then the checkpoint is saved."""
    final_straight, straight_history = straight_run
    interrupted = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", epochs=3))
    signal_during_step(interrupted, stop_at_step, number)
    with pytest.raises(TrainingInterrupted, match="checkpoint saved.*resume with --resume") as info:
        interrupted.fit()
    assert info.value.exit_code == 128 + number
    assert signal.getsignal(number) is not interrupted.stop._handle  # handlers restored
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert saved["position"]["global_step"] == stop_at_step
    resumed = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", epochs=3, resume=True))
    resumed.fit()
    final_resumed = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    for name, value in final_straight.items():
        torch.testing.assert_close(final_resumed[name], value, rtol=0, atol=0)
    assert resumed.history[-1]["val_mAP"] == straight_history[-1]["val_mAP"]
    assert len(resumed.history) == len(straight_history) == 3


def test_large_loss_rejection_learns_each_epoch_and_resumes_exactly(
    mosaic_tables, tmp_path, monkeypatch
) -> None:
    """LL-R's registry entry takes the epoch: the trainer sets it at each epoch's start
    (again when resuming in an epoch's middle), the checkpoint keeps it, and a run stopped
    in its second epoch, where entries are rejected, resumes to the same weights."""
    from rmlc.losses import LargeLossRejection

    told: list[int] = []
    original = LargeLossRejection.set_epoch

    def spy(self, epoch: int) -> None:
        told.append(epoch)
        original(self, epoch)

    monkeypatch.setattr(LargeLossRejection, "set_epoch", spy)
    settings = {"epochs": 3, "loss": "llr", "loss_params": {"delta_rel": 20.0}}
    straight = build_trainer(tiny_config(mosaic_tables, tmp_path / "a", **settings))
    straight.fit()
    assert told == [0, 1, 2] and straight.loss_fn.rejection_rate == pytest.approx(0.4)
    interrupted = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", **settings))
    signal_during_step(interrupted, 7, signal.SIGINT)  # 5 steps an epoch: the second
    with pytest.raises(TrainingInterrupted):
        interrupted.fit()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["loss"]["_extra_state"] == {"epoch": 1}
    told.clear()
    resumed = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", resume=True, **settings))
    resumed.fit()
    assert told == [1, 2]
    final_straight = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    final_resumed = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    for name, value in final_straight.items():
        torch.testing.assert_close(final_resumed[name], value, rtol=0, atol=0)


def test_second_ctrl_c_aborts_without_saving(mosaic_tables, tmp_path) -> None:
    """Two Ctrl-C: no checkpoint is taken mid-step; the last periodic one stays intact."""
    config = tiny_config(mosaic_tables, tmp_path / "b", epochs=3, checkpoint_every_steps=4)
    trainer = build_trainer(config)
    signal_during_step(trainer, 7, signal.SIGINT, signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="aborted without saving") as info:
        trainer.fit()
    assert info.value.exit_code == 130
    # 5 steps per epoch: the checkpoints came at steps 4 and 5 (end of epoch 1), none at 7.
    assert load_checkpoint(tmp_path / "b" / "last.pt")["position"]["global_step"] == 5


def test_dynamics_are_logged_every_few_steps_with_the_fit_to_clean_labels(
    mosaic_tables, tmp_path
) -> None:
    """``dynamics_every`` writes the ramp statistics of the configured steps, the warm
    start's beta, and each epoch's training fit to the noisy and to the clean labels."""
    import csv

    from rmlc.losses.dynamics import DYNAMICS_KEYS

    config = tiny_config(
        mosaic_tables,
        tmp_path / "run",
        dynamics_every=2,
        label_noise=0.5,
        loss_params={"hinge_steps": 3},
    )
    trainer = build_trainer(config)
    trainer.fit()
    steps_per_epoch = trainer.steps_in_epoch
    rows = list(csv.DictReader((tmp_path / "run" / "dynamics.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(0, 2 * steps_per_epoch, 2))
    assert set(DYNAMICS_KEYS) <= set(rows[0])
    assert [float(r["beta"]) for r in rows] == [0.0 if int(r["step"]) < 3 else 1.0 for r in rows]
    for row in rows:
        for key in ("positive_flat", "negative_flat", "pair_flat", "pair_active"):
            assert 0.0 <= float(row[key]) <= 1.0
    log = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert all({"fit_train_mAP", "fit_clean_mAP", "fit_corrupted_mAP"} <= set(r) for r in log)
    # Half of the label vectors were redrawn: the fits to noisy and clean labels differ.
    assert any(r["fit_train_mAP"] != r["fit_clean_mAP"] for r in log)
    assert trainer.data.clean_targets is not None
    assert not torch.equal(trainer.data.clean_targets, trainer.targets[trainer.data.labeled])


def test_warm_start_position_is_restored_on_resume(mosaic_tables, tmp_path) -> None:
    config = tiny_config(mosaic_tables, tmp_path / "run", loss_params={"hinge_steps": 100})
    trainer = build_trainer(config)
    trainer.fit()
    done = trainer.loss_fn.steps_done
    assert done == trainer.position.global_step > 0
    resumed = build_trainer(
        tiny_config(mosaic_tables, tmp_path / "run", resume=True, loss_params={"hinge_steps": 100})
    )
    resumed.resume(tmp_path / "run" / "last.pt")
    assert resumed.loss_fn.steps_done == done


def test_resume_refuses_to_switch_the_ramp_of_a_run(mosaic_tables, tmp_path) -> None:
    """A run trained with the ramp at half (the default before issue 25) is not resumed
    with the hinge throughout (the default since) unless asked with its own setting."""
    from rmlc.train.checkpoint import CheckpointError

    build_trainer(tiny_config(mosaic_tables, tmp_path / "run", ramp_start=0.5)).fit()
    last = tmp_path / "run" / "last.pt"
    default = build_trainer(tiny_config(mosaic_tables, tmp_path / "run", resume=True))
    with pytest.raises(CheckpointError, match=r"ramp_start 0.5 .* ramp_start 1.0"):
        default.resume(last)
    same = build_trainer(tiny_config(mosaic_tables, tmp_path / "run", resume=True, ramp_start=0.5))
    same.resume(last)
    assert same.loss_fn.steps_done == same.position.global_step > 0


@pytest.mark.parametrize(
    ("loss", "ramp_start", "fraction"),
    [
        ("rmlc", None, None),
        ("rmlc", 0.5, 0.5),
        ("rmlc-paper", None, 0.0),
        ("rmlc-paper", 0.25, 0.25),
    ],
)
def test_trainer_sets_the_warm_start_from_the_runs_length(
    mosaic_tables, tmp_path, loss, ramp_start, fraction
) -> None:
    config = tiny_config(
        mosaic_tables, tmp_path / "run", loss=loss, ramp_start=ramp_start, epochs=4
    )
    trainer = build_trainer(config)
    total = trainer.total_steps()
    assert total == 4 * trainer._sampler(0).steps_per_epoch()
    # rmlc's default (ramp_start 1): the hinge throughout, the ramp never switched on
    want = None if fraction is None else round(fraction * total)
    assert trainer.loss_fn.hinge_steps == want


def test_image_files_get_sizes_and_workers_that_fit(mosaic_tables, tmp_path) -> None:
    """Files are decoded in worker processes by default (in memory: none), the small CNN
    reads them at their own size, ResNets at 224; workers change no result."""
    from rmlc.train.data import ArrayStore, FileStore, ImageView
    from rmlc.train.datasets import _default_image_size
    from rmlc.train.loading import decoding_workers

    paths = [mosaic_tables["root"] / f"images/train-{i:04d}.png" for i in range(8)]
    rows = np.arange(8)
    assert _default_image_size(paths, rows, "small-cnn") == 56  # the mosaics' own side
    assert _default_image_size(paths, rows, "resnet50") == 224

    def workers(num_workers, store) -> int:
        return decoding_workers(num_workers, ImageView(store))

    files = FileStore(paths, None, 56)
    assert workers(None, files) >= 1 and workers(3, files) == 3
    assert workers(None, ArrayStore(np.zeros((4, 1, 8, 8), dtype=np.uint8))) == 0

    results = [
        build_trainer(
            tiny_config(mosaic_tables, tmp_path / str(w), num_workers=w, image_size=None, epochs=1)
        ).fit()
        for w in (0, None)
    ]
    assert results[0]["mAP"] == results[1]["mAP"]
