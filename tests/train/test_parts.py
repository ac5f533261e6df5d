"""The trainer's parts beside it: checkpoint contents, optimizer groups, split metrics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rmlc.metrics import MultiLabelMeter
from rmlc.train.checkpoint import CheckpointContents, CheckpointError
from rmlc.train.evaluation import split_metrics
from rmlc.train.optimization import parameter_groups
from rmlc.train.targets import SparseTargets

# The keys of a checkpoint as the trainer wrote them before CheckpointContents (relabeling off).
OLD_KEYS = {
    "model", "optimizer", "scaler", "position", "best_metric", "best_epoch", "history",
    "dynamics", "loss", "targets", "sample_weights", "propagation_epoch", "rng", "config",
    "backbone", "num_classes", "class_names", "in_channels", "normalization", "single_label",
}  # fmt: skip


def old_checkpoint(**changes) -> dict:
    payload = {key: f"<{key}>" for key in OLD_KEYS}
    payload.update(changes)
    return payload


def test_contents_write_the_same_keys_and_read_back_what_they_wrote() -> None:
    payload = old_checkpoint(threshold=0.3)
    contents = CheckpointContents.from_dict(payload)
    assert contents.extra == {"threshold": 0.3} and contents.relabel is None
    assert contents.to_dict() == payload  # the relabeling keys stay out when it is off
    with_relabel = CheckpointContents.from_dict(old_checkpoint(relabel={"a": 1}, relabel_epoch=2))
    assert with_relabel.to_dict()["relabel"] == {"a": 1}
    assert with_relabel.to_dict()["relabel_epoch"] == 2


def test_older_checkpoints_without_loss_or_dynamics_still_resume() -> None:
    payload = old_checkpoint()
    del payload["loss"], payload["dynamics"]
    contents = CheckpointContents.from_dict(payload)
    assert contents.loss is None and contents.dynamics == []


def test_a_checkpoint_missing_what_resuming_needs_is_refused_by_name() -> None:
    payload = old_checkpoint()
    del payload["rng"], payload["optimizer"]
    with pytest.raises(
        CheckpointError, match="run/last.pt cannot be resumed: it has no optimizer, rng"
    ):
        CheckpointContents.from_dict(payload, "run/last.pt")


def test_weights_decay_and_biases_and_norm_parameters_do_not() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = parameter_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    by_id = {id(p): name for name, p in model.named_parameters()}
    assert [by_id[id(p)] for p in decay["params"]] == ["0.weight", "3.weight"]
    assert [by_id[id(p)] for p in no_decay["params"]] == ["0.bias", "1.weight", "1.bias", "3.bias"]


@pytest.mark.parametrize("single_label", [False, True])
def test_split_metrics_equal_the_meter_on_the_rows_of_the_indices(single_label) -> None:
    generator = torch.Generator().manual_seed(0)
    n, m = 50, 6
    if single_label:
        dense = torch.nn.functional.one_hot(torch.randint(0, m, (n,), generator=generator), m)
    else:
        dense = (torch.rand(n, m, generator=generator) < 0.3).int()
        dense[:, 0] = 1  # every class has a positive somewhere
    targets = SparseTargets(dense.float().numpy())
    indices = torch.randperm(n, generator=generator)[:40]
    scores = torch.randn(40, m, generator=generator)
    meter = MultiLabelMeter(k=3, threshold=0.1)
    meter.update(scores, dense[indices])
    expected = meter.compute()
    if not single_label:
        expected.pop("accuracy", None)
    got = split_metrics(scores, indices, targets, 3, 0.1, single_label)
    assert got == expected and ("accuracy" in got) == single_label
