"""Thresholds chosen on validation: against a brute force over every cut, and end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rmlc.thresholds import choose_threshold


def _f1(predicted: np.ndarray, positive: np.ndarray) -> float:
    true_positives = (predicted & positive).sum()
    return 2 * true_positives / (predicted.sum() + positive.sum())


def _brute_force_best_f1(scores: np.ndarray, positive: np.ndarray) -> float:
    cuts = np.append(np.unique(scores), np.inf)  # every distinct set of kept scores
    return max(_f1(scores >= cut, positive) for cut in cuts)


@pytest.mark.parametrize("seed", range(20))
def test_the_chosen_threshold_reaches_the_best_f1_of_any_cut(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 40)), int(rng.integers(1, 6))
    positive = rng.random((n, m)) < 0.3
    positive[0, 0] = True
    scores = rng.normal(size=(n, m)) + 1.5 * positive
    if seed % 4 == 0:
        scores = np.round(scores)  # many ties
    threshold = choose_threshold(scores, positive)
    assert _f1(scores >= threshold, positive) == pytest.approx(
        _brute_force_best_f1(scores, positive)
    )
    per_class = choose_threshold(scores, positive.astype(int), per_class=True)
    assert per_class.shape == (m,)
    for j in range(m):
        if positive[:, j].any():
            assert _f1(scores[:, j] >= per_class[j], positive[:, j]) == pytest.approx(
                _brute_force_best_f1(scores[:, j], positive[:, j])
            )
        else:  # nothing to learn from: the global threshold
            assert per_class[j] == threshold


def test_only_known_entries_count_a_hand_checked_column() -> None:
    # known: positives scored 3 and 1, negatives 2 and 0; unknown: 2.8, 2.7, 2.6.
    scores = np.array([[3.0], [2.8], [2.7], [2.6], [2.0], [1.0], [0.0]])
    positive = np.array([[1], [0], [0], [0], [0], [1], [0]])
    known = np.array([[True], [False], [False], [False], [True], [True], [True]])
    # on the known four, keeping down to 1 gives F1 2*2/(3+2) = 0.8: the cut lies at 0.5
    assert choose_threshold(scores, positive, known=known) == 0.5
    assert choose_threshold(scores, positive, per_class=True, known=known).tolist() == [0.5]
    # read as negatives, the unknown three make keeping only 3 best (F1 2/3): 2.9
    assert choose_threshold(scores, positive) == pytest.approx(2.9)


@pytest.mark.parametrize("seed", range(10))
def test_thresholds_over_known_entries_equal_a_brute_force_on_them(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(6, 40)), int(rng.integers(1, 5))
    positive = rng.random((n, m)) < 0.3
    known = rng.random((n, m)) < 0.6
    positive[0, 0] = known[0, 0] = True
    scores = rng.normal(size=(n, m)) + 1.5 * positive
    if seed % 3 == 0:
        scores = np.round(scores)  # ties
    threshold = choose_threshold(scores, positive, known=known)
    assert _f1(scores[known] >= threshold, positive[known]) == pytest.approx(
        _brute_force_best_f1(scores[known], positive[known])
    )
    per_class = choose_threshold(scores, positive, per_class=True, known=known)
    for j in range(m):
        rows = known[:, j]
        if positive[rows, j].any():
            assert _f1(scores[rows, j] >= per_class[j], positive[rows, j]) == pytest.approx(
                _brute_force_best_f1(scores[rows, j], positive[rows, j])
            )
        else:  # no known positive: the global threshold
            assert per_class[j] == threshold
    # an unknown positive is not a positive either
    assert choose_threshold(scores, positive & known, known=known) == threshold


def test_bad_input_to_choose_threshold() -> None:
    with pytest.raises(ValueError, match="known must be"):
        choose_threshold(np.zeros((3, 2)), np.eye(3)[:, :2], known=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="no positive label"):
        choose_threshold(np.zeros((2, 2)), np.eye(2), known=np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="no positive label"):
        choose_threshold(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="both be"):
        choose_threshold(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        choose_threshold(np.full((2, 2), np.nan), np.eye(2))


@pytest.mark.parametrize("choice", ["auto", "per-class"])
def test_training_chooses_stores_and_uses_the_threshold(choice, mosaic_tables, tmp_path) -> None:
    from rmlc.cli import main
    from rmlc.inference import load_trained_model
    from rmlc.train import run
    from tests.train.conftest import tiny_config

    config = tiny_config(mosaic_tables, tmp_path / "run", threshold=choice, loss="warp")
    final = run(config)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    chosen = saved["threshold"]
    assert chosen == final["threshold"]
    assert isinstance(chosen, list if choice == "per-class" else float)
    model = load_trained_model(tmp_path / "run" / "best.pt")
    assert model.threshold == chosen
    images = np.zeros((2, 1, 56, 56), dtype=np.uint8)
    scores = model.scores(images)
    np.testing.assert_array_equal(model.predict(images), scores >= np.asarray(chosen))
    code = main(
        [
            "evaluate",
            "--checkpoint",
            str(tmp_path / "run" / "best.pt"),
            "--test",
            str(mosaic_tables["test"]),
            "--image-root",
            str(mosaic_tables["root"]),
            "--out",
            str(tmp_path / "eval.json"),
        ]
    )
    assert code == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["threshold"] == chosen
    assert evaluated["F1-O"] == pytest.approx(final["test"]["F1-O"])


def test_a_threshold_to_choose_needs_a_validation_split(mosaic_tables, tmp_path) -> None:
    from tests.train.conftest import tiny_config

    with pytest.raises(ValueError, match="validation_fraction must be > 0"):
        tiny_config(mosaic_tables, tmp_path, threshold="auto", validation_fraction=0.0)
    with pytest.raises(ValueError, match="threshold must be a number, 'auto'"):
        tiny_config(mosaic_tables, tmp_path, threshold="best")
