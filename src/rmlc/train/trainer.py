"""The training loop of RML-CNN (supervised) and SS-RML-CNN (semi-supervised).

Supervised: minibatch SGD on any loss of :mod:`rmlc.losses`. Semi-supervised: first
``warmup_epochs`` on the labeled data alone (or a network loaded with ``init_checkpoint``),
then every ``refresh_every`` epochs the current network's features of all labeled and
unlabeled images are extracted, each unlabeled image takes the labels of its nearest
labeled neighbour with heat-kernel weight ``s_i`` (:func:`rmlc.propagation.propagate_labels`)
and training continues on labeled plus propagated samples with those weights.

Model selection uses a validation split carved from the training data, never the test
split. Checkpoints are written atomically every epoch (and every ``checkpoint_every_steps``)
with everything needed to resume exactly: model, optimizer, AMP scaler, position, random
states and the propagated labels. Ctrl-C or SIGTERM finishes the current step, saves a
resumable checkpoint and exits (:mod:`rmlc.train.stopping`).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from rmlc.atomic import atomic_write_text
from rmlc.losses import loss_entry
from rmlc.losses.dynamics import ramp_statistics
from rmlc.metrics import MultiLabelMeter, mean_average_precision
from rmlc.models import MultiLabelNet
from rmlc.propagation import index_settings, propagate_labels, search_index
from rmlc.provenance import provenance
from rmlc.thresholds import THRESHOLD_CHOICES, choose_threshold
from rmlc.train.accounting import announce
from rmlc.train.checkpoint import atomic_save, check_compatible, load_checkpoint
from rmlc.train.config import TrainConfig
from rmlc.train.data import BatchPreparation, FileStore, ShardStore, TrainingData
from rmlc.train.distributed import DistributedContext, all_gather_rows, barrier
from rmlc.train.relabel import Relabeling
from rmlc.train.run_log import RunLog
from rmlc.train.sampling import EpochOrder, FixedOrder, ShardedSampler
from rmlc.train.schedule import learning_rate
from rmlc.train.stopping import StopRequest
from rmlc.train.targets import SparseTargets

__all__ = ["Trainer", "TrainingInterrupted"]

_DENSE_TARGET_ROWS = 4096  # rows of targets densified at a time in evaluation
_REPORT_EVERY = 10  # steps between progress updates (each one waits for the device)


class TrainingInterrupted(RuntimeError):
    """Training stopped by a signal (Ctrl-C, SIGTERM); ``exit_code`` is 128 + its number."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _StopAfterStep(Exception):
    """Raised inside the loop, at a step boundary, when a stop was requested."""


