"""Audited labels while training (``TrainConfig.relabel``): set aside or corrected, resumed
exactly, and training unchanged when nothing is flagged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rmlc.train import TrainingInterrupted, build_trainer
from rmlc.train.checkpoint import load_checkpoint
from tests.train.conftest import tiny_config
from tests.train.test_trainer import signal_during_step


def _believing(trainer, beliefs: torch.Tensor) -> None:
    """Make the trainer's network score its labeled samples as ``beliefs`` (``(l, m)``:
    +3 where it is sure of a tag, -3 elsewhere), in a shuffled order as gathered rows come."""
    order = torch.randperm(len(beliefs), generator=torch.Generator().manual_seed(0))

    def predict_scores(view):
        assert len(view) == len(beliefs)
        return 6.0 * beliefs[order] - 3.0, order

    trainer.predict_scores = predict_scores


@pytest.mark.parametrize("mode", ["drop", "predict"])
def test_a_tag_flagged_by_consecutive_audits_is_set_aside_or_corrected(
    mosaic_tables, tmp_path, mode
) -> None:
    """Image 0's first tag is contradicted by the network and an absent tag believed: after
    two audits (the patience) the image is set aside, or both entries take the network's
    labels; every other image keeps its tags and weight; once the network agrees with the
    given tags again, they are restored."""
    config = tiny_config(
        mosaic_tables, tmp_path / "run", relabel=mode, relabel_every=1, relabel_patience=2
    )
    trainer = build_trainer(config)
    trainer.out.mkdir(parents=True)  # the audits' messages go to train.log
    labeled = trainer.data.labeled
    given = trainer.targets[labeled].clone()
    beliefs = given.clone()
    wrong = int(torch.nonzero(given[0])[0, 0])
    missing = int(torch.nonzero(given[0] == 0)[0, 0])
    beliefs[0, wrong], beliefs[0, missing] = 0.0, 1.0
    _believing(trainer, beliefs)
    trainer._relabel_if_due(1)  # flagged once: nothing acted on yet
    assert torch.equal(trainer.targets[labeled], given)
    assert bool((trainer.sample_weights[labeled] == 1).all())
    trainer._relabel_if_due(2)
    weights, targets = trainer.sample_weights[labeled], trainer.targets[labeled]
    if mode == "drop":
        assert weights[0] == 0 and bool((weights[1:] == 1).all())
        assert torch.equal(targets, given)
    else:
        assert bool((weights == 1).all())
        assert torch.equal(targets[0], beliefs[0]) and torch.equal(targets[1:], given[1:])
    assert torch.equal(trainer.data.targets[labeled], given)  # the tags as given are kept
    _believing(trainer, given)
    trainer._relabel_if_due(3)
    assert torch.equal(trainer.targets[labeled], given)
    assert bool((trainer.sample_weights[labeled] == 1).all())


def test_relabeling_waits_for_its_epochs(mosaic_tables, tmp_path) -> None:
    trainer = build_trainer(tiny_config(mosaic_tables, tmp_path / "r", relabel="drop"))
    calls = []
    trainer.relabel_labels = calls.append
    for epoch in range(11):
        trainer._relabel_if_due(epoch)
    assert calls == [5, 10]  # relabel_every 5: after the first 5 epochs, then every 5
    off = build_trainer(tiny_config(mosaic_tables, tmp_path / "o"))
    assert off.relabeling is None and "relabel" not in off.state().to_dict()


@pytest.mark.slow
def test_relabeling_that_flags_nothing_trains_as_without_it(mosaic_tables, tmp_path) -> None:
    """The audits' forward passes draw nothing from training's random streams."""
    runs = {}
    for name, extra in (("off", {}), ("on", {"relabel": "predict", "relabel_cutoff": 1e9})):
        config = tiny_config(mosaic_tables, tmp_path / name, relabel_every=1, **extra)
        build_trainer(config).fit()
        runs[name] = load_checkpoint(tmp_path / name / "last.pt")
    assert runs["on"]["relabel_epoch"] == 1
    for key, value in runs["off"]["model"].items():
        torch.testing.assert_close(runs["on"]["model"][key], value, rtol=0, atol=0)


@pytest.mark.slow
def test_an_interrupted_run_with_relabeling_resumes_to_the_same_weights(
    mosaic_tables, tmp_path
) -> None:
    """5 steps an epoch, audits before epochs 2 and 3 (a low cutoff, so that tags change);
    stopped in the middle of epoch 2, after its audit: the resumed run does not audit again
    and ends with the weights, targets and flags of the straight run."""
    import signal

    settings = {
        "epochs": 3,
        "relabel": "predict",
        "relabel_every": 1,
        "relabel_patience": 1,
        "relabel_cutoff": 0.6,
        "label_noise": 0.5,
    }
    straight = build_trainer(tiny_config(mosaic_tables, tmp_path / "a", **settings))
    straight.fit()
    labeled = straight.data.labeled
    assert not torch.equal(straight.targets[labeled], straight.data.targets[labeled])
    interrupted = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", **settings))
    signal_during_step(interrupted, 7, signal.SIGINT)
    with pytest.raises(TrainingInterrupted):
        interrupted.fit()
    resumed = build_trainer(tiny_config(mosaic_tables, tmp_path / "b", resume=True, **settings))
    audits = []
    original = resumed.relabel_labels
    resumed.relabel_labels = lambda epoch: (audits.append(epoch), original(epoch))
    resumed.fit()
    assert audits == [2]  # epoch 1's audit was done before the interruption
    final = {name: load_checkpoint(tmp_path / name / "last.pt") for name in ("a", "b")}
    for key, value in final["a"]["model"].items():
        torch.testing.assert_close(final["b"]["model"][key], value, rtol=0, atol=0)
    for key in ("indptr", "indices"):
        assert torch.equal(final["a"]["targets"][key], final["b"]["targets"][key])
    for key in ("rows", "columns", "counts"):
        assert torch.equal(final["a"]["relabel"][key], final["b"]["relabel"][key])
    assert np.array_equal(final["a"]["sample_weights"], final["b"]["sample_weights"])


def test_relabel_settings_are_checked(mosaic_tables, tmp_path) -> None:
    for bad, message in (
        ({"relabel": "fix"}, "relabel must be 'off', 'drop' or 'predict'"),
        ({"relabel_every": 0}, "relabel_every must be >= 1"),
        ({"relabel_patience": 0}, "relabel_patience must be >= 1"),
        ({"relabel_cutoff": -1.0}, "relabel_cutoff must be a number >= 0"),
    ):
        with pytest.raises(ValueError, match=message):
            tiny_config(mosaic_tables, tmp_path / "x", **bad)
