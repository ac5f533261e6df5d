"""RMLClassifier: scikit-learn contract, learning, semi-supervision, persistence, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from rmlc.linear import RMLClassifier, whitening_matrix
from rmlc.metrics import mean_average_precision

# Checks that cannot hold for this estimator, and why.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch SGD: a sample of weight 2 is not the same as two copies of it, "
        "which change the number of steps and the batches"
    ),
    "check_sample_weight_equivalence_on_sparse_data": "sparse input is not supported",
}


@parametrize_with_checks(
    [
        RMLClassifier(max_epochs=15, random_state=0, learning_rate=0.05),
        RMLClassifier(max_epochs=15, random_state=0, learning_rate=0.05, whiten=1e-3),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)


def structured_problem(n: int = 600, d: int = 20, m: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(d, m))
    X = rng.normal(size=(n, d)).astype(np.float32)
    scores = X @ weights
    Y = (scores > np.quantile(scores, 0.8, axis=0)).astype(np.int64)
    return X, Y


@pytest.mark.parametrize(
    "loss", ["rmlc", "rmlc-paper", "warp", "bce", "softmax", "asl", "gce", "llr"]
)
def test_every_loss_learns(loss: str) -> None:
    X, Y = structured_problem()
    model = RMLClassifier(loss=loss, random_state=0, max_epochs=20).fit(X[:400], Y[:400])
    assert model.score(X[400:], Y[400:]) > 0.75
    assert model.coef_.shape == (6, 20) and model.intercept_.shape == (6,)
    assert model.predict(X[400:]).shape == (200, 6)
    assert set(np.unique(model.predict(X))) <= {0, 1}


def test_loss_names_mean_what_they_mean_in_training() -> None:
    """``"rmlc"`` is the recommended RMLC here too (balanced margin, the hinge throughout:
    the ramp off); the paper's loss, the default on fixed features, is
    ``"rmlc-paper"``; both take the estimator's ``s``, ``kappa`` and ``rank``."""
    from rmlc.losses import RMLCLoss
    from rmlc.losses.ranking import PAPER

    assert RMLClassifier().loss == "rmlc-paper"
    paper = RMLClassifier(loss="rmlc-paper", kappa=2.0)._build_loss(torch.Generator(), 40)
    assert isinstance(paper, RMLCLoss) and paper.kappa == 2.0 and paper.s == PAPER["s"]
    assert paper.hinge_steps == 0 and paper.balance_margin == PAPER["balance_margin"]
    assert paper.rounding == PAPER["rounding"]
    recommended = RMLClassifier(loss="rmlc", kappa=2.0, s=-0.5)._build_loss(torch.Generator(), 40)
    assert isinstance(recommended, RMLCLoss) and recommended.balance_margin
    assert (recommended.hinge_steps, recommended.kappa, recommended.s) == (None, 2.0, -0.5)


@pytest.mark.parametrize("loss", ["rmlc", "rmlc-paper", "warp"])
def test_the_stopping_rule_judges_a_loss_with_the_hinge_throughout(loss: str) -> None:
    """``loss="rmlc"`` (the hinge throughout, no warm start to wait out) stops early like
    the others: with ``tol`` 1 any loss above 0 is stale, so patience 1 stops at epoch 2."""
    X, Y = structured_problem(120)
    model = RMLClassifier(loss=loss, max_epochs=10, tol=1.0, n_iter_no_change=1, random_state=0)
    assert model.fit(X, Y).n_iter_ == 2


def test_the_stopping_rule_waits_out_a_hinge_warm_start() -> None:
    """A loss whose ramp is still to come is not judged during its hinge epochs."""
    from rmlc.losses import RMLCLoss

    assert not RMLCLoss().ramp_pending  # the hinge throughout: nothing to wait for
    assert RMLCLoss(hinge_steps=3).ramp_pending
    assert not RMLCLoss(hinge_steps=0).ramp_pending


