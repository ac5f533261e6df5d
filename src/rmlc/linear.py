"""RMLClassifier: a linear multi-label classifier on fixed features (paper Eq. 1, 4, 6).

The paper's classifier "can be used with hand-crafted features" and, as CNN+RMLC, on the
features of a trained network. This is that classifier as a scikit-learn estimator:
``f(x) = W^T x + b`` trained by minibatch SGD with momentum in torch (CPU or CUDA) on any
loss of :mod:`rmlc.losses`, with ``alpha / 2 ||W||^2`` as weight decay. Given unlabeled
features it is semi-supervised: labels are propagated once, at the start, from each
unlabeled sample's nearest labeled neighbour with heat-kernel confidence ``s_i``
(paper Eq. 5, 6), or, as the paper's ablation, the transductive term ``eta sum H_1(|f|)``
is added on the unlabeled samples (Eq. 4).
"""

from __future__ import annotations

import json
import math
import zipfile
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from tqdm.auto import tqdm

from rmlc import checks
from rmlc.atomic import atomic_write
from rmlc.checks import (
    BATCH_SIZE,
    EPOCHS,
    KAPPA,
    LEARNING_RATE,
    MOMENTUM,
    RAMP_S,
    SEED,
    WEIGHT_DECAY,
    check_integer,
)
from rmlc.labels import positive_mask_numpy
from rmlc.losses import LOSS_REGISTRY, MultiLabelLoss, loss_entry
from rmlc.losses.functional import transductive_hinge
from rmlc.losses.ranking import hinge_steps_for
from rmlc.losses.terms import RANK_MODES
from rmlc.metrics import MultiLabelMeter, mean_average_precision
from rmlc.propagation import Propagation, check_temperature, propagate_labels

__all__ = ["RMLClassifier"]

_SEMI_SUPERVISED = ("propagation", "transductive")
# What :meth:`RMLClassifier.save` writes: arrays in an ``.npz``, the rest as JSON. Format 2:
# loss names mean what they mean in training (``rmlc`` the recommended RMLC). In format 1
# ``loss="rmlc"`` was the paper's loss, now named ``rmlc-paper``: files of format 1, and
# the joblib files of rmlc before 0.2, are read with their old meaning.
_FILE_FORMAT = "rmlc.RMLClassifier/2"
# Format 1 (and the joblib files before it) meant the paper's loss by "rmlc" in all but a
# short stretch of development (commits baa6039 to 9d356a7 and 523242c, where it was the
# recommended RMLC): such files are read with the paper's, which only matters to a refit.
_OLD_LOSS_NAMES = {"rmlc": "rmlc-paper"}
_READ_FORMATS = ("rmlc.RMLClassifier/1", _FILE_FORMAT)
_SAVED_ARRAYS = ("coef_", "intercept_", "mean_", "scale_", "loss_curve_")
_PROPAGATION_ARRAYS = ("labels", "weights", "neighbors", "distances")


def _sklearn(constraint: checks.Interval) -> Interval:
    """scikit-learn's ``Interval`` of a declaration of :mod:`rmlc.checks` (an unbounded real
    end is ``inf``, as scikit-learn writes it)."""
    high = constraint.high
    if high is None and constraint.kind is Real:
        high = math.inf
    return Interval(constraint.kind, constraint.low, high, closed=constraint.closed)


