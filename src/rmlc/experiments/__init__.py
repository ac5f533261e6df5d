"""Re-testing the paper's tables and figures on the data this machine reaches.

Each experiment is a YAML file in ``rmlc/experiments/specs/`` (package data, installed with
rmlc), read into an :class:`~rmlc.experiments.spec.ExperimentSpec`;
:func:`~rmlc.experiments.reproduction.reproduce` runs it and writes its report
(:mod:`rmlc.experiments.report`) from its runs file (:mod:`rmlc.experiments.runs`).
"""

from rmlc.experiments.reproduction import reproduce
from rmlc.experiments.spec import EXPERIMENTS, ExperimentSpec, load_spec

__all__ = ["EXPERIMENTS", "ExperimentSpec", "load_spec", "reproduce"]