def test_the_defaults_fit_the_papers_loss_as_before() -> None:
    """RMLClassifier() fits the model it fitted when its default was ``loss="rmlc"`` (then
    the paper's loss): the same as naming ``"rmlc-paper"``, and not the recommended RMLC."""
    X, Y = structured_problem(200)
    default = RMLClassifier(random_state=0, max_epochs=4).fit(X, Y)
    paper = RMLClassifier(loss="rmlc-paper", random_state=0, max_epochs=4).fit(X, Y)
    recommended = RMLClassifier(loss="rmlc", random_state=0, max_epochs=4).fit(X, Y)
    np.testing.assert_array_equal(default.coef_, paper.coef_)
    np.testing.assert_array_equal(default.intercept_, paper.intercept_)
    assert not np.allclose(default.coef_, recommended.coef_)


def test_each_loss_gets_the_ranking_settings_it_takes() -> None:
    """WARP takes the rank mode and the generator; the baselines none of them."""
    from rmlc.losses import AsymmetricLoss, BCELoss, GeneralizedCrossEntropy, WARPLoss

    generator = torch.Generator()
    warp = RMLClassifier(loss="warp", rank="exact")._build_loss(generator, 10)
    assert isinstance(warp, WARPLoss) and warp.rank == "exact" and warp.generator is generator
    for name, kind in (("bce", BCELoss), ("asl", AsymmetricLoss), ("gce", GeneralizedCrossEntropy)):
        assert type(RMLClassifier(loss=name, kappa=2.0)._build_loss(generator, 10)) is kind
    rmlc = RMLClassifier(loss="rmlc-paper", s=-0.5, rank="exact")._build_loss(generator, 10)
    assert (rmlc.s, rmlc.rank, rmlc.generator) == (-0.5, "exact", generator)


def test_large_loss_rejection_learns_the_epoch_from_the_estimator(monkeypatch) -> None:
    """The estimator tells LL-R each epoch (0-based) before training it."""
    from rmlc.losses import LargeLossRejection

    seen: list[int] = []
    original = LargeLossRejection.set_epoch

    def spy(self, epoch: int) -> None:
        seen.append(epoch)
        original(self, epoch)

    monkeypatch.setattr(LargeLossRejection, "set_epoch", spy)
    X, Y = structured_problem(100)
    RMLClassifier(loss="llr", max_epochs=3, tol=None, random_state=0).fit(X, Y)
    assert seen == [0, 1, 2]


def test_score_is_map_and_decision_function_consistent() -> None:
    X, Y = structured_problem()
    model = RMLClassifier(random_state=0, max_epochs=10).fit(X, Y)
    scores = model.decision_function(X)
    np.testing.assert_allclose(scores, X @ model.coef_.T + model.intercept_, rtol=1e-5)
    expected = mean_average_precision(torch.from_numpy(scores), torch.from_numpy(Y)) / 100
    assert model.score(X, Y) == pytest.approx(expected)
    top = model.predict_topk(X, k=2)
    assert top.shape == (600, 2)
    assert (np.take_along_axis(scores, top[:, :1], 1)[:, 0] == scores.max(axis=1)).all()


def test_signed_targets_equal_binary_targets() -> None:
    X, Y = structured_problem()
    a = RMLClassifier(random_state=3, max_epochs=5).fit(X, Y)
    b = RMLClassifier(random_state=3, max_epochs=5).fit(X, 2 * Y - 1)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_single_label_targets_give_class_predictions() -> None:
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 5)) * 4
    labels = rng.integers(0, 3, 300)
    X = centers[labels] + rng.normal(size=(300, 5))
    names = np.array(["cat", "dog", "eel"])[labels]
    model = RMLClassifier(random_state=0, max_epochs=20).fit(X, names)
    assert not model.multilabel_
    assert set(model.predict(X)) <= {"cat", "dog", "eel"}
    assert model.score(X, names) > 0.9  # accuracy
    assert model.predict_topk(X, 2).shape == (300, 2)


