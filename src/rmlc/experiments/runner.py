"""One run of an experiment: train a configured network (or fit the linear classifier on its
features) and return the test metrics, plus what the semi-supervised runs propagated."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rmlc.train import TrainConfig, Trainer, build_trainer

__all__ = ["TrainedRun", "fit_on_features", "train_network"]


class TrainedRun:
    """A finished training run: its metrics and, for CNN+RMLC, its trainer."""

    def __init__(
        self, metrics: dict[str, float], result: dict[str, Any], trainer: Trainer, seconds: float
    ) -> None:
        self.metrics, self.result, self.trainer, self.seconds = metrics, result, trainer, seconds


def train_network(config: TrainConfig, keep_files: bool = False) -> TrainedRun:
    """Train and evaluate one network; checkpoints go to a temporary folder.

    Returns the test metrics and the validation ones (``val_mAP`` ...: the only ones a
    choice between methods may be based on); for semi-supervised runs whose unlabeled
    samples have known classes (``classes`` set), also the mean heat-kernel weight ``s_i``
    given to unlabeled images of the labeled classes (``s_in``) and of the other classes
    (``s_out``).
    """
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="rmlc-run-"))
    config.out, config.progress, config.tensorboard = str(folder), False, False
    try:
        trainer = build_trainer(config)
        data = trainer.data
        result = trainer.fit()
    finally:
        if not keep_files:
            shutil.rmtree(folder, ignore_errors=True)
    metrics = {
        key: float(value)
        for key, value in result.get("test", result).items()
        if isinstance(value, int | float)
    }
    for key, value in result.get("validation", {}).items():  # what selection may look at
        metrics[f"val_{key}"] = float(value)
    if data.unlabeled_classes is not None and config.classes and len(data.unlabeled):
        weights = trainer.sample_weights[data.unlabeled]
        inside = torch.isin(data.unlabeled_classes, torch.tensor(config.classes))
        if inside.any():
            metrics["s_in"] = float(weights[inside].mean())
        if (~inside).any():
            metrics["s_out"] = float(weights[~inside].mean())
    return TrainedRun(metrics, result, trainer, time.perf_counter() - started)


def fit_on_features(
    source: TrainedRun, params: dict[str, Any], seed: int
) -> tuple[dict[str, float], float]:
    """CNN+RMLC: the linear classifier on the penultimate features of a trained network.

    Fits on the labeled training samples' features (their possibly corrupted targets) and
    evaluates on the test split, with the same metrics as the networks.
    """
    from rmlc.linear import RMLClassifier  # scikit-learn: loaded by the runs that use it

    started = time.perf_counter()
    trainer, data = source.trainer, source.trainer.data
    features, _ = trainer.extract_features(data.train)
    labeled = data.labeled
    X = features[labeled].numpy()
    Y = data.targets[labeled].numpy().astype(np.int64)
    model = RMLClassifier(random_state=seed, **params).fit(X, Y)
    test_view, test_targets = data.test
    test_features, order = trainer.extract_features(test_view)
    targets = test_targets[order].numpy()  # at the linear model's own threshold: 0
    metrics = model.metrics(test_features.numpy(), targets, k=trainer.config.topk)
    return {key: float(value) for key, value in metrics.items()}, time.perf_counter() - started
