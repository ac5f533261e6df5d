"""timm backbones (``backbone="timm:NAME"``): built, loaded from a local file, trained."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from rmlc.models import build_model
from rmlc.train import TrainConfig

# Checked, not imported: importing timm (and torchvision) at collection costs every worker
# seconds; the tests that build a timm backbone import it when they run.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("timm") is None, reason="timm is not installed"
)

NAME = "mobilenetv3_small_050"  # small and fast on a CPU


def test_a_timm_backbone_gives_features_and_scores() -> None:
    model = build_model(f"timm:{NAME}", num_classes=5, in_channels=1)
    images = torch.randn(2, 1, 64, 64)
    assert model(images).shape == (2, 5)
    assert model.features(images).shape == (2, model.feature_dim)
    assert model.name == f"timm:{NAME}"


def test_unknown_timm_names_are_named_with_suggestions() -> None:
    with pytest.raises(ValueError, match="timm has no model 'mobilenetv3_small_05'; did you mean"):
        build_model("timm:mobilenetv3_small_05", num_classes=3)
    with pytest.raises(ValueError, match="backbone must be one of"):
        TrainConfig(backbone="timm:")


def test_local_timm_weights_load_without_their_classifier(tmp_path) -> None:
    """A timm state dict (with its own 1000-way head) loads into the backbone; the head is
    left out and rmlc's classifier kept."""
    import timm

    source = timm.create_model(NAME, pretrained=False, num_classes=1000, in_chans=3)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    model = build_model(f"timm:{NAME}", num_classes=4, weights=tmp_path / "weights.pth")
    source.reset_classifier(0)
    source.eval(), model.eval()
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(model.features(images), source(images))


def test_training_with_a_timm_backbone(tmp_path) -> None:
    """A run through the trainer, on 24 training and 8 test images: a timm network trains,
    is evaluated, saved and loaded as any other."""
    from rmlc.train import run
    from tests.train.conftest import tiny_config, write_mosaic_table

    tables = {
        "root": tmp_path,
        "train": write_mosaic_table(tmp_path, "train", 24, seed=1),
        "test": write_mosaic_table(tmp_path, "test", 8, seed=3),
    }
    config = tiny_config(tables, tmp_path / "run", backbone=f"timm:{NAME}", epochs=1)
    metrics = run(config)
    assert 0.0 <= metrics["mAP"] <= 100.0
    from rmlc.inference import load_trained_model

    assert load_trained_model(tmp_path / "run" / "best.pt").model.name == f"timm:{NAME}"