def test_reproducible_for_a_random_state() -> None:
    X, Y = structured_problem()
    a = RMLClassifier(random_state=7, max_epochs=4).fit(X, Y)
    b = RMLClassifier(random_state=7, max_epochs=4).fit(X, Y)
    c = RMLClassifier(random_state=8, max_epochs=4).fit(X, Y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_semi_supervised_fit_uses_propagated_labels_and_weights() -> None:
    X, Y = structured_problem(800)
    labeled, unlabeled = slice(0, 60), slice(60, 700)
    model = RMLClassifier(random_state=0, max_epochs=10).fit(
        X[labeled], Y[labeled], X_unlabeled=X[unlabeled]
    )
    result = model.propagation_
    assert result.labels.shape == (640, 6)
    assert ((result.weights > 0) & (result.weights <= 1)).all()
    # The propagated weights matter: training with them equals an explicit weighted fit.
    standardized = (np.concatenate([X[labeled], X[unlabeled]]) - model.mean_) / model.scale_
    del standardized
    explicit = RMLClassifier(random_state=0, max_epochs=10, standardize=False)
    union_X = np.concatenate([X[labeled], X[unlabeled]])
    union_Y = np.concatenate([Y[labeled], result.labels])
    weights = np.concatenate([np.ones(60), result.weights])
    same_scale = RMLClassifier(random_state=0, max_epochs=10, standardize=False)
    unweighted = same_scale.fit(
        (union_X - model.mean_) / model.scale_, union_Y, sample_weight=np.ones(700)
    )
    weighted = explicit.fit((union_X - model.mean_) / model.scale_, union_Y, sample_weight=weights)
    ours = model.coef_ * model.scale_[None, :]  # back to the standardized space
    np.testing.assert_allclose(ours, weighted.coef_, rtol=1e-4, atol=1e-5)
    assert not np.allclose(ours, unweighted.coef_, rtol=1e-3, atol=1e-4)


def test_transductive_ablation_runs_and_differs() -> None:
    X, Y = structured_problem()
    plain = RMLClassifier(random_state=0, max_epochs=5).fit(X[:100], Y[:100])
    transductive = RMLClassifier(
        random_state=0, max_epochs=5, semi_supervised="transductive", eta=1.0
    ).fit(X[:100], Y[:100], X_unlabeled=X[100:500])
    assert transductive.propagation_ is None
    assert not np.allclose(plain.coef_, transductive.coef_)
    assert transductive.score(X[500:], Y[500:]) > 0.6


def correlated_features(n: int = 500, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.linalg.qr(rng.normal(size=(d, d)))[0] * np.logspace(0, -2, d)[:, None]
    return (rng.normal(size=(n, d)) @ mixing + 5.0).astype(np.float32)


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.5, 10.0])
def test_whitening_matrix_against_its_definition(ridge: float) -> None:
    X = correlated_features()
    P = whitening_matrix(X, ridge)
    # Literal: centre, covariance, eigendecomposition, (e + ridge * mean(e))^(-1/2).
    centred = X.astype(np.float64) - X.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / len(X))
    floor = max(ridge * eigenvalues.mean(), 1e-9 * eigenvalues.max())
    expected = vectors @ np.diag((eigenvalues + floor) ** -0.5) @ vectors.T
    expected *= 1.0 / np.sqrt(np.mean(eigenvalues / (eigenvalues + floor)))
    np.testing.assert_allclose(P, expected, rtol=2e-3, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(P, P.T, rtol=1e-5, atol=1e-6 * np.abs(P).max())
    whitened_covariance = np.cov((centred @ P).T, bias=True)
    assert np.trace(whitened_covariance) / X.shape[1] == pytest.approx(1.0, rel=1e-3)
    condition = np.linalg.cond(whitened_covariance)
    if ridge == 0.0:  # full whitening: the identity covariance
        np.testing.assert_allclose(whitened_covariance, np.eye(8), atol=1e-3)
    else:  # better conditioned than the input (1e4), less so as the ridge grows
        assert 1.0 < condition < np.linalg.cond(centred.T @ centred)
        stronger = whitening_matrix(X, ridge / 10)
        assert np.linalg.cond(np.cov((centred @ stronger).T)) < condition


def test_whitening_matrix_of_degenerate_features_is_finite() -> None:
    np.testing.assert_array_equal(whitening_matrix(np.ones((5, 3)), 1e-3), np.eye(3))
    np.testing.assert_array_equal(whitening_matrix(np.arange(3.0)[None, :], 0.0), np.eye(3))
    rank_one = np.outer(np.arange(10.0), [1.0, 2.0, 3.0])
    assert np.isfinite(whitening_matrix(rank_one, 0.0)).all()


def test_whitened_fit_equals_a_fit_on_whitened_features() -> None:
    X, Y = structured_problem()
    model = RMLClassifier(whiten=0.01, random_state=0, max_epochs=5).fit(X, Y)
    assert model.whitening_.shape == (20, 20)
    whitened = ((X - model.mean_) / model.scale_) @ model.whitening_
    explicit = RMLClassifier(standardize=False, random_state=0, max_epochs=5).fit(whitened, Y)
    # The whitening is folded into coef_: scores on raw features equal the explicit model's.
    np.testing.assert_allclose(
        model.decision_function(X), explicit.decision_function(whitened), rtol=1e-3, atol=1e-3
    )
    assert RMLClassifier(random_state=0, max_epochs=1).fit(X, Y).whitening_ is None


def test_whitening_rescues_sgd_on_ill_conditioned_features() -> None:
    """Labels that depend on low-variance directions of correlated features: plain SGD
    learns them slowly at any stable step size; whitened SGD learns them."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(1200, 16))
    mixing = np.linalg.qr(rng.normal(size=(16, 16)))[0] * np.logspace(0, -3, 16)[:, None]
    X = (latent @ mixing).astype(np.float32)
    scores = latent @ rng.normal(size=(16, 5))
    Y = (scores > np.quantile(scores, 0.7, axis=0)).astype(np.int64)

    def best_score(whiten):
        return max(
            RMLClassifier(loss="bce", whiten=whiten, learning_rate=lr, random_state=0)
            .fit(X[:800], Y[:800])
            .score(X[800:], Y[800:])
            for lr in (1e-3, 1e-2, 1e-1)
        )

    plain, whitened = best_score(None), best_score(1e-3)
    assert whitened > 0.9 and whitened > plain + 0.15


def test_whitening_leaves_propagation_on_standardized_features() -> None:
    X, Y = structured_problem(400)
    plain = RMLClassifier(random_state=0, max_epochs=2).fit(X[:50], Y[:50], X_unlabeled=X[50:])
    whitened = RMLClassifier(random_state=0, max_epochs=2, whiten=1e-3).fit(
        X[:50], Y[:50], X_unlabeled=X[50:]
    )
    np.testing.assert_array_equal(plain.propagation_.neighbors, whitened.propagation_.neighbors)
    np.testing.assert_allclose(plain.propagation_.weights, whitened.propagation_.weights)
    assert not np.allclose(plain.coef_, whitened.coef_)


@pytest.mark.parametrize(
    "case", ["multi-label", "whitened + propagation", "string classes", "object classes"]
)
def test_save_and_load_round_trip_without_pickle(tmp_path, case: str) -> None:
    X, Y = structured_problem()
    params: dict = {"random_state": 0, "max_epochs": 3, "t": 0.5}
    unlabeled = None
    if case == "whitened + propagation":
        params["whiten"] = 1e-3
        unlabeled = X[500:]
    elif case != "multi-label":  # single-label targets: the index of each row's first label
        labels = np.array(["cat", "dog", "emu", "fox", "gnu", "hen"])[Y.argmax(axis=1)]
        Y = labels if case == "string classes" else labels.astype(object)
    model = RMLClassifier(**params).fit(X[:500], Y[:500], X_unlabeled=unlabeled)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:  # every array loads without pickle
        assert all(data[name].dtype != object for name in data.files)
    loaded = RMLClassifier.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.loss_curve_ == model.loss_curve_ and loaded.n_iter_ == model.n_iter_
    if model.propagation_ is not None:
        np.testing.assert_array_equal(loaded.propagation_.labels, model.propagation_.labels)
        np.testing.assert_array_equal(loaded.propagation_.weights, model.propagation_.weights)
        assert loaded.propagation_.t == model.propagation_.t


class _RunsCode:
    """Unpickling this touches ``marker``: a stand-in for a hostile model file."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_model_file_is_refused_and_runs_no_code(tmp_path) -> None:
    import joblib

    marker = tmp_path / "code-ran"
    hostile = tmp_path / "model.joblib"
    joblib.dump(_RunsCode(marker), hostile)
    with pytest.raises(ValueError, match="loading it can run code: pass trusted=True"):
        RMLClassifier.load(hostile)
    hidden = tmp_path / "model.npz"  # the same object inside an .npz (an object array)
    np.savez(hidden, record=np.array([_RunsCode(marker)], dtype=object))
    with pytest.raises(ValueError, match="is not an RMLClassifier file"):
        RMLClassifier.load(hidden)
    assert not marker.exists()


def test_trusted_reads_the_old_joblib_format(tmp_path) -> None:
    import joblib

    X, Y = structured_problem()
    model = RMLClassifier(random_state=0, max_epochs=2).fit(X, Y)
    model.loss = "rmlc"  # what rmlc before 0.2 called the paper's loss
    joblib.dump(model, tmp_path / "old.joblib")
    loaded = RMLClassifier.load(tmp_path / "old.joblib", trusted=True)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    assert loaded.loss == "rmlc-paper"
    joblib.dump({"not": "a model"}, tmp_path / "other.joblib")
    with pytest.raises(TypeError, match="does not hold an RMLClassifier"):
        RMLClassifier.load(tmp_path / "other.joblib", trusted=True)
    np.savez(tmp_path / "arrays.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="is not an RMLClassifier file"):
        RMLClassifier.load(tmp_path / "arrays.npz")


def _rewrite_record(path: Path, **changes) -> None:
    """Change the JSON record of a saved estimator, as an older rmlc would have written it."""
    import json

    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    record = json.loads(str(arrays["record"]))
    for key, value in changes.items():
        if key == "loss":
            record["params"]["loss"] = value
        else:
            record[key] = value
    arrays["record"] = np.array(json.dumps(record))
    np.savez(path, **arrays)


@pytest.mark.parametrize(("old", "new"), [("rmlc", "rmlc-paper"), ("warp", "warp")])
def test_a_file_of_format_1_keeps_the_meaning_of_its_loss(tmp_path, old: str, new: str) -> None:
    """In files of format 1, ``loss="rmlc"`` was the paper's loss: it loads as
    ``"rmlc-paper"``, and a refit of the loaded estimator fits the saved model again."""
    from sklearn.base import clone

    X, Y = structured_problem(200)
    model = RMLClassifier(loss=new, random_state=0, max_epochs=3).fit(X, Y)
    path = tmp_path / "model.npz"
    model.save(path)
    _rewrite_record(path, format="rmlc.RMLClassifier/1", loss=old)
    loaded = RMLClassifier.load(path)
    assert loaded.loss == new
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    refit = clone(loaded).fit(X, Y)
    np.testing.assert_array_equal(refit.coef_, model.coef_)
    # A file of the current format keeps "rmlc" as the recommended RMLC.
    RMLClassifier(loss="rmlc", random_state=0, max_epochs=2).fit(X, Y).save(path)
    assert RMLClassifier.load(path).loss == "rmlc"
    _rewrite_record(path, format="rmlc.RMLClassifier/9")
    with pytest.raises(ValueError, match="format 'rmlc.RMLClassifier/9', expected"):
        RMLClassifier.load(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"loss": "hinge"}, "'loss' parameter of RMLClassifier must be a str among"),
        ({"learning_rate": 0}, r"'learning_rate' .* must be a float in the range \(0.0, inf\)"),
        ({"learning_rate": math.inf}, r"'learning_rate' .* Got inf instead"),
        ({"batch_size": -1}, r"'batch_size' .* must be an int in the range \[1, inf\)"),
        ({"batch_size": 2.5}, r"'batch_size' .* must be an int .* Got 2.5 instead"),
        ({"max_epochs": "3"}, r"'max_epochs' .* must be an int"),
        ({"alpha": -1.0}, r"'alpha' .* must be a float in the range \[0.0, inf\)"),
        ({"momentum": 1.0}, r"'momentum' .* must be a float in the range \[0.0, 1.0\)"),
        ({"semi_supervised": "cotraining"}, "'semi_supervised' .* must be a str among"),
        ({"s": 0.5}, r"'s' .* must be a float in the range \(-1.0, 0.0\]"),
        ({"kappa": -2.0}, r"'kappa' .* must be a float in the range \[0.0, inf\)"),
        ({"whiten": -1e-3}, r"'whiten' .* must be a float in the range \[0.0, inf\) or None"),
        ({"whiten": "yes"}, r"'whiten' .* or None. Got 'yes' instead"),
        ({"t": 0.0}, "t must be 'mean', 'authors' or a positive finite number; got 0.0"),
        ({"t": math.inf}, "t must be 'mean', 'authors' or a positive finite number; got inf"),
        ({"random_state": -1}, r"'random_state' .* must be an int in the range \[0, inf\)"),
    ],
)
def test_bad_parameters(params: dict, message: str) -> None:
    X, Y = structured_problem(50)
    with pytest.raises(ValueError, match=message):
        RMLClassifier(**params).fit(X, Y)


