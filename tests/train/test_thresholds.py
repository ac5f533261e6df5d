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


def test_bad_input_to_choose_threshold() -> None:
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
