"""What one experiment runs: :class:`ExperimentSpec`, read from ``specs/<name>.yaml``.

A spec holds a base training config, the methods compared (each a change of that config, or
a linear model on another method's features), optional variants (data subsets) and an
optional swept axis, the paper's numbers, the claims to check and the deviations from the
paper's protocol. :func:`load_spec` reads one and checks it whole: unknown keys, methods a
claim or a feature method names but the spec lacks, and the base config.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml

from rmlc.train import TrainConfig
from rmlc.train.config import DEFAULT_RAMP_START
from rmlc.train.curves import on_curve_grid

__all__ = [
    "EXPERIMENTS",
    "Axis",
    "Claim",
    "ExperimentSpec",
    "Method",
    "RunKey",
    "Variant",
    "load_spec",
]

EXPERIMENTS = (
    "table1",
    "table1-pretrained",
    "table2",
    "table2-pretrained",
    "table3",
    "table3-pretrained",
    "table4",
    "table4-pretrained",
    "fig3",
    "fig3-pretrained",
    "missing",
    "partial",
    "budget",
    "budget-pretrained",
    "budget-small",
    "remedies",
)
SPEC_FOLDER = Path(__file__).resolve().parent / "specs"  # package data: installed with rmlc


class RunKey(NamedTuple):
    """One run of an experiment: a variant, a value of the axis (``""`` without one, else
    its text), a seed and a method."""

    variant: str
    axis: str
    seed: int
    method: str


@dataclass(frozen=True)
class Method:
    """A method compared: a network trained with the base config changed by ``set``, or
    (``kind: features``) an ``RMLClassifier(**params)`` on the features of the network of
    method ``source``; ``tune_as`` takes another method's searched learning rate."""

    name: str
    set: dict[str, Any] = field(default_factory=dict)
    kind: Literal["network", "features"] = "network"
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tune_as: str | None = None

    @property
    def trains_a_network(self) -> bool:
        return self.kind == "network"


@dataclass(frozen=True)
class Variant:
    """A change of the base config for every method (e.g. a subset of the data)."""

    name: str
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Axis:
    """A swept config key: one run per value (``scale`` multiplies the values in reports)."""

    key: str
    values: list[float]
    label: str | None = None
    scale: float = 1.0
    plot_metrics: list[str] | None = None


