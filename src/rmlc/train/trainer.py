"""The training loop of RML-CNN (supervised) and SS-RML-CNN (semi-supervised).

Supervised: minibatch SGD on any loss of :mod:`rmlc.losses`. Semi-supervised: first
``warmup_epochs`` on the labeled data alone (or a network loaded with ``init_checkpoint``),
then every ``refresh_every`` epochs the current network's features of all labeled and
unlabeled images are extracted, each unlabeled image takes the labels of its nearest
labeled neighbour with heat-kernel weight ``s_i`` (:func:`rmlc.propagation.propagate_labels`)
and training continues on labeled plus propagated samples with those weights. With
``fill_unknown`` (partial labels), each refresh first fills the labeled images' unknown tags
from their nearest labeled neighbours (:mod:`rmlc.train.fill`), semi-supervised or not.

Model selection uses a validation split carved from the training data, never the test
split. Checkpoints are written atomically every epoch (and every ``checkpoint_every_steps``)
with everything needed to resume exactly: model, optimizer, AMP scaler, position, random
states and the propagated labels. Ctrl-C or SIGTERM finishes the current step, saves a
resumable checkpoint and exits (:mod:`rmlc.train.stopping`).

:class:`Trainer` holds a run's state and orchestrates it; the work is done by functions
beside it: :mod:`rmlc.train.epoch` (the steps), :mod:`rmlc.train.evaluation`,
:mod:`rmlc.train.refresh` (label propagation), :mod:`rmlc.train.optimization`,
:mod:`rmlc.train.loading`, and :class:`~rmlc.train.checkpoint.CheckpointContents`.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from rmlc.atomic import atomic_write_text
from rmlc.losses import loss_entry
from rmlc.models import MultiLabelNet
from rmlc.provenance import provenance
from rmlc.thresholds import THRESHOLD_CHOICES, choose_threshold
from rmlc.train.accounting import announce
from rmlc.train.checkpoint import (
    CheckpointContents,
    atomic_save,
    check_compatible,
    check_same_ramp,
    load_checkpoint,
)
from rmlc.train.config import TrainConfig
from rmlc.train.curves import epoch_curves
from rmlc.train.data import BatchPreparation, TrainingData
from rmlc.train.distributed import DistributedContext, barrier, training_network
from rmlc.train.epoch import REPORT_EVERY, Position, StopAfterStep, train_epoch, train_step
from rmlc.train.evaluation import batch_outputs, split_metrics
from rmlc.train.fill import check_fill_unknown
from rmlc.train.loading import epoch_sampler, evaluation_loader
from rmlc.train.optimization import amp_dtype, autocast, build_optimizer, training_loss
from rmlc.train.refresh import check_propagation_settings, refresh_epoch
from rmlc.train.relabel import build_relabeling, check_relabel_targets
from rmlc.train.run_log import RunLog
from rmlc.train.sampling import ShardedSampler
from rmlc.train.stopping import StopRequest
from rmlc.train.targets import SparseTargets

__all__ = ["Trainer", "TrainingInterrupted"]


class TrainingInterrupted(RuntimeError):
    """Training stopped by a signal (Ctrl-C, SIGTERM); ``exit_code`` is 128 + its number."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Trainer:
    """Trains a :class:`~rmlc.models.MultiLabelNet` on :class:`TrainingData`.

    Args:
        model: the network (not yet wrapped for DDP).
        data: training, validation, test and unlabeled images with their targets.
        config: the run's configuration.
        context: distributed context (rank, world size, device).
    """

    def __init__(
        self,
        model: MultiLabelNet,
        data: TrainingData,
        config: TrainConfig,
        context: DistributedContext,
    ) -> None:
        self.config, self.data, self.context = config, data, context
        self.device = context.device
        self.out = Path(config.out)
        self.model, self.network = training_network(
            model, config.channels_last, config.compile, context
        )
        self._set_up_loss()
        self.optimizer = build_optimizer(self.model, config)
        self.amp_dtype = amp_dtype(config.amp)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        if config.semi_supervised and len(data.unlabeled):  # settings that need l: now,
            check_propagation_settings(config, len(data.labeled))  # not after the warm-up
        # Targets and weights of every training sample; propagation rewrites the unlabeled.
        self.targets = data.targets.take(slice(None))  # a copy, sparse
        self.sample_weights = torch.ones(len(self.targets))
        self.propagation_epoch: int | None = None
        shape = (len(data.labeled), data.targets.num_classes)
        self.relabeling = build_relabeling(config, getattr(self.loss_fn, "s", None), shape)
        check_relabel_targets(self.relabeling, self.targets)
        check_fill_unknown(config, data.targets.take(data.labeled), data.class_names)
        self.relabel_epoch: int | None = None
        self.prepare = BatchPreparation(
            data.normalization["mean"], data.normalization["std"], data.normalization["size"]
        )
        self.position = Position()
        self.steps_in_epoch = 0  # of the epoch in progress
        self.stop = StopRequest()
        self.best_metric, self.best_epoch = -math.inf, -1
        # The threshold of the reported metrics: 0 while training when it is to be chosen
        # on validation at the end (threshold "auto" or "per-class").
        chosen_later = config.threshold in THRESHOLD_CHOICES
        self.threshold: float | np.ndarray | None = 0.0 if chosen_later else config.threshold
        self.saved_rng: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.rows: dict[str, Any] = {}  # how the data's rows were used (metrics.json)
        self.dynamics: list[dict[str, Any]] = []
        self.log = RunLog(
            self.out, tensorboard=config.tensorboard, echo=config.progress, enabled=context.is_main
        )

    # ---- set-up -------------------------------------------------------------------------

    def _set_up_loss(self) -> None:
        """The loss (:func:`~rmlc.train.optimization.training_loss`) and its generator."""
        self.loss_entry = loss_entry(self.config.loss)
        self.loss_generator = torch.Generator(device=self.device)
        self.loss_fn = training_loss(self.config, self.loss_generator, self.total_steps)

    # ---- phases -------------------------------------------------------------------------

    def uses_unlabeled(self, epoch: int) -> bool:
        """Whether propagated unlabeled samples are trained on in this epoch."""
        return (
            self.config.semi_supervised
            and len(self.data.unlabeled) > 0
            and epoch >= self._first_refresh_epoch()
        )

    def _first_refresh_epoch(self) -> int:
        return 0 if self.config.init_checkpoint else self.config.warmup_epochs

    def total_steps(self) -> int:
        """Optimisation steps of the whole run (epochs with propagated samples are longer)."""
        return sum(self._sampler(epoch).steps_per_epoch() for epoch in range(self.config.epochs))

    def refresh_due(self, epoch: int) -> bool:
        """Whether labels are (re)propagated, or unknown tags filled (``fill_unknown``,
        with or without unlabeled samples), at the start of this epoch."""
        fills = self.config.fill_unknown and epoch >= self._first_refresh_epoch()
        if not (self.uses_unlabeled(epoch) or fills):
            return False
        return (epoch - self._first_refresh_epoch()) % self.config.refresh_every == 0

    def _sampler(self, epoch: int) -> ShardedSampler:
        """This process's sampler of an epoch (:func:`~rmlc.train.loading.epoch_sampler`)."""
        return epoch_sampler(self.data, self.config, self.context, self.uses_unlabeled(epoch))

    # ---- the loop -----------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train for ``config.epochs`` epochs (resuming if asked) and evaluate the best model.

        Returns:
            the final metrics (also written to ``out/metrics.json``).
        """
        self.out.mkdir(parents=True, exist_ok=True)
        if self.context.is_main:
            atomic_write_text(self.config.to_yaml(), self.out / "config.yaml")
        self.log.open()
        self.rows = announce(self.data, self.config, self.log)
        if self.config.resume and (self.out / "last.pt").is_file():
            self.resume(self.out / "last.pt")
        elif self.config.init_checkpoint:
            self._load_initial(self.config.init_checkpoint)
        with self.stop:
            try:
                self._train_epochs()
            except KeyboardInterrupt:  # a second Ctrl-C, even while saving
                raise TrainingInterrupted(
                    f"aborted without saving; {self.out / 'last.pt'} holds the last "
                    f"checkpoint taken; resume with --resume --out {self.out}"
                ) from None
            # A signal after the last step: the final evaluation is short, finish it.
            return self._finish()

    def _train_epochs(self) -> None:
        """Train the remaining epochs; on a stop request, save and raise."""
        try:
            while self.position.epoch < self.config.epochs:
                if self.stop.agreed(self.device):
                    raise StopAfterStep
                self._train_epoch(self.position.epoch)
        except StopAfterStep:
            if self.context.is_main:
                self.save_checkpoint(self.out / "last.pt")
            raise TrainingInterrupted(
                f"stopped in epoch {self.position.epoch + 1} after step "
                f"{self.position.step_in_epoch} (checkpoint saved); resume with "
                f"--resume --out {self.out}",
                self.stop.exit_code,
            ) from None

    def stop_due(self, steps_this_epoch: int) -> bool:
        """Whether to stop after this step: one process polls its own flag every step;
        several agree (a collective) every few steps, all at the same ones."""
        if self.context.enabled and steps_this_epoch % REPORT_EVERY:
            return False
        return self.stop.agreed(self.device)

    def _train_epoch(self, epoch: int) -> None:
        """Refresh propagated labels when due, train the epoch's steps, then validate, keep
        the best model, checkpoint and log."""
        relabel_seconds = self._relabel_if_due(epoch)
        refresh_seconds = self._refresh_if_due(epoch)
        record = train_epoch(self, epoch, self._sampler(epoch))
        self.position = Position(epoch + 1, 0, self.position.global_step)
        record.update(
            refresh_seconds=refresh_seconds, unlabeled_in_use=int(self.uses_unlabeled(epoch))
        )
        if self.relabeling is not None:
            record["relabel_seconds"] = relabel_seconds
        if self.config.dynamics_every:
            self.log.dynamics(self.dynamics)
        if self.data.validation is not None:
            record.update(self._select_model(epoch))
        record.update(epoch_curves(self, epoch))
        self.history.append(record)
        if self.context.is_main:
            self.save_checkpoint(self.out / "last.pt")
        self.log.epoch(record)

    def _refresh_if_due(self, epoch: int) -> float:
        """Propagate labels if this epoch starts with a refresh (not again when resuming in
        its middle); returns the seconds it took."""
        if not self.refresh_due(epoch) or (
            self.propagation_epoch == epoch and self.position.step_in_epoch > 0
        ):
            return 0.0
        started = time.perf_counter()
        self.refresh_labels(epoch)
        return time.perf_counter() - started

    def _relabel_if_due(self, epoch: int) -> float:
        """Audit the labeled samples' tags every ``relabel_every`` epochs (not again when
        resuming in the middle of an epoch); returns the seconds it took."""
        if (
            self.relabeling is None
            or epoch == 0
            or epoch % self.config.relabel_every
            or (self.relabel_epoch == epoch and self.position.step_in_epoch > 0)
        ):
            return 0.0
        started = time.perf_counter()
        self.relabel_labels(epoch)
        return time.perf_counter() - started

    def relabel_labels(self, epoch: int) -> None:
        """Audit the labeled samples' given tags with the current network and set aside or
        correct the entries flagged often enough (:class:`~rmlc.train.relabel.Relabeling`)."""
        labeled = self.data.labeled
        scores, positions = self.predict_scores(Subset(self.data.train, labeled.tolist()))
        given = self.data.targets.take(labeled).matrix  # the tags as given, never corrected
        threshold = self.threshold if isinstance(self.threshold, float | np.ndarray) else 0.0
        targets, weights, acted = self.relabeling.audit(scores, positions, given, threshold)
        self.targets.set_rows(labeled, targets)
        self.sample_weights[labeled] = weights
        self.relabel_epoch = epoch
        action = "set aside" if self.config.relabel == "drop" else "relabeled"
        self.log.message(
            f"epoch {epoch + 1}: audited {len(labeled)} labeled images: {acted.nnz} tags of "
            f"{int((np.diff(acted.indptr) > 0).sum())} images {action}"
        )

    def _select_model(self, epoch: int) -> dict[str, float]:
        """Validation metrics (``val_*``); a better score than any before (or, with
        ``select`` ``"last"``, every epoch) saves ``best.pt``."""
        metrics = self.evaluate(self.data.validation)
        score = metrics[self.selection_metric]
        if score > self.best_metric or self.config.select == "last":
            self.best_metric, self.best_epoch = score, epoch + 1
            if self.context.is_main:
                self.save_checkpoint(self.out / "best.pt")
        return {f"val_{key}": value for key, value in metrics.items()}

    def step(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """One SGD step (:func:`~rmlc.train.epoch.train_step`): the batch loss, 0-d."""
        return train_step(self, images, indices)

    # ---- semi-supervised refresh --------------------------------------------------------

    def _outputs(
        self, view: Dataset, head: Callable[[torch.Tensor], torch.Tensor], gather: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``head(images)`` of a view's images (:func:`batch_outputs`): ``(rows (n, ...),
        indices (n,))``, gathered and ordered by index, or this process's shard only."""
        batches = evaluation_loader(view, self.config, self.context)
        precision = lambda: autocast(self.device, self.amp_dtype)  # noqa: E731
        return batch_outputs(self.model, head, batches, self.prepare, precision, gather)

    def extract_features(
        self, view: Dataset, gather: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features ``(n, d)`` and indices ``(n,)`` of a view (see :meth:`_outputs`)."""
        return self._outputs(view, self.model.features, gather=gather)

    def refresh_labels(self, epoch: int) -> None:
        """Fill the labeled samples' unknown tags and propagate labels to the unlabeled
        samples, as configured (:func:`rmlc.train.refresh.refresh_epoch`)."""
        for line in refresh_epoch(self, epoch):
            self.log.message(line)
        self.propagation_epoch = epoch

    # ---- evaluation ---------------------------------------------------------------------

    @property
    def selection_metric(self) -> str:
        return "accuracy" if self.data.single_label else "mAP"

    def predict_scores(self, view) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(n, m)`` and indices ``(n,)`` of a view (see :meth:`_outputs`)."""
        return self._outputs(view, self.model)

    def evaluate(self, split: tuple[Dataset, Any]) -> dict[str, float]:
        """All of :mod:`rmlc.metrics` on a (view, targets) split (:func:`split_metrics`)."""
        view, targets = split
        scores, indices = self.predict_scores(view)
        k, single_label = self.config.topk, self.data.single_label
        return split_metrics(scores, indices, targets, k, self.threshold, single_label)

    # ---- checkpoints --------------------------------------------------------------------

    def state(self) -> CheckpointContents:
        """Everything a checkpoint holds (:class:`CheckpointContents`)."""
        relabeling = self.relabeling
        return CheckpointContents(
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            position=vars(self.position).copy(),
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            history=self.history,
            dynamics=self.dynamics,
            loss=self.loss_fn.state_dict(),
            targets=self.targets.state_dict(),
            sample_weights=self.sample_weights,
            propagation_epoch=self.propagation_epoch,
            relabel=None if relabeling is None else relabeling.state_dict(),
            relabel_epoch=None if relabeling is None else self.relabel_epoch,
            rng={"torch": torch.get_rng_state(), "loss": self.loss_generator.get_state()},
            config=self.config.to_dict(),
            backbone=self.model.name,
            num_classes=self.model.num_classes,
            class_names=list(self.data.class_names),
            in_channels=self.data.in_channels,
            normalization=self.data.normalization,
            single_label=self.data.single_label,
        )

    def save_checkpoint(self, path: Path) -> None:
        atomic_save(self.state().to_dict(), path)

    def resume(self, path: Path) -> None:
        """Restore everything from a checkpoint written by this trainer."""
        payload = load_checkpoint(path)
        check_compatible(payload, self.model.name, self.model.num_classes, path)
        contents = CheckpointContents.from_dict(payload, path)
        check_same_ramp(contents.config, self.config.to_dict(), path)
        self.model.load_state_dict(contents.model)
        self.optimizer.load_state_dict(contents.optimizer)
        self.scaler.load_state_dict(contents.scaler)
        self.position = Position(**contents.position)
        self.best_metric, self.best_epoch = contents.best_metric, contents.best_epoch
        self.history, self.dynamics = contents.history, contents.dynamics
        if contents.loss is not None:  # checkpoints of older versions hold no loss state
            self.loss_fn.load_state_dict(contents.loss)
        self.targets = SparseTargets.from_state(contents.targets)
        self.sample_weights = contents.sample_weights
        self.propagation_epoch = contents.propagation_epoch
        if self.relabeling is not None and contents.relabel is not None:
            self.relabeling.load_state_dict(contents.relabel)
            self.relabel_epoch = contents.relabel_epoch
        self.saved_rng = contents.rng
        self.log.message(
            f"resumed from {path} at epoch {self.position.epoch + 1}, "
            f"step {self.position.step_in_epoch}"
        )

    def _load_initial(self, path: str) -> None:
        checkpoint = load_checkpoint(path)
        check_compatible(checkpoint, self.model.name, self.model.num_classes, path)
        self.model.load_state_dict(checkpoint["model"])

    # ---- end of training ----------------------------------------------------------------

    def _finish(self) -> dict[str, Any]:
        final: dict[str, Any] = {
            "epochs": self.config.epochs,
            "best_epoch": self.best_epoch,
            "selection_metric": self.selection_metric,
            "select": self.config.select,
            "rows": self.rows,
        }
        barrier()  # rank 0 has written best.pt
        best_path = self.out / "best.pt"
        if best_path.is_file():
            self.model.load_state_dict(load_checkpoint(best_path)["model"])
        if self.config.threshold in THRESHOLD_CHOICES:
            final["threshold"] = self._choose_threshold(best_path)
        if self.data.validation is not None:
            final["validation"] = self.evaluate(self.data.validation)
        if self.data.test is not None:
            test = self.evaluate(self.data.test)
            final.update(test)
            final["test"] = test
        if self.history:
            final["images_per_second"] = float(
                np.mean([r["images_per_second"] for r in self.history])
            )
        if self.context.is_main:  # where the numbers came from: command, commit, versions
            final["provenance"] = provenance(shlex.join(sys.argv), str(self.device))
            atomic_write_text(json.dumps(final, indent=2), self.out / "metrics.json")
        self.log.close()
        return final

    def _choose_threshold(self, best_path: Path) -> float | list[float]:
        """Choose the threshold(s) on the validation split (of the best epoch's network),
        use them from now on, and store them in ``best.pt``. Only known validation tags
        count (partial labels): an unknown tag is not read as absent."""
        view, targets = self.data.validation
        scores, indices = self.predict_scores(view)
        per_class = self.config.threshold == "per-class"
        known = targets.known(indices)  # None when every tag is known
        self.threshold = choose_threshold(
            scores.numpy(),
            targets[indices].numpy(),
            per_class,
            known=None if known is None else known.numpy(),
        )
        chosen = self.threshold.tolist() if per_class else self.threshold
        if self.context.is_main and best_path.is_file():
            checkpoint = load_checkpoint(best_path)
            checkpoint["threshold"] = chosen
            atomic_save(checkpoint, best_path)
        barrier()
        return chosen
