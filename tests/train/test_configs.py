"""Every shipped config is a valid TrainConfig, and the main job's config is the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmlc.train import TrainConfig, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_config_loads(path: Path) -> None:
    config = load_config(path)
    assert config.batch_size == 96 or "fashion" in path.stem


def test_main_job_config_matches_the_defaults() -> None:
    shipped = load_config(Path(__file__).parents[2] / "configs" / "fashion-mosaic-rmlc.yaml")
    default = TrainConfig()
    for key in (
        "dataset",
        "source",
        "backbone",
        "loss",
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "schedule",
        "width",
    ):
        assert getattr(shipped, key) == getattr(default, key), key


def test_full_scale_configs_follow_the_paper() -> None:
    folder = Path(__file__).parents[2] / "configs"
    for name in ("cifar10-ss-rmlc-resnet101", "stl10-ss-rmlc-resnet101"):
        config = load_config(folder / f"{name}.yaml")
        assert (config.backbone, config.lr, config.weight_decay) == ("resnet101", 1e-3, 5e-4)
        assert config.semi_supervised and config.refresh_every == 20
    for name in ("coco-rmlc-resnet101", "nus-wide-rmlc-resnet101"):
        config = load_config(folder / f"{name}.yaml")
        assert (config.lr, config.weight_decay, config.milestones) == (5e-5, 5e-5, [10000, 16000])


def test_recommended_rmlc_keeps_the_hinge_and_the_paper_starts_the_ramp_at_once() -> None:
    assert TrainConfig(loss="rmlc").ramp_start == 1.0  # the hinge throughout: the ramp off
    assert TrainConfig(loss="rmlc-paper").ramp_start is None
    assert TrainConfig(loss="warp").ramp_start is None
    assert TrainConfig(loss="rmlc", loss_params={"hinge_steps": 7}).ramp_start is None
    assert TrainConfig(loss="rmlc-paper", ramp_start=0.25).ramp_start == 0.25


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ramp_start": 1.5}, "ramp_start must lie in"),
        ({"ramp_start": 0.5, "loss_params": {"hinge_steps": 3}}, "not both"),
        (
            {"ramp_start": 0.5, "loss": "bce"},
            r"applies to the losses with a hinge warm start \('rmlc', 'rmlc-paper'\), not 'bce'",
        ),
        ({"dynamics_every": -1}, "dynamics_every must be >= 0"),
    ],
)
def test_bad_warm_start_settings_name_the_problem(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values)
