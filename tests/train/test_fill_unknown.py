"""Filling labeled images' unknown tags from their nearest labeled neighbours
(``fill_unknown``, :mod:`rmlc.train.fill`): against a hand-checked case and a literal loop,
through training (the known mask the loss sees), refusals, the config and resuming."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest
import torch
import yaml

import rmlc.train.fill as fill_module
from rmlc.train import TrainConfig
from rmlc.train.checkpoint import load_checkpoint
from rmlc.train.config import load_config
from rmlc.train.fill import filled_targets, nearest_known
from rmlc.train.launch import build_trainer
from rmlc.train.targets import SparseTargets
from rmlc.train.trainer import TrainingInterrupted
from tests.train.test_partial_labels import SpyLoss, _config, toy  # noqa: F401 (a fixture)
from tests.train.test_trainer import signal_during_step


def _targets(positive: list[list[int]], negative: list[list[int]]) -> SparseTargets:
    return SparseTargets(np.array(positive, np.uint8), np.array(negative, np.uint8))


def test_a_hand_checked_fill_on_five_points_of_a_line() -> None:
    """Images at x = 0, 1, 3, 7, 8. Class 0 is known at images 0 (+), 2 (-) and 4 (-);
    class 1 at images 1 (+) and 3 (-)."""
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0], [8.0, 0.0]])
    given = _targets(
        [[1, 0], [0, 1], [0, 0], [0, 0], [0, 0]], [[0, 0], [0, 0], [1, 0], [0, 1], [1, 0]]
    )
    fill = nearest_known(features, given, "mean")
    # class 0: image 1 <- image 0 (+, d 1), image 3 <- image 4 (-, d 1);
    # class 1: image 0 <- image 1 (+, d 1), image 2 <- image 1 (+, d 2), image 4 <- image 3 (-, d 1)
    assert fill.rows.tolist() == [1, 3, 0, 2, 4]
    assert fill.classes.tolist() == [0, 0, 1, 1, 1]
    assert fill.neighbors.tolist() == [0, 4, 1, 1, 3]
    assert fill.positive.tolist() == [True, False, True, True, False]
    assert fill.distances.tolist() == [1.0, 1.0, 1.0, 2.0, 1.0]
    assert fill.t == pytest.approx(6 / 5)
    np.testing.assert_allclose(fill.weights, np.exp(-fill.distances / 1.2), rtol=1e-6)
    every = filled_targets(given, fill)
    np.testing.assert_array_equal(every.dense().numpy(), [[1, 1], [1, 1], [0, 1], [0, 0], [0, 0]])
    assert every.known(slice(None)).all()
    # a cut between exp(-1 / 1.2) and exp(-2 / 1.2) leaves image 2's class 1 unknown
    some = filled_targets(given, fill, min_confidence=0.3)
    known = some.known(slice(None)).numpy()
    assert not known[2, 1] and known.sum() == 9
    np.testing.assert_array_equal(some.dense().numpy(), [[1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])


def _literal_fill(features: list[list[float]], known, positive, t: float | str):
    """Entries (row, class, value, neighbour, distance) and weights, by plain loops."""
    n, m = len(known), len(known[0])
    entries = []
    for j in range(m):
        for i in range(n):
            if known[i][j]:
                continue
            best = None
            for k in range(n):  # the lowest index wins a tie
                if k == i or not known[k][j]:
                    continue
                d = math.sqrt(
                    sum((a - b) ** 2 for a, b in zip(features[i], features[k], strict=True))
                )
                if best is None or d < best[0]:
                    best = (d, k)
            if best is not None:
                entries.append((i, j, bool(positive[best[1]][j]), best[1], best[0]))
    distances = [entry[4] for entry in entries]
    t_used = sum(distances) / len(distances) if t == "mean" else t
    return entries, [math.exp(-d / t_used) for d in distances]


@pytest.mark.parametrize("seed", range(6))
def test_the_fill_equals_a_literal_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(3, 20)), int(rng.integers(1, 5))
    features = rng.normal(size=(n, 3)).astype(np.float32)
    positive = rng.random((n, m)) < 0.4
    known = rng.random((n, m)) < 0.5
    negative = known & ~positive
    positive &= known
    given = SparseTargets(positive.astype(np.uint8), negative.astype(np.uint8))
    t = "mean" if seed % 2 else 0.7
    fill = nearest_known(torch.from_numpy(features), given, t)
    entries, weights = _literal_fill(features.tolist(), known.tolist(), positive.tolist(), t)
    found = list(
        zip(
            fill.rows.tolist(),
            fill.classes.tolist(),
            fill.positive.tolist(),
            fill.neighbors.tolist(),
            strict=True,
        )
    )
    assert found == [entry[:4] for entry in entries]
    np.testing.assert_allclose(fill.distances, [entry[4] for entry in entries], rtol=1e-6)
    np.testing.assert_allclose(fill.weights, weights, rtol=1e-5)
    filled = filled_targets(given, fill).dense().numpy() > 0
    expected = positive.copy()
    for i, j, value, _, _ in entries:
        expected[i, j] = value
    np.testing.assert_array_equal(filled, expected)


def _spy_on_fills(monkeypatch) -> list:
    """Record each fill's features, given targets and result."""
    calls, original = [], fill_module.nearest_known

    def spy(features, given, t="mean"):
        result = original(features, given, t)
        calls.append((features.clone(), given.take(slice(None)), result))
        return result

    monkeypatch.setattr(fill_module, "nearest_known", spy)
    return calls