def test_numpy_integers_are_parameters_like_any_other(tmp_path) -> None:
    """A grid search hands over numpy integers: they are accepted as ints."""
    X, Y = structured_problem(60)
    model = RMLClassifier(batch_size=np.int64(32), max_epochs=np.int32(2), random_state=0)
    reference = RMLClassifier(batch_size=32, max_epochs=2, random_state=0)
    assert np.array_equal(
        model.fit(X, Y).decision_function(X), reference.fit(X, Y).decision_function(X)
    )


def test_bad_data() -> None:
    X, Y = structured_problem(50)
    model = RMLClassifier(max_epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(np.eye(50, 20) > 0, np.nan, X), Y)
    bad = Y.copy()
    bad[0, 0] = 2
    with pytest.raises(ValueError, match=r"found values \{0, 1, 2\}"):
        model.fit(X, bad)
    with pytest.raises(ValueError, match="continuous"):
        model.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, Y[:40])
    model.fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :10])
    with pytest.raises(ValueError, match="features"):
        RMLClassifier(max_epochs=1).fit(X, Y, X_unlabeled=X[:, :5])
    with pytest.raises(ValueError, match="sample_weight"):
        RMLClassifier(max_epochs=1).fit(X, Y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="k must be an integer >= 1; got 0"):
        model.predict_topk(X, 0)


