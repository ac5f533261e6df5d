"""Training configuration: one plain dataclass, loadable from YAML, saved beside results.

The library takes a :class:`TrainConfig`, never an ``argparse.Namespace``; the command line
and YAML files only build one. Unknown keys are errors that suggest the closest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rmlc.checks import (
    BATCH_SIZE,
    EPOCHS,
    LEARNING_RATE,
    MOMENTUM,
    RAMP_START,
    SEED,
    WEIGHT_DECAY,
    Interval,
)
from rmlc.losses import LOSS_REGISTRY
from rmlc.losses.registry import registry_view
from rmlc.models import BACKBONES, is_backbone
from rmlc.propagation import check_temperature, index_settings, search_index
from rmlc.thresholds import THRESHOLD_CHOICES
from rmlc.train.schedule import SCHEDULES

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_RAMP_START",
    "EMPTY_LABELS",
    "SELECT_CHOICES",
    "TrainConfig",
    "load_config",
]

# Both read the losses' registry entries (rmlc.losses.registry), kept up to date with it:
# the learning rate of each loss when ``lr`` is not given (the ranking losses, whose
# gradients sum over pairs, take smaller steps), and the fraction of the run that a loss
# with a hinge warm start trains with the hinge by default (the recommended RMLC: 1,
# the whole run: the ramp off).
DEFAULT_LEARNING_RATES = registry_view("default_lr")
DEFAULT_RAMP_START = registry_view("ramp_start")
# What a training table's rows with an empty labels field are (``empty_labels``), and which
# epoch's network best.pt keeps (``select``).
EMPTY_LABELS = ("unlabeled", "skip", "error")
UNKNOWN_TAGS = ("ignore", "negative")  # what an unknown tag is to the losses
SELECT_CHOICES = ("best", "last")


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Data: ``dataset`` names a built-in set (``fashion-mosaic``, ``fashion-mnist``,
    ``cifar10``, ``stl10``, ``coco``, ``nus-wide``) or ``tags`` for users' data
    (``train``, ``test``, ``unlabeled``: each a tags table with ``image_root``, or a folder
    of WebDataset shards written by ``rmlc shard``, :mod:`rmlc.data.shards`).
    ``num_labeled`` keeps that many training samples labeled (class-stratified for
    single-label sets); ``classes`` keeps only those classes labeled and in the test set,
    their other images joining the unlabeled pool (the STL-10 situation); ``max_unlabeled``
    caps the unlabeled pool; ``subsample`` keeps a class-frequency-preserving fraction of
    a multi-label training set (the paper's 10% and 20% subsets); ``label_noise`` and
    ``missing_labels`` corrupt the labeled training samples (the paper's protocol;
    positives dropped). Partial labels: ``hide_tags`` makes each known tag of the labeled
    training samples unknown with that probability, ``single_positive`` keeps one positive
    tag per sample and nothing verified absent (:mod:`rmlc.data.hiding`); a tags table with
    a ``negatives`` column has unknown tags of its own. ``unknown_tags``: ``"ignore"`` (the
    losses and the metrics use only known entries) or ``"negative"`` (an unknown tag is
    read as absent: what rmlc did before negatives existed). ``fill_unknown`` (off by
    default): at each label refresh, an unknown tag of a labeled image takes the value of
    the nearest other labeled image that knows that tag, where the heat-kernel confidence
    is at least ``fill_unknown_confidence`` (:mod:`rmlc.train.fill`). ``bad_images``: an unreadable,
    truncated, empty or missing image file of a tags table is an error naming it
    (``"raise"``) or is left out with a warning counting them (``"skip"``); files are
    checked before training starts (shards were checked when ``rmlc shard`` wrote them).
    ``image_size``: the side image files are resized to; by default the images' own size
    for ``small-cnn`` (at most 128) and 224 for the ResNets.
    ``image_cache``: a folder where decoded, resized images are kept in memory-mapped arrays
    (:mod:`rmlc.train.image_cache`): each file is decoded once, on the first epoch, and again
    only when it changes (its size or modification time). ``empty_labels``: what a training
    table's row with an empty labels field is: ``"unlabeled"`` (an unlabeled image, trained
    on by semi-supervised runs and not used by supervised ones: what rmlc did before this
    key existed), ``"skip"`` (left out, counted) or ``"error"`` (refused, naming the lines);
    by default (None) ``"unlabeled"`` for ``semi_supervised`` runs and ``"error"`` otherwise
    (:mod:`rmlc.train.accounting`).

    Evaluation: a label is predicted when it is among an image's ``topk`` and its score is at
    least ``threshold``: a number (0 by default), ``"auto"`` (one threshold, chosen after
    training on the validation split to maximise the overall F1) or ``"per-class"`` (one per
    class, each maximising its F1); the choice is stored in the checkpoint and used by
    ``rmlc predict`` and ``rmlc evaluate``. ``select``: the epoch whose network ``best.pt``
    keeps and the test metrics are measured on: ``"best"`` on the validation split (mAP;
    accuracy for single-label data) or ``"last"``.

    Run: ``num_workers`` decoding processes; by default none for images in memory and, for
    image files, one per core beside the training process (at most 8). ``progress`` bars
    are drawn only when the output is a terminal. ``out`` must not hold another run's files
    (:mod:`rmlc.train.run_folder`) unless ``resume`` (continue it) or ``overwrite``
    (remove its run files first). ``tensorboard``: also write TensorBoard scalars; by
    default (None) when the ``tensorboard`` package is installed.

    Loss: ``loss`` names an entry of :data:`rmlc.losses.LOSS_REGISTRY` (``rmlc``, the
    recommended RMLC; ``rmlc-paper``, ``warp``, ``bce``, ``softmax``, ``asl``, ``gce``,
    ``llr``), whose entry gives the default ``lr``. ``ramp_start`` is the fraction of the
    run's steps that a loss with a hinge warm start (the RMLC losses) trains with the hinge
    before the ramp's cap is switched on (sets ``RMLCLoss.hinge_steps``); by default the
    entry's: 1 for ``rmlc`` (the hinge throughout, the ramp off: what the evidence favours;
    0.5 was the default before issue 25) and none for ``rmlc-paper``.

    Semi-supervised: ``propagation_index`` is the nearest-labeled-neighbour search of the
    label refresh: ``"exact"`` (default), or an approximate FAISS index, ``"ivf"`` or
    ``"hnsw"``, for labeled sets of a million images and more, with its settings in
    ``propagation_index_params`` (e.g. ``{nprobe: 32}``; see
    :func:`rmlc.propagation.index_settings`).

    Audited labels (beyond the paper, :mod:`rmlc.train.relabel`): ``relabel`` ``"drop"``
    or ``"predict"`` audits the labeled training samples' given tags every
    ``relabel_every`` epochs (:func:`rmlc.audit.tag_disagreement`); an entry flagged
    (disagreement at least ``relabel_cutoff``, by default the ramp's cap ``1 - s``) by
    ``relabel_patience`` consecutive audits sets its sample aside (``"drop"``: weight 0) or
    takes the network's label (``"predict"``) until an audit no longer flags it. ``"off"``
    (default): training as without it.

    Diagnostics: ``dynamics_every`` > 0 records, every that many steps, where the batch sits
    on the ramp and each loss term's gradient norm (:func:`rmlc.losses.dynamics.
    ramp_statistics`) into ``dynamics.csv``, and after each epoch the training set's fit
    (mAP) to its training labels and, when they were corrupted, to the clean ones.
    ``test_every_epoch`` evaluates the test split after every epoch too (``test_mAP`` ...
    in ``log.csv``): the curve of a run, for studies of training length; it is never used
    to choose anything. ``curve_every`` > 1 thins both curves (the test split's and the
    training fit's) to every that many epochs, the first and the last, and every epoch the
    validation split selects (so every early-stopping pick of a shorter run is scored);
    the other epochs' values are NaN in ``log.csv``. Training is unchanged.
    """

    # data
    dataset: str = "fashion-mosaic"
    source: str = "embedded"
    data_root: str | None = None
    train: str | None = None
    test: str | None = None
    unlabeled: str | None = None
    image_root: str | None = None
    image_size: int | None = None
    image_cache: str | None = None
    num_labeled: int | None = None
    classes: list[int] | None = None
    max_unlabeled: int | None = None
    subsample: float | None = None
    label_noise: float = 0.0
    missing_labels: float = 0.0
    hide_tags: float = 0.0
    single_positive: bool = False
    unknown_tags: str = "ignore"
    fill_unknown: bool = False
    fill_unknown_confidence: float = 0.0
    validation_fraction: float = 0.1
    bad_images: str = "raise"
    empty_labels: str | None = None
    # model
    backbone: str = "small-cnn"
    pretrained: bool = False
    weights: str | None = None
    small_input: bool = False
    width: int = 16
    norm: str = "batch"
    # loss
    loss: str = "rmlc"
    loss_params: dict[str, Any] = field(default_factory=dict)
    ramp_start: float | None = None
    # optimisation
    epochs: int = 5
    batch_size: int = 96
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_steps: int = 0
    augment: bool = True
    # semi-supervised (SS-RML-CNN)
    semi_supervised: bool = False
    warmup_epochs: int = 2
    refresh_every: int = 20
    t: str | float = "mean"
    propagation_index: str = "exact"
    propagation_index_params: dict[str, int] = field(default_factory=dict)
    unlabeled_ratio: float | None = None
    # audited labels while training (beyond the paper; rmlc.train.relabel)
    relabel: str = "off"
    relabel_every: int = 5
    relabel_patience: int = 2
    relabel_cutoff: float | None = None
    # evaluation
    topk: int = 3
    threshold: float | str | None = 0.0
    select: str = "best"
    # runtime
    seed: int = 0
    device: str = "auto"
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    num_workers: int | None = None
    out: str = "runs/rmlc"
    resume: bool = False
    overwrite: bool = False
    init_checkpoint: str | None = None
    checkpoint_every_steps: int = 0
    dist_timeout: float = 600.0
    tensorboard: bool | None = None
    progress: bool = True
    dynamics_every: int = 0
    test_every_epoch: bool = False
    curve_every: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Fill loss-dependent defaults; raise a ``ValueError`` naming a bad parameter."""
        self._fill_loss_defaults()
        self._check_model_and_loss()
        self._check_optimisation()
        self._check_data()
        self._check_phases_and_evaluation()
        self._check_runtime()
        self._check_label_propagation()
        self._check_relabel()
        self._check_fill_unknown()

    def _fill_loss_defaults(self) -> None:
        """The learning rate and ramp start of the loss, where not given."""
        entry = LOSS_REGISTRY.get(self.loss)
        if entry is None:  # refused by _check_model_and_loss
            return
        if self.lr is None:
            self.lr = entry.default_lr
        explicit_steps = "hinge_steps" in self.loss_params
        if self.ramp_start is None and not explicit_steps:
            self.ramp_start = entry.ramp_start

    def _check_model_and_loss(self) -> None:
        """The backbone, the loss, the schedule and the ramp's start."""
        _require(
            is_backbone(self.backbone),
            f"backbone must be one of {BACKBONES} or timm:NAME, got {self.backbone!r}",
        )
        _require(
            self.loss in LOSS_REGISTRY,
            f"loss must be one of {tuple(LOSS_REGISTRY)}, got {self.loss!r}",
        )
        _require(
            self.schedule in SCHEDULES,
            f"schedule must be one of {SCHEDULES}, got {self.schedule!r}",
        )
        if self.ramp_start is not None:
            _require_in(self.ramp_start, RAMP_START, "ramp_start")
        _require(
            self.ramp_start is None or "hinge_steps" not in self.loss_params,
            "give ramp_start (a fraction of the run) or loss_params hinge_steps, not both",
        )
        warm_starts = tuple(name for name, entry in LOSS_REGISTRY.items() if entry.warm_start)
        _require(
            self.ramp_start is None or LOSS_REGISTRY[self.loss].warm_start,
            f"ramp_start applies to the losses with a hinge warm start {warm_starts}, "
            f"not {self.loss!r}",
        )

    def _check_optimisation(self) -> None:
        """Epochs, batch size, learning rate, momentum and weight decay."""
        _require_in(self.epochs, EPOCHS, "epochs")
        _require_in(self.batch_size, BATCH_SIZE, "batch_size")
        _require_in(self.lr, LEARNING_RATE, "lr")
        _require_in(self.momentum, MOMENTUM, "momentum")
        _require_in(self.weight_decay, WEIGHT_DECAY, "weight_decay")
        _require_in(self.seed, SEED, "seed")

    def _check_data(self) -> None:
        """The validation split and the corruption of the training labels."""
        _require(
            0 <= self.validation_fraction < 1,
            f"validation_fraction must lie in [0, 1), got {self.validation_fraction}",
        )
        _require(
            0 <= self.label_noise <= 1, f"label_noise must lie in [0, 1], got {self.label_noise}"
        )
        _require(
            0 <= self.missing_labels <= 1,
            f"missing_labels must lie in [0, 1], got {self.missing_labels}",
        )
        _require(0 <= self.hide_tags <= 1, f"hide_tags must lie in [0, 1], got {self.hide_tags}")
        _require(
            not (self.single_positive and self.hide_tags > 0),
            "hide_tags and single_positive are two settings of partial labels: choose one",
        )
        _require(
            self.unknown_tags in UNKNOWN_TAGS,
            f"unknown_tags must be one of {UNKNOWN_TAGS}, got {self.unknown_tags!r}",
        )
        _require(
            self.empty_labels is None or self.empty_labels in EMPTY_LABELS,
            f"empty_labels must be one of {EMPTY_LABELS} or null, got {self.empty_labels!r}",
        )
        _require(
            self.select in SELECT_CHOICES,
            f"select must be one of {SELECT_CHOICES}, got {self.select!r}",
        )

    def _check_phases_and_evaluation(self) -> None:
        """The semi-supervised phases, mixed precision, and how labels are predicted."""
        _require(self.refresh_every >= 1, f"refresh_every must be >= 1, got {self.refresh_every}")
        _require(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _require(
            self.amp in (None, "bf16", "fp16"),
            f"amp must be null, 'bf16' or 'fp16', got {self.amp!r}",
        )
        _require(self.topk >= 1, f"topk must be >= 1, got {self.topk}")
        _require(
            self.threshold is None
            or self.threshold in THRESHOLD_CHOICES
            or (isinstance(self.threshold, int | float) and not isinstance(self.threshold, bool)),
            f"threshold must be a number, 'auto', 'per-class' or null, got {self.threshold!r}",
        )
        _require(
            self.threshold not in THRESHOLD_CHOICES or self.validation_fraction > 0,
            f"threshold {self.threshold!r} is chosen on the validation split: "
            "validation_fraction must be > 0",
        )

    def _check_runtime(self) -> None:
        """Workers, unreadable images, checkpoints, diagnostics and the distributed timeout."""
        _require(
            self.num_workers is None or self.num_workers >= 0,
            f"num_workers must be >= 0 or None (by the CPU count), got {self.num_workers}",
        )
        _require(
            self.bad_images in ("raise", "skip"),
            f"bad_images must be 'raise' or 'skip', got {self.bad_images!r}",
        )
        _require(
            self.checkpoint_every_steps >= 0,
            f"checkpoint_every_steps must be >= 0, got {self.checkpoint_every_steps}",
        )
        _require(
            self.dynamics_every >= 0, f"dynamics_every must be >= 0, got {self.dynamics_every}"
        )
        _require(self.curve_every >= 1, f"curve_every must be >= 1, got {self.curve_every}")
        _require(self.dist_timeout > 0, f"dist_timeout must be > 0, got {self.dist_timeout}")
        _require(
            not (self.resume and self.overwrite),
            "resume continues the run in out, overwrite replaces it: give one, not both",
        )

    def _check_label_propagation(self) -> None:
        """The label refresh's temperature ``t`` and its nearest-neighbour index."""
        try:
            check_temperature(self.t)  # propagation's own check: refused here, not at a refresh
        except ValueError as error:
            raise ValueError(f"config: {error}") from None
        try:
            index_settings(self.propagation_index, self.propagation_index_params)
        except ValueError as error:
            raise ValueError(
                f"config: propagation_index / propagation_index_params: {error}"
            ) from None
        _require(
            not search_index(self.propagation_index).needs_faiss
            or not self.semi_supervised
            or importlib.util.find_spec("faiss") is not None,
            f"propagation_index {self.propagation_index!r} needs the faiss package: "
            "pip install faiss-cpu (or rmlc[faiss])",
        )

    def _check_relabel(self) -> None:
        """The audited labels' mode, period, patience and cutoff."""
        _require(
            self.relabel in ("off", "drop", "predict"),
            f"relabel must be 'off', 'drop' or 'predict', got {self.relabel!r}",
        )
        _require(self.relabel_every >= 1, f"relabel_every must be >= 1, got {self.relabel_every}")
        _require(
            self.relabel_patience >= 1,
            f"relabel_patience must be >= 1, got {self.relabel_patience}",
        )
        _require(
            self.relabel_cutoff is None
            or (math.isfinite(self.relabel_cutoff) and self.relabel_cutoff >= 0),
            f"relabel_cutoff must be a number >= 0 or null, got {self.relabel_cutoff}",
        )

    def _check_fill_unknown(self) -> None:
        """Filling unknown tags (:mod:`rmlc.train.fill`): only where tags can be unknown
        and verified absent."""
        _require(
            0 <= self.fill_unknown_confidence <= 1,
            f"fill_unknown_confidence must lie in [0, 1], got {self.fill_unknown_confidence}",
        )
        _require(
            self.fill_unknown or self.fill_unknown_confidence == 0,
            "fill_unknown_confidence applies only with fill_unknown on",
        )
        if not self.fill_unknown:
            return
        _require(
            self.unknown_tags != "negative",
            "fill_unknown fills unknown tags, but unknown_tags 'negative' reads every unknown "
            "tag as absent (none is left to fill): give one, not both",
        )
        _require(
            not self.single_positive,
            "fill_unknown needs verified negatives, and single_positive keeps none (every "
            "tag filled would be positive): give one, not both",
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys raise a ``ValueError`` with a suggestion."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{source}: unknown key {key!r}{hint}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _require(ok: bool, message: str) -> None:
    """Raise a ``ValueError`` with ``message`` (prefixed ``config:``) unless ``ok``."""
    if not ok:
        raise ValueError(f"config: {message}")


def _require_in(value: object, constraint: Interval, name: str) -> None:
    """Raise a ``ValueError`` (``config: NAME must ..., got VALUE``) unless ``constraint``,
    a declaration of :mod:`rmlc.checks` shared with the other entry points, accepts
    ``value``."""
    _require(constraint.accepts(value), f"{name} must {constraint.condition}, got {value!r}")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config and apply overrides (e.g. from the command line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of keys to values")
    values.update(overrides or {})
    return TrainConfig.from_dict(values, source=str(path))
