"""The one table of losses: each entry point reads what it needs to know about a loss here.

A loss is its class (a :class:`~rmlc.losses.MultiLabelLoss`) and one :class:`LossEntry`.
:func:`build_loss` and ``LOSSES`` make it by name; :class:`~rmlc.train.TrainConfig` takes
its default learning rate and hinge warm start; the trainer gives it a seeded generator,
sets its warm start and tells it the epoch; :class:`~rmlc.linear.RMLClassifier` passes it
its settings; ``rmlc train --loss`` and ``rmlc fit-features --loss`` list the names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rmlc.checks import LEARNING_RATE, ParameterError, check
from rmlc.checks import RAMP_START as RAMP_START_RANGE
from rmlc.losses.base import MultiLabelLoss
from rmlc.losses.baselines import (
    AsymmetricLoss,
    BCELoss,
    GeneralizedCrossEntropy,
    LargeLossRejection,
    SoftmaxLoss,
)
from rmlc.losses.ranking import RAMP_START, RMLCLoss, WARPLoss

__all__ = [
    "ESTIMATOR_SETTINGS",
    "LOSSES",
    "LOSS_REGISTRY",
    "LossEntry",
    "build_loss",
    "loss_entry",
    "register_loss",
    "registry_view",
    "unregister_loss",
]

# The loss settings of RMLClassifier, which an entry may take (by these parameter names).
ESTIMATOR_SETTINGS = ("s", "kappa", "rank")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class LossEntry:
    """What the entry points need to know about one loss.

    Attributes:
        name: its name for ``--loss``, ``TrainConfig.loss``, :func:`build_loss` and
            ``RMLClassifier(loss=...)``: lower case, digits, ``-``, ``_`` or ``.``.
        factory: makes the loss from keyword parameters (the class, or a classmethod such
            as :meth:`RMLCLoss.paper <rmlc.losses.RMLCLoss.paper>`).
        default_lr: the learning rate of ``rmlc train`` when ``lr`` is not given (> 0).
        summary: one line: what the loss is.
        warm_start: the loss has a hinge warm start (an attribute ``hinge_steps``: an integer,
            or None for the hinge throughout, and ``ramp_pending``, as
            :class:`~rmlc.losses.RMLCLoss`), so that ``TrainConfig.ramp_start`` applies to it.
        ramp_start: the fraction of the run trained with the hinge when ``ramp_start`` is
            not given (``rmlc train``, and ``RMLClassifier`` over ``max_epochs``); None: no
            warm start unless asked. Needs ``warm_start``.
        sampled_ranks: the loss draws ranks from a ``generator`` attribute (None by
            default); the trainer gives it one seeded from (seed, epoch, rank), the
            estimator one seeded from ``random_state``.
        takes_epoch: the loss has ``set_epoch(epoch)``; the trainer and the estimator call
            it at the start of each epoch, 0-based.
        on_features: ``RMLClassifier`` may fit with it.
        estimator_settings: which of ``RMLClassifier``'s ``s``, ``kappa`` and ``rank`` the
            loss takes (as parameters of the same names).
    """

    name: str
    factory: Callable[..., MultiLabelLoss]
    default_lr: float
    summary: str = ""
    warm_start: bool = False
    ramp_start: float | None = None
    sampled_ranks: bool = False
    takes_epoch: bool = False
    on_features: bool = True
    estimator_settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ParameterError(
                f"name must be lower-case letters, digits, '-', '_' or '.'; got {self.name!r}"
            )
        if not callable(self.factory):
            raise ParameterError(f"factory must be callable; got {self.factory!r}")
        if not LEARNING_RATE.accepts(self.default_lr):
            raise ParameterError(f"default_lr must be a number > 0; got {self.default_lr!r}")
        if self.ramp_start is not None:
            if not self.warm_start:
                raise ParameterError(
                    f"ramp_start {self.ramp_start!r} needs warm_start=True (a hinge_steps)"
                )
            check(self.ramp_start, RAMP_START_RANGE, "ramp_start")
        unknown = set(self.estimator_settings) - set(ESTIMATOR_SETTINGS)
        if unknown:
            raise ParameterError(
                f"estimator_settings must be among {ESTIMATOR_SETTINGS}; got {sorted(unknown)}"
            )

    def build(self, **params: Any) -> MultiLabelLoss:
        """The loss with these parameters (see :func:`build_loss` for the errors)."""
        try:
            return self.factory(**params)
        except ParameterError:  # a parameter it takes, with a wrong value: its own message
            raise
        except TypeError as error:
            raise ValueError(
                f"loss {self.name!r} does not take parameters {sorted(params)}: {error}"
            ) from None


_ENTRIES: dict[str, LossEntry] = {}
LOSS_REGISTRY: Mapping[str, LossEntry] = MappingProxyType(_ENTRIES)
"""Every loss by name (a read-only view; change it with :func:`register_loss`)."""


def register_loss(entry: LossEntry, *, replace: bool = False) -> LossEntry:
    """Add a loss to the registry; every entry point knows it from then on.

    Raises:
        ValueError: a loss of that name exists (unless ``replace``).
    """
    if not isinstance(entry, LossEntry):
        raise TypeError(f"entry must be a LossEntry, got {type(entry).__name__}")
    if entry.name in _ENTRIES and not replace:
        raise ValueError(f"a loss named {entry.name!r} is registered already")
    _ENTRIES[entry.name] = entry
    return entry


def unregister_loss(name: str) -> LossEntry:
    """Remove a loss from the registry and return its entry (``KeyError`` if unknown)."""
    return _ENTRIES.pop(name)


def loss_entry(name: str) -> LossEntry:
    """The entry of a loss by name (case-insensitive).

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _ENTRIES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(_ENTRIES)}")
    return _ENTRIES[key]