def test_metrics_of_a_fitted_model_are_the_meters_on_its_scores() -> None:
    from rmlc.metrics import accuracy, topk_metrics

    X, Y = structured_problem(80)
    model = RMLClassifier(max_epochs=3, random_state=0).fit(X[:60], Y[:60])
    scores = torch.from_numpy(model.label_scores(X[60:]))
    expected = topk_metrics(scores, torch.from_numpy(Y[60:]), k=2)
    expected["mAP"] = mean_average_precision(scores, torch.from_numpy(Y[60:]))
    assert model.metrics(X[60:], Y[60:], k=2) == pytest.approx(expected)

    classes = np.array(["cat", "dog", "owl"])[np.argmax(Y[:, :3], axis=1)]
    single = RMLClassifier(max_epochs=3, random_state=0).fit(X[:60], classes[:60])
    got = single.metrics(X[60:], classes[60:], k=1)
    one_hot = torch.from_numpy(classes[60:, None] == single.classes_[None, :])
    assert got["accuracy"] == pytest.approx(
        accuracy(torch.from_numpy(single.label_scores(X[60:])), one_hot)
    )
    with pytest.raises(ValueError, match="fit multi-label"):
        model.metrics(X[60:], classes[60:])


def test_metrics_of_an_unfitted_model_and_a_generator_as_random_state() -> None:
    from sklearn.exceptions import NotFittedError

    X, Y = structured_problem(40)
    with pytest.raises(NotFittedError):
        RMLClassifier().metrics(X, Y)
    first = RMLClassifier(max_epochs=2, random_state=np.random.default_rng(7)).fit(X, Y)
    second = RMLClassifier(max_epochs=2, random_state=np.random.default_rng(7)).fit(X, Y)
    assert np.array_equal(first.coef_, second.coef_)