@pytest.mark.usefixtures("toy")
def test_training_fills_the_known_mask_the_loss_sees(tmp_path, monkeypatch) -> None:
    """Supervised, hidden tags; a refresh before epoch 2 only (warm-up 1 epoch): epoch 1's
    masks are the given ones, epoch 2's the given ones with the fill's entries, and the
    checkpoint keeps the filled targets."""
    calls = _spy_on_fills(monkeypatch)
    settings = {"hide_tags": 0.5, "epochs": 2, "warmup_epochs": 1, "refresh_every": 5}
    settings |= {"loss": "toy-spy", "fill_unknown": True, "fill_unknown_confidence": 0.3}
    trainer = build_trainer(_config(tmp_path, **settings))
    steps = trainer._sampler(0).steps_per_epoch()
    trainer.fit()
    assert len(calls) == 1
    features, given, fill = calls[0]
    labeled = trainer.data.labeled
    assert given.known(slice(None)).float().mean() < 0.7  # about half hidden
    entries, weights = _literal_fill(
        features.tolist(),
        given.known(slice(None)).tolist(),
        given.dense().tolist(),
        "mean",
    )
    assert fill.neighbors.tolist() == [entry[3] for entry in entries]
    np.testing.assert_allclose(fill.weights, weights, rtol=1e-5)
    kept = fill.weights >= 0.3
    assert 0 < kept.sum() < len(kept)  # the cut leaves some unknown
    expected_known = given.known(slice(None)).numpy().copy()
    expected_known[fill.rows[kept], fill.classes[kept]] = True
    expected_positive = given.dense().numpy() > 0
    expected_positive[fill.rows[kept], fill.classes[kept]] = fill.positive[kept]
    saved = SparseTargets.from_state(load_checkpoint(tmp_path / "run" / "last.pt")["targets"])
    np.testing.assert_array_equal(saved.known(labeled).numpy(), expected_known)
    np.testing.assert_array_equal(saved[labeled].numpy() > 0, expected_positive)
    assert torch.equal(trainer.sample_weights, torch.ones(len(labeled)))  # weights stay 1
    first, second = SpyLoss.masks[:steps], torch.cat(SpyLoss.masks[steps:])
    assert len(SpyLoss.masks) == 2 * steps
    assert second.float().mean() > torch.cat(first).float().mean()
    rows = {tuple(row) for row in expected_known.tolist()}
    assert all(tuple(row) in rows for row in second.tolist())  # the filled masks


@pytest.mark.usefixtures("toy")
def test_with_fill_unknown_off_no_fill_runs_and_refreshes_are_as_before(
    tmp_path, monkeypatch
) -> None:
    calls = _spy_on_fills(monkeypatch)
    trainer = build_trainer(
        _config(tmp_path, hide_tags=0.5, epochs=2, warmup_epochs=1, refresh_every=1)
    )
    trainer.fit()
    assert calls == [] and trainer.propagation_epoch is None  # no unlabeled: no refresh
    assert "fill_unknown" not in "".join(map(str, load_checkpoint(tmp_path / "run" / "last.pt")))
    on = build_trainer(_config(tmp_path, hide_tags=0.5, fill_unknown=True, overwrite=True))
    assert [on.refresh_due(epoch) for epoch in range(5)] == [False, False, True, False, False]