def build_loss(name: str, **params: Any) -> MultiLabelLoss:
    """Make a loss by name: ``rmlc``, ``rmlc-paper``, ``warp``, ``bce``, ``softmax``,
    ``asl``, ``gce``, ``llr``, or any registered since.

    ``rmlc`` is :class:`~rmlc.losses.RMLCLoss` at its defaults (the recommended
    configuration); ``rmlc-paper`` is :meth:`RMLCLoss.paper <rmlc.losses.RMLCLoss.paper>`,
    the loss exactly as the paper states it.

    Raises:
        ValueError: unknown name, or a parameter the loss does not take.
    """
    return loss_entry(name).build(**params)


class _EntryField(Mapping[str, Any]):
    """A live, read-only ``name -> entry.<field>`` view of the registry, skipping None."""

    def __init__(self, field: str) -> None:
        self._field = field

    def _present(self) -> dict[str, Any]:
        values = {name: getattr(entry, self._field) for name, entry in _ENTRIES.items()}
        return {name: value for name, value in values.items() if value is not None}

    def __getitem__(self, name: str) -> Any:
        return self._present()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())

    def __repr__(self) -> str:
        return repr(self._present())


def registry_view(field: str) -> Mapping[str, Any]:
    """``name -> the entry's field`` for every loss whose field is not None, kept up to
    date with the registry (``registry_view("default_lr")``)."""
    if field not in LossEntry.__dataclass_fields__:
        raise ValueError(f"LossEntry has no field {field!r}")
    return _EntryField(field)


LOSSES: Mapping[str, Callable[..., MultiLabelLoss]] = registry_view("factory")
"""``name -> factory`` of every registered loss (a live, read-only view)."""

_RANKING = ("s", "kappa", "rank")
for _entry in (
    LossEntry(
        "rmlc",
        RMLCLoss,
        0.006,  # chosen by Table 3's search on its validation split (results/table3-tuning.json)
        "RMLC, recommended: balanced margin term, the hinge throughout (--ramp-start < 1: "
        "the ramp after that fraction of the run)",
        warm_start=True,
        ramp_start=RAMP_START,
        sampled_ranks=True,
        estimator_settings=_RANKING,
    ),
    LossEntry(
        "rmlc-paper",
        RMLCLoss.paper,
        0.002,
        "RMLC exactly as the paper states it (RMLCLoss.paper())",
        warm_start=True,
        sampled_ranks=True,
        estimator_settings=_RANKING,
    ),
    # The ranking losses sum over (positive, negative) pairs: gradients an order of
    # magnitude larger than the per-label losses', hence smaller steps.
    LossEntry(
        "warp",
        WARPLoss,
        0.002,
        "WARP: ranking term with the hinge",
        sampled_ranks=True,
        estimator_settings=("rank",),
    ),
    LossEntry("bce", BCELoss, 0.05, "binary cross-entropy, summed over labels"),
    LossEntry("softmax", SoftmaxLoss, 0.05, "softmax cross-entropy on normalised targets"),
    LossEntry("asl", AsymmetricLoss, 0.05, "asymmetric loss (Ridnik et al. 2021)"),
    LossEntry(
        "gce", GeneralizedCrossEntropy, 0.05, "generalized cross-entropy per label (q = 0.7)"
    ),
    LossEntry(
        "llr",
        LargeLossRejection,
        0.05,
        "BCE rejecting the largest-loss negatives, more each epoch (Kim et al. 2022)",
        takes_epoch=True,
    ),
):
    register_loss(_entry)
del _entry