class RMLClassifier(MultiOutputMixin, ClassifierMixin, BaseEstimator):
    """Linear multi-label classifier trained with the RMLC loss (or a baseline loss).

    Args:
        loss: a loss of :data:`rmlc.losses.LOSS_REGISTRY` whose entry applies on features,
            with the same meaning as in training. ``"rmlc-paper"`` (the default) is the RMLC
            loss as the paper states it, :meth:`~rmlc.losses.RMLCLoss.paper`: on fixed
            features it is the recommended one. ``"rmlc"`` is the recommended end-to-end
            RMLC, ``RMLCLoss()`` (the balanced margin, the hinge throughout: the ramp
            off); its remedies cost 5 to 7 mAP here under corrupted labels (measured with
            the ramp for the second half, the default before issue 25). ``"warp"``,
            ``"bce"``, ``"softmax"``, ``"asl"``, ``"gce"`` and ``"llr"`` are the baselines
            (``llr`` rejects more each epoch).
        alpha: the ``lambda`` of Eq. 1: L2 penalty ``alpha / 2 ||W||^2`` (weight decay).
        kappa: weight of the RMLC margin term.
        s: ramp parameter of RMLC in ``(-1, 0]``.
        rank: ``"sampled"`` (paper) or ``"exact"`` rank estimate for RMLC and WARP.
        learning_rate: SGD step size (constant).
        momentum: SGD momentum.
        max_epochs: passes over the (labeled + propagated) training set.
        batch_size: samples per SGD step.
        tol: stop when the epoch's mean loss improves by less than ``tol`` (relative) for
            ``n_iter_no_change`` epochs; ``None`` runs all epochs.
        n_iter_no_change: patience of the stopping rule.
        standardize: scale features to zero mean and unit variance (fitted on the labeled
            and unlabeled features together).
        whiten: ``None`` (default) or a ridge ``lambda >= 0``: after standardizing, decorrelate
            the features with ``(Sigma + lambda * mean_eig * I)^(-1/2)`` (``Sigma`` their
            covariance, ``mean_eig`` its mean eigenvalue), rescaled so that the mean feature
            variance stays 1. This preconditions SGD where features are strongly correlated,
            as a network's penultimate layer is (condition numbers of 1e5 are common, and
            plain SGD then stops far from the optimum); ``1e-3`` whitens almost fully, large
            values approach plain standardizing. ``alpha`` then penalises the weights of the
            whitened features. Label propagation still measures distances on the
            standardized features. Leave it off for high-dimensional raw inputs (pixels),
            whose low-variance directions are mostly noise.
        fit_intercept: learn a bias per label.
        semi_supervised: with ``X_unlabeled``: ``"propagation"`` (Eq. 6) or
            ``"transductive"`` (Eq. 4).
        eta: weight of the transductive term.
        t: heat-kernel temperature for propagation: ``"mean"``, ``"authors"`` or a number.
        random_state: seed of initialisation, shuffling and sampled ranks.
        device: torch device to train on (``"cpu"``, ``"cuda"``...).
        verbose: show a progress bar over epochs.

    Attributes:
        coef_: ``(m, d)`` weights (in the space of the given features).
        intercept_: ``(m,)`` biases.
        whitening_: ``(d, d)`` whitening matrix applied after standardizing, or None.
        classes_: class labels for single-label ``y``; ``arange(m)`` for multi-label.
        multilabel_: whether ``fit`` received a label indicator matrix.
        propagation_: the :class:`~rmlc.propagation.Propagation` of the unlabeled
            samples, or None.
        loss_curve_: mean training loss of each epoch.
        n_iter_: epochs run.
    """

    # Checked by fit (scikit-learn's); the parameters shared with the training config and
    # the losses read their declarations in rmlc.checks.
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "loss": [str],  # one of the registry's names: checked by _validate_params
        "alpha": [_sklearn(WEIGHT_DECAY)],
        "kappa": [_sklearn(KAPPA)],
        "s": [_sklearn(RAMP_S)],
        "rank": [StrOptions(set(RANK_MODES))],
        "learning_rate": [_sklearn(LEARNING_RATE)],
        "momentum": [_sklearn(MOMENTUM)],
        "max_epochs": [_sklearn(EPOCHS)],
        "batch_size": [_sklearn(BATCH_SIZE)],
        "tol": [Interval(Real, 0, math.inf, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "whiten": [Interval(Real, 0, math.inf, closed="left"), None],
        "fit_intercept": ["boolean"],
        "semi_supervised": [StrOptions(set(_SEMI_SUPERVISED))],
        "eta": [Interval(Real, 0, math.inf, closed="left")],
        "t": "no_validation",  # rmlc.checks.TEMPERATURE (check_temperature), called by fit
        "random_state": [_sklearn(SEED), np.random.Generator, None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        loss: str = "rmlc-paper",
        alpha: float = 1e-4,
        kappa: float = 5.0,
        s: float = -0.8,
        rank: str = "sampled",
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        max_epochs: int = 30,
        batch_size: int = 96,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 5,
        standardize: bool = True,
        whiten: float | None = None,
        fit_intercept: bool = True,
        semi_supervised: str = "propagation",
        eta: float = 1.0,
        t: str | float = "mean",
        random_state: int | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.loss = loss
        self.alpha = alpha
        self.kappa = kappa
        self.s = s
        self.rank = rank
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.whiten = whiten
        self.fit_intercept = fit_intercept
        self.semi_supervised = semi_supervised
        self.eta = eta
        self.t = t
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ---- scikit-learn plumbing ----------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags

    def _validate_params(self) -> None:
        """scikit-learn's checks, and ``loss`` among the losses that apply on features."""
        super()._validate_params()
        names = sorted(name for name, entry in LOSS_REGISTRY.items() if entry.on_features)
        if self.loss not in names:
            raise InvalidParameterError(
                f"The 'loss' parameter of RMLClassifier must be a str among {names}. "
                f"Got {self.loss!r} instead."
            )

    def _build_loss(self, generator: torch.Generator, total_steps: int) -> MultiLabelLoss:
        """The loss of ``self.loss`` as its registry entry says: the estimator's ``s``,
        ``kappa`` and ``rank`` where it takes them, the ``generator`` of sampled ranks, and
        the hinge for the entry's ``ramp_start`` of ``total_steps``."""
        entry = loss_entry(self.loss)
        settings = {"s": self.s, "kappa": self.kappa, "rank": self.rank}
        params: dict[str, Any] = {key: settings[key] for key in entry.estimator_settings}
        if entry.sampled_ranks:
            params["generator"] = generator
        if entry.ramp_start is not None:
            params["hinge_steps"] = hinge_steps_for(entry.ramp_start, total_steps)
        return entry.build(reduction="mean", **params)

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as a float 0/1 ``(n, m)`` matrix; sets ``classes_`` and ``multilabel_``."""
        if y.ndim == 2 and y.shape[1] > 1:
            self.multilabel_ = True
            self.classes_ = np.arange(y.shape[1])
            return positive_mask_numpy(y, "Y").astype(np.float32)
        y = y.ravel()
        check_classification_targets(y)
        self.multilabel_ = False
        self.classes_, codes = np.unique(y, return_inverse=True)
        one_hot = np.zeros((len(y), len(self.classes_)), dtype=np.float32)
        one_hot[np.arange(len(y)), codes] = 1.0
        return one_hot

    # ---- fitting ------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        Y: Any,
        X_unlabeled: Any | None = None,
        sample_weight: Any | None = None,
    ) -> RMLClassifier:
        """Fit on labeled features, and optionally unlabeled ones (semi-supervised).

        Args:
            X: ``(n, d)`` features.
            Y: ``(n, m)`` label indicator in {0, 1} or {-1, +1}, or ``(n,)`` class labels.
            X_unlabeled: optional ``(u, d)`` features without labels.
            sample_weight: optional ``(n,)`` non-negative weights of the labeled samples.
        """
        self._validate_params()
        check_temperature(self.t)  # propagation's own check, and its message
        X, Y = validate_data(self, X, Y, multi_output=True, dtype=np.float32, ensure_min_samples=1)
        targets = self._encode_targets(np.asarray(Y))
        weights = _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)
        if sample_weight is not None and not weights.any():
            raise ValueError(
                "Sample weights must contain at least one non-zero number: "
                "sample_weight is all zero, nothing to learn from"
            )
        unlabeled = None
        if X_unlabeled is not None:
            unlabeled = validate_data(self, X_unlabeled, reset=False, dtype=np.float32)

        features = X if unlabeled is None else np.concatenate([X, unlabeled])
        self.mean_ = features.mean(axis=0) if self.standardize else np.zeros(X.shape[1])
        scale = features.std(axis=0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(scale > 0, scale, 1.0)
        standardized = self._standardized(features)
        X, unlabeled = standardized[: len(X)], standardized[len(X) :]
        self.whitening_ = None
        if self.whiten is not None:
            self.whitening_ = whitening_matrix(standardized, float(self.whiten))
        self.propagation_: Propagation | None = None
        unlabeled_features = None
        if len(unlabeled) > 0:
            if self.semi_supervised == "propagation":
                self.propagation_ = propagate_labels(X, targets, unlabeled, t=self.t)
                X = np.concatenate([X, unlabeled])
                targets = np.concatenate([targets, self.propagation_.labels])
                weights = np.concatenate([weights, self.propagation_.weights.astype(np.float32)])
            else:
                unlabeled_features = unlabeled
        if self.whitening_ is not None:
            X = X @ self.whitening_
            if unlabeled_features is not None:
                unlabeled_features = unlabeled_features @ self.whitening_
        self._train(X, targets, weights, unlabeled_features)
        return self

    def _standardized(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _train(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray,
        unlabeled: np.ndarray | None,
    ) -> None:
        device = torch.device(self.device)
        seed = int(np.random.default_rng(self.random_state).integers(2**62))
        generator = torch.Generator().manual_seed(seed)
        loss_generator = torch.Generator(device=device).manual_seed(seed + 1)
        features = torch.from_numpy(X).to(device)
        labels = torch.from_numpy(targets).to(device)
        sample_weight = torch.from_numpy(weights).to(device)
        extra = None if unlabeled is None else torch.from_numpy(unlabeled).to(device)
        coef, intercept, optimizer = self._parameters(features.shape[1], labels.shape[1], device)
        entry = loss_entry(self.loss)
        total_steps = self.max_epochs * math.ceil(len(features) / self.batch_size)
        loss_fn = self._build_loss(loss_generator, total_steps)

        self.loss_curve_: list[float] = []
        stopping = _StoppingRule(self.tol, self.n_iter_no_change)
        epochs = tqdm(range(self.max_epochs), desc="RMLClassifier", disable=not self.verbose)
        for epoch in epochs:
            if entry.takes_epoch:
                loss_fn.set_epoch(epoch)
            # The stopping rule judges the ramp's epochs, not those of a hinge warm start;
            # with the hinge throughout (hinge_steps None) it judges every epoch.
            warm_start = entry.warm_start and loss_fn.ramp_pending
            epoch_loss = _sgd_epoch(
                (features, labels, sample_weight, extra),
                (coef, intercept),
                optimizer,
                loss_fn,
                generator,
                self.batch_size,
                self.eta,
            )
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(
                    f"training diverged (loss {epoch_loss}); lower learning_rate "
                    f"(now {self.learning_rate})"
                )
            self.loss_curve_.append(epoch_loss)
            epochs.set_postfix(loss=f"{epoch_loss:.4g}")
            if not warm_start and stopping.stop_after(epoch_loss):
                break
        self.n_iter_ = len(self.loss_curve_)
        self._set_coefficients(coef, intercept)

    def _parameters(
        self, d: int, m: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.optim.Optimizer]:
        """Zero ``(d, m)`` weights and ``(m,)`` biases, and SGD with ``alpha`` as the
        weights' decay (none on the biases)."""
        coef = torch.zeros(d, m, device=device, requires_grad=True)
        intercept = torch.zeros(m, device=device, requires_grad=self.fit_intercept)
        groups = [{"params": [coef], "weight_decay": self.alpha}]
        if self.fit_intercept:
            groups.append({"params": [intercept], "weight_decay": 0.0})
        optimizer = torch.optim.SGD(groups, lr=self.learning_rate, momentum=self.momentum)
        return coef, intercept, optimizer

    def _set_coefficients(self, coef: torch.Tensor, intercept: torch.Tensor) -> None:
        """``coef_`` and ``intercept_``: the weights trained on standardized (and whitened)
        features expressed on the original features, f = ((x - mu) / sigma) P W + b."""
        weight = coef.detach().cpu().double().numpy()
        if self.whitening_ is not None:
            weight = self.whitening_.astype(np.float64) @ weight
        weight = weight / self.scale_[:, None]
        self.coef_ = weight.T.astype(np.float32)
        self.intercept_ = (intercept.detach().cpu().double().numpy() - self.mean_ @ weight).astype(
            np.float32
        )

    # ---- prediction ---------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores ``(n, m)`` (``(n,)`` for a two-class single-label problem, as sklearn)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        scores = X @ self.coef_.T + self.intercept_
        if not self.multilabel_ and len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def label_scores(self, X: Any) -> np.ndarray:
        """Scores of every label, ``(n, m)``, whatever the kind of targets (unlike
        :meth:`decision_function`, which follows scikit-learn for two classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return X @ self.coef_.T + self.intercept_

    def predict(self, X: Any) -> np.ndarray:
        """Multi-label: ``(n, m)`` 0/1 where the score is positive (as ``RidgeClassifier``);
        single-label: the class of the highest score, ``(n,)``."""
        scores = self.label_scores(X)
        if self.multilabel_:
            return (scores > 0).astype(np.int64)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_topk(self, X: Any, k: int = 3) -> np.ndarray:
        """The ``k`` highest-scoring labels of each sample, best first, ``(n, k)``: label
        indices for multi-label data, class labels for single-label data."""
        k = check_integer(k, "k", 1)
        scores = self.label_scores(X)
        top = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
        return top if self.multilabel_ else self.classes_[top]

    def score(self, X: Any, y: Any, sample_weight: Any | None = None) -> float:
        """scikit-learn's score, a fraction in [0, 1]: multi-label, the mean average
        precision (0.987; :meth:`metrics` and :mod:`rmlc.metrics` give it in percent,
        98.7); single-label, the accuracy."""
        if not getattr(self, "multilabel_", True) or np.ndim(y) == 1:
            return super().score(X, y, sample_weight=sample_weight)
        scores = torch.from_numpy(self.label_scores(X))
        targets = torch.from_numpy(positive_mask_numpy(np.asarray(y), "Y"))
        return mean_average_precision(scores, targets) / 100.0

    def metrics(self, X: Any, Y: Any, k: int = 3) -> dict[str, float]:
        """Every metric of :class:`rmlc.metrics.MultiLabelMeter` (top-``k`` P/R/F1 per class
        and overall, mAP, and accuracy for single-label data), in percent, at threshold 0.

        Args:
            X: ``(n, d)`` features.
            Y: ``(n, m)`` 0/1 labels, or ``(n,)`` class labels of a single-label fit.
        """
        check_is_fitted(self)
        targets = np.asarray(Y)
        if targets.ndim == 1:
            if self.multilabel_:
                raise ValueError("Y is (n,) class labels, but the model was fit multi-label")
            targets = targets[:, None] == self.classes_[None, :]
        targets = np.ascontiguousarray(positive_mask_numpy(targets, "Y"))
        meter = MultiLabelMeter(k=k)
        meter.update(torch.from_numpy(self.label_scores(X)), torch.from_numpy(targets))
        return meter.compute()

    # ---- persistence --------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the fitted estimator to ``path``: an ``.npz`` of its arrays and a JSON record
        of its parameters, without pickle, so that loading it runs no code."""
        _write(self, path)

    @staticmethod
    def load(path: str | Path, trusted: bool = False) -> RMLClassifier:
        """Read an estimator written by :meth:`save`.

        Files of an earlier rmlc, whose ``loss="rmlc"`` meant the paper's loss, load with
        ``loss="rmlc-paper"``, the same loss by its name now. ``trusted=True`` also reads
        the joblib (pickle) files of rmlc before 0.2: unpickling runs whatever code the
        file names, so pass it only for a file you made yourself.

        Raises:
            ValueError: not an RMLClassifier file, or a pickle file without ``trusted``.
        """
        return _read(path, trusted)


def _sgd_epoch(
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
    weights: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    loss_fn: MultiLabelLoss,
    generator: torch.Generator,
    batch_size: int,
    eta: float,
) -> float:
    """One pass of minibatch SGD over the labeled rows in a random order (with the
    transductive hinge, weighted ``eta``, on as many unlabeled rows per batch); the mean
    loss per sample.

    Args:
        data: features ``(n, d)``, labels ``(n, m)``, sample weights ``(n,)`` and the
            unlabeled features ``(u, d)`` of the transductive term (or None).
        weights: ``coef`` ``(d, m)`` and ``intercept`` ``(m,)``, trained in place.
    """
    features, labels, sample_weight, extra = data
    coef, intercept = weights
    device = features.device
    n = features.shape[0]
    order = torch.randperm(n, generator=generator).to(device)
    extra_order = None if extra is None else torch.randperm(len(extra), generator=generator)
    total, seen = 0.0, 0
    for step, start in enumerate(range(0, n, batch_size)):
        batch = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        scores = features[batch] @ coef + intercept
        loss = loss_fn(scores, labels[batch], sample_weight[batch])
        if extra is not None and eta > 0:  # cycle through the unlabeled set
            cycle = (step * batch_size + torch.arange(batch_size)) % len(extra)
            rows = extra_order[cycle].to(device)
            unlabeled_scores = extra[rows] @ coef + intercept
            loss = loss + eta * transductive_hinge(unlabeled_scores).mean()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
        seen += len(batch)
    return total / seen


def _write(model: RMLClassifier, path: str | Path) -> None:
    """Write a fitted estimator (:meth:`RMLClassifier.save`)."""
    check_is_fitted(model)
    arrays = {name: np.asarray(getattr(model, name)) for name in _SAVED_ARRAYS}
    if model.whitening_ is not None:
        arrays["whitening_"] = model.whitening_
    record: dict[str, Any] = {
        "format": _FILE_FORMAT,
        "params": model.get_params(),
        "multilabel_": bool(model.multilabel_),
        "n_iter_": int(model.n_iter_),
        "n_features_in_": int(model.n_features_in_),
    }
    classes = np.asarray(model.classes_)
    if classes.dtype == object:  # arbitrary Python labels: kept as JSON values
        record["classes_"] = classes.tolist()
    else:
        arrays["classes_"] = classes
    if hasattr(model, "feature_names_in_"):
        record["feature_names_in_"] = [str(name) for name in model.feature_names_in_]
    if model.propagation_ is not None:
        record["propagation_t"] = float(model.propagation_.t)
        for name in _PROPAGATION_ARRAYS:
            arrays[f"propagation_{name}"] = np.asarray(getattr(model.propagation_, name))
    try:
        arrays["record"] = np.array(json.dumps(record))
    except TypeError as error:
        raise ValueError(
            f"cannot save this RMLClassifier without pickle: {error} (parameters and "
            "class labels must be numbers, strings, booleans or None)"
        ) from None
    atomic_write(path, lambda stream: np.savez(stream, **arrays))


def _read(path: str | Path, trusted: bool) -> RMLClassifier:
    """Read an estimator file (:meth:`RMLClassifier.load`)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        if not trusted:
            raise ValueError(
                f"{path} is not an RMLClassifier .npz file. If it is a joblib file from an "
                "older rmlc, loading it can run code: pass trusted=True (rmlc predict "
                "--trusted) only if you made it yourself, then save it again"
            )
        model = joblib.load(path)
        if not isinstance(model, RMLClassifier):
            raise TypeError(f"{path} does not hold an RMLClassifier but {type(model).__name__}")
        model.loss = _OLD_LOSS_NAMES.get(model.loss, model.loss)  # files of rmlc < 0.2
        return model
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        record = json.loads(str(arrays.pop("record")))
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path} is not an RMLClassifier file: {error}") from None
    if record.get("format") not in _READ_FORMATS:
        raise ValueError(
            f"{path} is not an RMLClassifier file (format {record.get('format')!r}, "
            f"expected {_FILE_FORMAT!r})"
        )
    params = record["params"]
    if record["format"] != _FILE_FORMAT:  # format 1: "rmlc" was the paper's loss
        params["loss"] = _OLD_LOSS_NAMES.get(params["loss"], params["loss"])
    model = RMLClassifier(**params)
    for name in _SAVED_ARRAYS:
        setattr(model, name, arrays[name])
    model.loss_curve_ = [float(value) for value in model.loss_curve_]
    model.whitening_ = arrays.get("whitening_")
    model.classes_ = (
        arrays["classes_"] if "classes_" in arrays else np.array(record["classes_"], dtype=object)
    )
    model.multilabel_ = record["multilabel_"]
    model.n_iter_ = record["n_iter_"]
    model.n_features_in_ = record["n_features_in_"]
    if "feature_names_in_" in record:
        model.feature_names_in_ = np.array(record["feature_names_in_"], dtype=object)
    model.propagation_ = None
    if "propagation_t" in record:
        model.propagation_ = Propagation(
            *(arrays[f"propagation_{name}"] for name in _PROPAGATION_ARRAYS),
            t=record["propagation_t"],
        )
    return model


class _StoppingRule:
    """Stop when the epoch's mean loss improved by less than ``tol`` (relative) for
    ``patience`` epochs in a row; never with ``tol`` None."""

    def __init__(self, tol: float | None, patience: int) -> None:
        self.tol, self.patience = tol, patience
        self.best, self.stale = math.inf, 0

    def stop_after(self, loss: float) -> bool:
        if self.tol is None:
            return False
        if loss > self.best - self.tol * max(abs(self.best), 1e-12):
            self.stale += 1
        else:
            self.stale = 0
        self.best = min(self.best, loss)
        return self.stale >= self.patience


def whitening_matrix(features: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge-regularised whitening ``(d, d)`` of ``(n, d)`` features (centred here).

    ``P = c * V diag(1 / sqrt(e + ridge * mean(e))) V^T`` (``e``, ``V``: eigenvalues and
    vectors of the covariance), with ``c`` such that ``features @ P`` has mean variance 1.
    Degenerate inputs (one sample, constant features) give the identity.
    """
    centred = features.astype(np.float64) - features.mean(axis=0)
    covariance = centred.T @ centred / len(features)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    if not eigenvalues.any():
        return np.eye(features.shape[1], dtype=np.float32)
    # At least 1e-9 of the largest eigenvalue, so that ridge 0 on a singular covariance
    # stays finite.
    floor = max(ridge * eigenvalues.mean(), 1e-9 * eigenvalues.max())
    inverse_root = 1.0 / np.sqrt(eigenvalues + floor)
    scale = 1.0 / np.sqrt(np.mean(eigenvalues * inverse_root**2))
    return ((eigenvectors * (scale * inverse_root)) @ eigenvectors.T).astype(np.float32)