@dataclass
class Position:
    """Where training stands: the epoch in progress and the steps done within it."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


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
        self._set_up_network(model)
        self._set_up_loss()
        self._set_up_optimizer()
        if config.semi_supervised and len(data.unlabeled):  # settings that need l: now,
            self._check_propagation_settings()  # not at the first refresh after the warm-up
        # Targets and weights of every training sample; propagation rewrites the unlabeled.
        self.targets = data.targets.take(slice(None))  # a copy, sparse
        self.sample_weights = torch.ones(len(self.targets))
        self.propagation_epoch: int | None = None
        self.relabeling, self.relabel_epoch = self._set_up_relabeling(), None
        self.prepare = BatchPreparation(
            data.normalization["mean"], data.normalization["std"], data.normalization["size"]
        )
        self.position = Position()
        self._steps = 0
        self.stop = StopRequest()
        self.best_metric, self.best_epoch = -math.inf, -1
        # The threshold of the reported metrics: 0 while training when it is to be chosen
        # on validation at the end (threshold "auto" or "per-class").
        chosen_later = config.threshold in THRESHOLD_CHOICES
        self.threshold: float | np.ndarray | None = 0.0 if chosen_later else config.threshold
        self._saved_rng: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.rows: dict[str, Any] = {}  # how the data's rows were used (metrics.json)
        self.dynamics: list[dict[str, Any]] = []
        self.log = RunLog(
            self.out, tensorboard=config.tensorboard, echo=config.progress, enabled=context.is_main
        )

    # ---- set-up -------------------------------------------------------------------------

    def _set_up_network(self, model: MultiLabelNet) -> None:
        """``model`` on the device (channels-last if asked), and ``network``, the module
        trained: the model, wrapped for DDP when distributed, compiled if asked."""
        config = self.config
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.network: nn.Module = self.model
        if self.context.enabled:
            self.network = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if config.compile:
            self.network = torch.compile(self.network)

    def _set_up_loss(self) -> None:
        """The loss, as its registry entry says: its generator of sampled ranks, its hinge
        phase, and (``takes_epoch``) the epoch, set at each epoch's start."""
        config = self.config
        self.loss_entry = loss_entry(config.loss)
        self.loss_generator = torch.Generator(device=self.device)
        self.loss_fn = self.loss_entry.build(**config.loss_params)
        if self.loss_entry.sampled_ranks and self.loss_fn.generator is None:
            self.loss_fn.generator = self.loss_generator  # seeded per epoch: _seed_epoch
        if config.ramp_start is not None:  # the hinge for that fraction of the run's steps
            self.loss_fn.hinge_steps = round(config.ramp_start * self.total_steps())
        # Targets are validated once, when the data is loaded; per-step value checks would
        # make every CUDA step wait for the GPU.
        self.loss_fn.check_values = False

    def _set_up_relabeling(self) -> Relabeling | None:
        """The audited labels' state (``config.relabel``), or None when off."""
        config = self.config
        if config.relabel == "off":
            return None
        cutoff = config.relabel_cutoff
        if cutoff is None:  # the ramp's cap of the loss (the paper's for other losses)
            cutoff = 1.0 - getattr(self.loss_fn, "s", -0.8)
        shape = (len(self.data.labeled), self.data.targets.num_classes)
        return Relabeling(config.relabel, config.relabel_patience, cutoff, shape)

    def _set_up_optimizer(self) -> None:
        """SGD (no weight decay on biases and norm parameters) and the AMP gradient scaler."""
        config = self.config
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
        self.optimizer = torch.optim.SGD(
            [
                {"params": decay, "weight_decay": config.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
        )
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp or "")
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )

    def _check_propagation_settings(self) -> None:
        """Raise a ``ValueError`` if the propagation index's settings do not fit the number
        of labeled images."""
        n_labeled = len(self.data.labeled)
        try:
            index_settings(
                self.config.propagation_index, self.config.propagation_index_params, n_labeled
            )
        except ValueError as error:
            raise ValueError(
                f"propagation_index_params for {n_labeled} labeled images: {error}"
            ) from error

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
        """Whether labels are (re)propagated at the start of this epoch."""
        if not self.uses_unlabeled(epoch):
            return False
        return (epoch - self._first_refresh_epoch()) % self.config.refresh_every == 0

    def _sampler(self, epoch: int) -> ShardedSampler:
        unlabeled = self.data.unlabeled if self.uses_unlabeled(epoch) else None
        order = EpochOrder(
            self.data.labeled,
            unlabeled,
            self.config.unlabeled_ratio,
            seed=self.config.seed,
            shards=self._shard_of_positions(),
            readers=self.context.world_size,
        )
        local_batch = max(self.config.batch_size // self.context.world_size, 1)
        return ShardedSampler(order, self.context.rank, self.context.world_size, local_batch)

    def _shard_of_positions(self) -> torch.Tensor | None:
        """The shard each training position is read from, or None for images not in shards."""
        store = self.data.train.store
        if not isinstance(store, ShardStore):
            return None
        return torch.as_tensor(store.shards.members[:, 0])[self.data.train.rows]

    def _loader(self, dataset, sampler=None, batch_size=None, shuffle=False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size or max(self.config.batch_size // self.context.world_size, 1),
            sampler=sampler,
            shuffle=shuffle,
            num_workers=self._decoding_workers(dataset),
            pin_memory=self.device.type == "cuda",
            drop_last=False,
        )

    def _decoding_workers(self, dataset) -> int:
        """``num_workers``, or by default: none for images in memory, and for image files or
        shards one worker per core this process may use beside its own (at most 8)."""
        if self.config.num_workers is not None:
            return self.config.num_workers
        view = getattr(dataset, "dataset", dataset)  # a Subset's view
        if not isinstance(getattr(view, "store", None), FileStore | ShardStore):
            return 0
        processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        return max(1, min(8, (os.cpu_count() or 1) // processes_here - 1))

    def _evaluation_loader(self, view) -> DataLoader:
        batch = 2 * max(self.config.batch_size // self.context.world_size, 1)
        sampler = ShardedSampler(
            FixedOrder(len(view)), self.context.rank, self.context.world_size, batch
        )
        return self._loader(view, sampler=sampler, batch_size=batch)

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
                    raise _StopAfterStep
                self._train_epoch(self.position.epoch)
        except _StopAfterStep:
            if self.context.is_main:
                self.save_checkpoint(self.out / "last.pt")
            raise TrainingInterrupted(
                f"stopped in epoch {self.position.epoch + 1} after step "
                f"{self.position.step_in_epoch} (checkpoint saved); resume with "
                f"--resume --out {self.out}",
                self.stop.exit_code,
            ) from None

    def _stop_due(self, steps_this_epoch: int) -> bool:
        """Whether to stop after this step: one process polls its own flag every step;
        several agree (a collective) every few steps, all at the same ones."""
        if self.context.enabled and steps_this_epoch % _REPORT_EVERY:
            return False
        return self.stop.agreed(self.device)

    def _train_epoch(self, epoch: int) -> None:
        """Refresh propagated labels when due, train the epoch's steps, then validate, keep
        the best model, checkpoint and log."""
        relabel_seconds = self._relabel_if_due(epoch)
        refresh_seconds = self._refresh_if_due(epoch)
        record = self._train_steps(epoch)
        self.position = Position(epoch + 1, 0, self.position.global_step)
        record.update(
            refresh_seconds=refresh_seconds, unlabeled_in_use=int(self.uses_unlabeled(epoch))
        )
        if self.relabeling is not None:
            record["relabel_seconds"] = relabel_seconds
        if self.config.dynamics_every:
            record.update(self._training_fit())
            self.log.dynamics(self.dynamics)
        if self.data.validation is not None:
            record.update(self._select_model(epoch))
        if self.config.test_every_epoch and self.data.test is not None:  # a curve, not a choice
            record.update({f"test_{k}": v for k, v in self.evaluate(self.data.test).items()})
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
        scores, positions = self.predict_scores(
            torch.utils.data.Subset(self.data.train, labeled.tolist())
        )
        ordered = torch.empty_like(scores)
        ordered[positions] = scores
        given = self.data.targets.take(labeled).matrix  # the tags as given, never corrected
        threshold = self.threshold if isinstance(self.threshold, float | np.ndarray) else 0.0
        acted = self.relabeling.update(ordered.numpy(), given, threshold)
        targets, weights = self.relabeling.apply(given, acted)
        self.targets.set_rows(labeled, targets)
        self.sample_weights[labeled] = weights
        self.relabel_epoch = epoch
        action = "set aside" if self.config.relabel == "drop" else "relabeled"
        self.log.message(
            f"epoch {epoch + 1}: audited {len(labeled)} labeled images: {acted.nnz} tags of "
            f"{int((np.diff(acted.indptr) > 0).sum())} images {action}"
        )

    def _set_learning_rate(self, epoch: int, steps: int) -> None:
        """The schedule's rate at this step, for every parameter group."""
        config = self.config
        rate = learning_rate(
            config.lr,
            config.schedule,
            (epoch + self.position.step_in_epoch / steps) / config.epochs,
            self.position.global_step,
            config.milestones,
            config.gamma,
            config.warmup_steps,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = rate

    def _train_steps(self, epoch: int) -> dict[str, Any]:
        """The epoch's remaining SGD steps, with progress, step checkpoints and stop
        requests; returns the epoch's loss, rate and throughput."""
        config = self.config
        sampler = self._sampler(epoch)
        sampler.set_epoch(epoch, self.position.step_in_epoch)
        steps = self._steps = sampler.steps_per_epoch()
        # The loader draws a seed from the global generator when its iterator is made: make
        # it first, then seed (or restore) the epoch's random state.
        batches = iter(self._loader(self.data.train, sampler=sampler))
        self._seed_epoch(epoch)
        if self.loss_entry.takes_epoch:  # also when resuming in the epoch's middle
            self.loss_fn.set_epoch(epoch)
        self.network.train()
        bar = tqdm(
            batches,
            total=steps - self.position.step_in_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=None if config.progress and self.context.is_main else True,  # None: tty
            leave=False,
        )
        started, images_seen = time.perf_counter(), 0
        loss_sum, loss_count = torch.zeros((), device=self.device), 0
        for images, indices in bar:
            self._set_learning_rate(epoch, steps)
            loss_sum += self._step(images, indices)
            loss_count += 1
            self.position.step_in_epoch += 1
            self.position.global_step += 1
            images_seen += len(indices)
            if loss_count % _REPORT_EVERY == 0 or loss_count == 1:
                # The only host sync of the loop: every few steps, not every step.
                mean_loss = self._checked_mean_loss(loss_sum, loss_count)
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    loss=f"{mean_loss:.4g}", img_s=f"{images_seen / max(elapsed, 1e-9):.0f}"
                )
            every = config.checkpoint_every_steps
            if every and self.position.global_step % every == 0 and self.context.is_main:
                self.save_checkpoint(self.out / "last.pt")
            if self._stop_due(loss_count):
                raise _StopAfterStep
        mean_loss = self._checked_mean_loss(loss_sum, max(loss_count, 1))
        bar.close()
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch + 1,
            "train_loss": mean_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_second": images_seen * self.context.world_size / max(seconds, 1e-9),
            "seconds": seconds,
            "images": images_seen * self.context.world_size,
        }

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

    def _step(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """One SGD step; returns the batch loss as a 0-d tensor on the device (no sync)."""
        images = self.prepare(images.to(self.device, non_blocking=True), self.config.augment)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = self.targets[indices].to(self.device, non_blocking=True)
        weights = self.sample_weights[indices].to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.network(images)
        every = self.config.dynamics_every
        record = every and self.position.global_step % every == 0 and self.context.is_main
        ramp = self._ramp_parameters() if record else None
        loss = self.loss_fn(logits.float(), targets, weights)
        if ramp is not None:
            self._record_dynamics(logits, targets, loss, ramp)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _ramp_parameters(self) -> dict[str, float]:
        """The ramp this step uses: the loss's own ``s``, ``ramp_beta`` (0 during a hinge
        warm start) and ``kappa`` where it has them; the paper's for other losses."""
        return {
            "s": getattr(self.loss_fn, "s", -0.8),
            "beta": getattr(self.loss_fn, "current_beta", 1.0),
            "kappa": getattr(self.loss_fn, "kappa", 5.0),
        }

    def _record_dynamics(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        loss: torch.Tensor,
        ramp: dict[str, float],
    ) -> None:
        """Where this batch sits on the ramp, kept for ``dynamics.csv``."""
        record = {
            "step": self.position.global_step,
            "epoch": self.position.epoch + self.position.step_in_epoch / max(self._steps, 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "loss": float(loss.detach()),
            **ramp,
        }
        record.update(ramp_statistics(logits.detach().float(), targets > 0, **ramp))
        self.dynamics.append(record)

    def _training_fit(self) -> dict[str, float]:
        """mAP of the labeled training samples against their training labels
        (``fit_train_mAP``); where labels were corrupted, also against the clean ones
        (``fit_clean_mAP``), and on the corrupted samples alone against their corrupted
        labels (``fit_corrupted_mAP``: it rises when the network memorises the noise)."""
        labeled = self.data.labeled
        view = torch.utils.data.Subset(self.data.train, labeled.tolist())
        scores, positions = self.predict_scores(view)
        noisy = self.targets[labeled[positions]]

        def fit(rows: torch.Tensor, targets: torch.Tensor) -> float:
            return mean_average_precision(scores[rows], targets[rows])

        every = torch.ones(len(positions), dtype=torch.bool)
        result = {"fit_train_mAP": fit(every, noisy)}
        if self.data.clean_targets is not None:
            clean = self.data.clean_targets[positions]
            result["fit_clean_mAP"] = fit(every, clean)
            corrupted = (clean != noisy).any(dim=1)
            if corrupted.any():
                result["fit_corrupted_mAP"] = fit(corrupted, noisy)
        return result

    def _checked_mean_loss(self, loss_sum: torch.Tensor, count: int) -> float:
        """Mean of the losses so far; a non-finite value stops training with advice."""
        mean = float(loss_sum) / count
        if not math.isfinite(mean):
            raise FloatingPointError(
                f"loss became {mean} in epoch {self.position.epoch + 1} (by step "
                f"{self.position.step_in_epoch}); lower the learning rate (now "
                f"{self.optimizer.param_groups[0]['lr']:g})"
            )
        return mean

    def _autocast(self) -> torch.autocast:
        """Mixed precision (bf16 or fp16) when configured, else a no-op context."""
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def _seed_epoch(self, epoch: int) -> None:
        """Seed an epoch's randomness from (seed, epoch, rank), or, resuming in the middle of
        an epoch, restore the random states saved with the checkpoint: exact resumes."""
        if self.position.step_in_epoch > 0 and self._saved_rng is not None:
            torch.set_rng_state(self._saved_rng["torch"])
            self.loss_generator.set_state(self._saved_rng["loss"])
            self._saved_rng = None
            return
        offset = self.config.seed * 1_000_003 + epoch * 7919 + self.context.rank
        torch.manual_seed(offset)
        self.loss_generator.manual_seed(offset + 17)

    # ---- semi-supervised refresh --------------------------------------------------------

    @torch.no_grad()
    def _outputs(self, view, head: Callable[[torch.Tensor], torch.Tensor], gather: bool = True):
        """``head(images)`` of the images of a view, in evaluation mode: ``(rows (n, ...),
        indices (n,))``, gathered from every process and ordered by index, or (``gather``
        False) this process's shard only."""
        self.model.eval()
        rows, indices = [], []
        for images, index in self._evaluation_loader(view):
            images = self.prepare(images.to(self.device))
            with self._autocast():
                rows.append(head(images).float().cpu())
            indices.append(index)
        if rows:
            rows, indices = torch.cat(rows), torch.cat(indices)
        else:  # a shard with no images: still joins the gathering of the others
            rows, indices = torch.empty(0), torch.empty(0, dtype=torch.int64)
        return all_gather_rows(rows, indices) if gather else (rows, indices)

    def extract_features(self, view) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features ``(n, d)`` and indices ``(n,)`` of a view (see :meth:`_outputs`)."""
        return self._outputs(view, self.model.features)

    def refresh_labels(self, epoch: int) -> None:
        """Propagate labels to the unlabeled samples from the current network's features.

        Each process searches only its own shard of the unlabeled samples
        (``propagate_labels(..., shard_indices=...)``); the propagated labels and weights
        are then shared, so every process holds them all. With the exact search, each
        process also extracts only its own shard of the labeled samples' features
        (``labeled_shard_indices``): the shards are broadcast chunk by chunk, and memory per
        process is ``O((l + u) d / R)`` plus a chunk (about 64 MiB). An approximate index
        (``propagation_index`` ``"ivf"`` or ``"hnsw"``) needs the whole labeled set, so every
        process then gathers the labeled features: ``O(l d + (u / R) d)``. Either way the
        result is the single-process one (save float32 near-ties, see
        :func:`propagate_labels`); one process runs exactly as it did before sharding.
        """
        started = time.perf_counter()
        labeled, unlabeled = self.data.labeled, self.data.unlabeled
        labeled_view = torch.utils.data.Subset(self.data.train, labeled.tolist())
        unlabeled_view = torch.utils.data.Subset(self.data.train, unlabeled.tolist())
        index = search_index(self.config.propagation_index)
        shard_labeled = self.context.enabled and index.supports_sharded_labeled
        labeled_features, labeled_rows = self._outputs(
            labeled_view, self.model.features, gather=not shard_labeled
        )
        features, rows = self._outputs(unlabeled_view, self.model.features, gather=False)
        dim = self.model.feature_dim
        if labeled_features.numel() == 0:  # this process's labeled shard is empty
            labeled_features = labeled_features.new_empty(0, dim)
        if features.numel() == 0:  # this process's unlabeled shard is empty
            features = labeled_features.new_empty(0, dim)
        # The "labels" propagated are the labeled samples' own rows: each unlabeled sample
        # learns which row to copy, and the targets stay sparse (no dense (l, m) block).
        sharded = {"labeled_shard_indices": labeled_rows} if shard_labeled else {}
        result = propagate_labels(
            labeled_features,
            labeled_rows,
            features,
            t=self.config.t,
            progress=False,
            shard_indices=rows,
            index=self.config.propagation_index,
            index_params=self.config.propagation_index_params,
            **sharded,
        )
        shared = torch.stack([result.labels.double(), result.weights.double()], dim=1)
        shared, rows = all_gather_rows(shared, rows)
        self.targets.copy_rows(rows, shared[:, 0].long())
        self.sample_weights[rows] = shared[:, 1].float()
        self.propagation_epoch = epoch
        self.log.message(
            f"epoch {epoch + 1}: propagated labels to {len(unlabeled)} unlabeled images "
            f"(t={result.t:.4g}, mean weight {self.sample_weights[unlabeled].mean():.3f}) in "
            f"{time.perf_counter() - started:.1f}s"
        )

    # ---- evaluation ---------------------------------------------------------------------

    @property
    def selection_metric(self) -> str:
        return "accuracy" if self.data.single_label else "mAP"

    def predict_scores(self, view) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(n, m)`` and indices ``(n,)`` of a view (see :meth:`_outputs`)."""
        return self._outputs(view, self.model)

    def evaluate(self, split) -> dict[str, float]:
        """All of :mod:`rmlc.metrics` on a (view, targets) split."""
        view, targets = split
        scores, indices = self.predict_scores(view)
        meter = MultiLabelMeter(k=self.config.topk, threshold=self.threshold)
        for start in range(0, len(indices), _DENSE_TARGET_ROWS):  # bounded dense targets
            rows = slice(start, start + _DENSE_TARGET_ROWS)
            meter.update(scores[rows], targets[indices[rows]])
        metrics = meter.compute()
        if not self.data.single_label:  # a split of one-label rows of multi-label data
            metrics.pop("accuracy", None)
        return metrics

    # ---- checkpoints --------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "position": vars(self.position).copy(),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "dynamics": self.dynamics,
            "loss": self.loss_fn.state_dict(),
            "targets": self.targets.state_dict(),
            "sample_weights": self.sample_weights,
            "propagation_epoch": self.propagation_epoch,
            **self._relabel_state(),
            "rng": {"torch": torch.get_rng_state(), "loss": self.loss_generator.get_state()},
            "config": self.config.to_dict(),
            "backbone": self.model.name,
            "num_classes": self.model.num_classes,
            "class_names": list(self.data.class_names),
            "in_channels": self.data.in_channels,
            "normalization": self.data.normalization,
            "single_label": self.data.single_label,
        }

    def _relabel_state(self) -> dict[str, Any]:
        """The audited labels' consecutive flags, when on (checkpoints of runs without them
        are as before)."""
        if self.relabeling is None:
            return {}
        return {"relabel": self.relabeling.state_dict(), "relabel_epoch": self.relabel_epoch}

    def save_checkpoint(self, path: Path) -> None:
        atomic_save(self.state(), path)

    def resume(self, path: Path) -> None:
        """Restore everything from a checkpoint written by this trainer."""
        checkpoint = load_checkpoint(path)
        check_compatible(checkpoint, self.model.name, self.model.num_classes, path)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.position = Position(**checkpoint["position"])
        self.best_metric, self.best_epoch = checkpoint["best_metric"], checkpoint["best_epoch"]
        self.history = checkpoint["history"]
        self.dynamics = checkpoint.get("dynamics", [])
        if "loss" in checkpoint:  # checkpoints of older versions hold no loss state
            self.loss_fn.load_state_dict(checkpoint["loss"])
        self.targets = SparseTargets.from_state(checkpoint["targets"])
        self.sample_weights = checkpoint["sample_weights"]
        self.propagation_epoch = checkpoint["propagation_epoch"]
        if self.relabeling is not None and "relabel" in checkpoint:
            self.relabeling.load_state_dict(checkpoint["relabel"])
            self.relabel_epoch = checkpoint["relabel_epoch"]
        self._saved_rng = checkpoint["rng"]
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
        use them from now on, and store them in ``best.pt``."""
        view, targets = self.data.validation
        scores, indices = self.predict_scores(view)
        per_class = self.config.threshold == "per-class"
        self.threshold = choose_threshold(scores.numpy(), targets[indices].numpy(), per_class)
        chosen = self.threshold.tolist() if per_class else self.threshold
        if self.context.is_main and best_path.is_file():
            checkpoint = load_checkpoint(best_path)
            checkpoint["threshold"] = chosen
            atomic_save(checkpoint, best_path)
        barrier()
        return chosen