@pytest.mark.usefixtures("toy")
def test_fill_unknown_settings_are_checked(tmp_path) -> None:
    for bad, message in (
        ({"unknown_tags": "negative"}, "unknown_tags 'negative'.*give one, not both"),
        ({"single_positive": True, "hide_tags": 0.0}, "single_positive keeps none"),
        ({"fill_unknown_confidence": 1.5}, r"fill_unknown_confidence must lie in \[0, 1\]"),
    ):
        with pytest.raises(ValueError, match=message):
            _config(tmp_path, **{"fill_unknown": True, "hide_tags": 0.5, **bad})
    with pytest.raises(ValueError, match="applies only with fill_unknown on"):
        _config(tmp_path, fill_unknown_confidence=0.5)
    with pytest.raises(ValueError, match="no unknown tag to fill; set fill_unknown off"):
        build_trainer(_config(tmp_path, fill_unknown=True))  # every training tag known


@pytest.mark.usefixtures("toy")
def test_the_settings_travel_through_yaml_and_the_command_line(tmp_path) -> None:
    from rmlc.cli import build_parser

    config = _config(tmp_path, hide_tags=0.5, fill_unknown=True, fill_unknown_confidence=0.25)
    (tmp_path / "config.yaml").write_text(config.to_yaml())
    assert load_config(tmp_path / "config.yaml") == config
    saved = yaml.safe_load(config.to_yaml())
    assert saved["fill_unknown"] is True and saved["fill_unknown_confidence"] == 0.25
    arguments = build_parser().parse_args(
        ["train", "--fill-unknown", "--fill-unknown-confidence", "0.25"]
    )
    assert arguments.fill_unknown is True and arguments.fill_unknown_confidence == 0.25
    assert TrainConfig().fill_unknown is False


@pytest.mark.slow
@pytest.mark.usefixtures("toy")
def test_an_interrupted_run_with_fills_resumes_to_the_same_weights(tmp_path) -> None:
    """Semi-supervised; fills, then propagation, before epochs 2 and 3; stopped in the
    middle of epoch 2, after its refresh: the resumed run keeps the filled targets, does not
    refresh again in epoch 2, and ends as the straight run. Unlabeled images copy the
    labeled rows as filled."""
    settings = {"hide_tags": 0.5, "epochs": 3, "warmup_epochs": 1, "refresh_every": 1}
    settings |= {"fill_unknown": True, "fill_unknown_confidence": 0.3}
    settings |= {"semi_supervised": True, "num_labeled": 50}
    straight = build_trainer(_config(tmp_path / "a", **settings))
    straight.fit()
    interrupted = build_trainer(_config(tmp_path / "b", **settings))
    steps = interrupted._sampler(0).steps_per_epoch()
    signal_during_step(interrupted, steps + 2, signal.SIGINT)
    with pytest.raises(TrainingInterrupted):
        interrupted.fit()
    middle = load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    assert middle["propagation_epoch"] == 1
    resumed = build_trainer(_config(tmp_path / "b", resume=True, **settings))
    refreshes, original = [], resumed.refresh_labels
    resumed.refresh_labels = lambda epoch: (refreshes.append(epoch), original(epoch))
    resumed.fit()
    assert refreshes == [2]
    final = {name: load_checkpoint(tmp_path / name / "run" / "last.pt") for name in "ab"}
    for key, value in final["a"]["model"].items():
        torch.testing.assert_close(final["b"]["model"][key], value, rtol=0, atol=0)
    for key in ("indptr", "indices", "negative_indptr", "negative_indices"):
        assert torch.equal(final["a"]["targets"][key], final["b"]["targets"][key])
    targets = SparseTargets.from_state(final["a"]["targets"])
    labeled, unlabeled = straight.data.labeled, straight.data.unlabeled
    rows = {
        (tuple(positive), tuple(known))
        for positive, known in zip(
            targets[labeled].tolist(), targets.known(labeled).tolist(), strict=True
        )
    }
    copied = zip(targets[unlabeled].tolist(), targets.known(unlabeled).tolist(), strict=True)
    assert len(unlabeled) and all((tuple(p), tuple(k)) in rows for p, k in copied)
    given = straight.data.targets.known(labeled)
    assert targets.known(labeled).sum() > given.sum()  # filled