@dataclass(frozen=True)
class Claim:
    """A claim to check on paired runs: ``better`` beats ``worse`` in ``metric``."""

    text: str
    better: str
    worse: str
    metric: str
    paper: str | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """What one experiment runs (see ``rmlc/experiments/specs/*.yaml``)."""

    name: str
    title: str
    metrics: list[str]
    seeds: int
    base: dict[str, Any]
    methods: list[Method]
    quick: dict[str, Any] = field(default_factory=dict)
    quick_seeds: int = 1
    variants: list[Variant] = field(default_factory=lambda: [Variant("")])
    axis: Axis | None = None
    quick_axis: list[float] | None = None
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    # {"factors": [...], "extend": n}: the learning-rate grid, grown up to n steps past an
    # edge that holds the best score (reproduction._grown_grid)
    tune: dict[str, Any] | None = None
    tune_from: str | None = None  # that experiment's rates (its search: our methods only)
    budgets: list[int] | None = None  # epochs read off each run's curve (budgets.py)
    quick_budgets: list[int] | None = None
    quick_variants: list[str] | None = None  # the variants --quick runs (default: all)
    quick_methods: list[str] | None = None  # the methods --quick trains (default: all)
    notes: str = ""
    path: Path | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any], path: Path | None = None) -> ExperimentSpec:
        """A spec from its YAML mapping; ``TypeError`` names an unknown or missing key."""
        values = dict(values)
        values["methods"] = [_build(Method, m, "method") for m in values.get("methods", [])]
        if "variants" in values:
            values["variants"] = [_build(Variant, v, "variant") for v in values["variants"]]
        if values.get("axis") is not None:
            values["axis"] = _build(Axis, values["axis"], "axis")
        values["claims"] = [_build(Claim, c, "claim") for c in values.get("claims", [])]
        spec = _build(cls, {**values, "path": path}, "spec")
        spec._check_names()
        spec._check_tune()
        spec._check_budgets()
        return spec

    def method(self, name: str) -> Method | None:
        """The method called ``name``, or None."""
        return next((m for m in self.methods if m.name == name), None)

    @property
    def trained(self) -> list[Method]:
        """The methods that train a network (not the fixed-feature ones)."""
        return [m for m in self.methods if m.trains_a_network]

    def _check_names(self) -> None:
        if not self.methods:
            raise TypeError("a spec needs methods")
        networks = {m.name for m in self.trained}  # what a source or a tune_as must name
        for method in self.methods:
            wanted = [method.source] if not method.trains_a_network else []
            wanted += [method.tune_as] if method.tune_as else []
            if method.kind not in ("network", "features"):
                raise TypeError(f"method {method.name!r}: kind must be 'network' or 'features'")
            for other in wanted:
                if other not in networks:
                    raise TypeError(
                        f"method {method.name!r} names {other!r}, not a method here that "
                        "trains a network"
                    )
            if method.tune_as and self.method(method.tune_as).tune_as:
                raise TypeError(
                    f"method {method.name!r}: tune_as names a method that tunes as another"
                )
        variants = {v.name for v in self.variants}
        for name in self.quick_variants or []:
            if name not in variants:
                raise TypeError(f"quick_variants names {name!r}, not a variant here")
        names = {m.name for m in self.methods}
        for name in self.quick_methods or []:
            if name not in names:
                raise TypeError(f"quick_methods names {name!r}, not a method here")
        for claim in self.claims:
            for other in (claim.better, claim.worse):
                if other not in names:
                    raise TypeError(f"claim {claim.text!r} names {other!r}, not a method here")

    def _check_tune(self) -> None:
        """``tune``: increasing positive ``factors``, ``extend`` >= 0 steps (a single factor
        has no ratio to grow by: it stays one rate)."""
        if self.tune is None:
            return
        if not isinstance(self.tune, dict) or set(self.tune) - {"factors", "extend"}:
            raise TypeError(f"tune takes factors and extend, got {self.tune!r}")
        factors = self.tune.get("factors")
        if (
            not isinstance(factors, list)
            or not factors
            or any(not isinstance(f, (int, float)) or isinstance(f, bool) for f in factors)
            or factors[0] <= 0
            or any(b <= a for a, b in itertools.pairwise(factors))
        ):
            raise TypeError(f"tune's factors must be increasing numbers > 0: {factors}")
        extend = self.tune.get("extend", 0)
        if not isinstance(extend, int) or isinstance(extend, bool) or extend < 0:
            raise TypeError(f"tune's extend must be a whole number of steps >= 0: {extend!r}")

    def _check_budgets(self) -> None:
        """Budgets are prefixes of one run: a constant rate, a curve of the test split, and
        warm starts counted in steps, not as a fraction of the run."""
        if self.budgets is None:
            return
        if not self.budgets or any(not isinstance(b, int) or b < 1 for b in self.budgets):
            raise TypeError(f"budgets must be positive epoch counts, got {self.budgets}")
        if self.base.get("epochs") != max(self.budgets):
            raise TypeError("with budgets, the base's epochs must be the largest budget")
        if self.base.get("schedule") != "fixed" or not self.base.get("test_every_epoch"):
            raise TypeError("budgets need schedule: fixed and test_every_epoch: true in the base")
        self._check_curve_every()
        for method in self.trained:
            values = {**self.base, **method.set}
            if "hinge_steps" in values.get("loss_params", {}):
                continue
            start = values.get("ramp_start", DEFAULT_RAMP_START.get(values.get("loss", "rmlc")))
            if start is not None and 0 < start < 1:
                raise TypeError(
                    f"method {method.name!r}: with budgets, give RMLC's warm start as "
                    "loss_params hinge_steps (ramp_start is a fraction of the run)"
                )

    def _check_curve_every(self) -> None:
        """Every budget (and, with ``quick``, every quick budget) falls on an epoch whose
        test curve and training fit are evaluated (``curve_every``), in every run: the
        base, each variant and each method may set ``curve_every``."""
        for quick, budgets in ((False, self.budgets), (True, self.quick_budgets)):
            for variant in self.variants:
                for method in self.trained:
                    values = {**self.base, **variant.set, **method.set}
                    if quick:
                        values.update(self.quick)
                    every = values.get("curve_every", 1)
                    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
                        raise TypeError(f"curve_every must be a positive integer, got {every!r}")
                    last = values.get("epochs")
                    skipped = [b for b in budgets or [] if not on_curve_grid(b, every, last)]
                    if skipped:
                        where = "quick budgets" if quick else "budgets"
                        raise TypeError(
                            f"{where} {skipped} of {variant.name!r}, {method.name!r} fall on "
                            f"epochs curve_every {every} skips: give multiples of it"
                        )


def _build(kind: type, values: Any, what: str):
    if not isinstance(values, dict):
        raise TypeError(f"a {what} must be a mapping, got {values!r}")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"{what} {values.get('name', '')!r}: unknown key(s) {unknown}")
    try:
        return kind(**values)
    except TypeError as error:
        raise TypeError(f"{what} {values.get('name', '')!r}: {error}") from None


def load_spec(name: str, folder: Path | None = None) -> ExperimentSpec:
    """The spec ``<folder>/<name>.yaml`` (the shipped specs by default), checked whole."""
    path = (folder or SPEC_FOLDER) / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"experiment spec not found: {path}")
    try:
        spec = ExperimentSpec.from_dict(yaml.safe_load(path.read_text()), path)
    except TypeError as error:
        raise ValueError(f"{path}: {error}") from None
    TrainConfig.from_dict(dict(spec.base), source=f"{path} (base)")  # validate early
    return spec
