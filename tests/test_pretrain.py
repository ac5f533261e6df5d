"""The offline pretrained stand-in: rotation pretraining, its files, and --pretrained."""

from __future__ import annotations

import pytest
import torch

from rmlc.data import load_embedded_fashion_mnist
from rmlc.models import build_model
from rmlc.pretrain import rotate_batch, rotation_pretrain, save_pretrained, shipped_weights


def test_rotate_batch_turns_every_image_four_ways() -> None:
    images = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    turned, labels = rotate_batch(images)
    assert turned.shape == (8, 1, 3, 3)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    torch.testing.assert_close(turned[:2], images)
    torch.testing.assert_close(turned[2], torch.rot90(images[0], 1, dims=(-2, -1)))
    torch.testing.assert_close(turned[6].rot90(1, dims=(-2, -1)), images[0])  # 3 + 1 turns


def test_rotation_pretraining_learns_and_saves_loadable_backbone_weights(tmp_path) -> None:
    images, _ = load_embedded_fashion_mnist("train")
    network, info = rotation_pretrain(
        images[:384], width=4, epochs=3, batch_size=32, lr=0.05, seed=0
    )
    assert info["task"].startswith("rotation") and info["images"] == 384
    # The pretext task is learned well above chance (25%) on held-out images.
    held_out = torch.as_tensor(images[2000:2256]).unsqueeze(1).float().div(255)
    mean = torch.tensor(info["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(info["normalization"]["std"]).view(1, -1, 1, 1)
    turned, labels = rotate_batch((held_out - mean) / std)
    with torch.no_grad():
        accuracy = (network(turned).argmax(dim=1) == labels).float().mean().item()
    assert accuracy > 0.4
    path = save_pretrained(network, info, tmp_path / "w.pt")
    model = build_model("small-cnn", num_classes=10, in_channels=1, width=4, weights=path)
    for key, value in network.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
    with pytest.raises(ValueError, match="do not fit"):
        build_model("small-cnn", num_classes=10, in_channels=1, width=8, weights=path)


@pytest.mark.parametrize("width", [8, 16])
def test_shipped_weights_load_with_pretrained(width: int) -> None:
    model = build_model("small-cnn", num_classes=10, in_channels=1, width=width, pretrained=True)
    fresh = build_model("small-cnn", num_classes=10, in_channels=1, width=width)
    shipped = torch.load(shipped_weights(width), map_location="cpu", weights_only=True)
    assert shipped["pretraining"]["task"].startswith("rotation")
    key = "layers.0.weight"
    loaded = model.backbone.state_dict()[key]
    torch.testing.assert_close(loaded, shipped["model"][f"backbone.{key}"])
    assert not torch.equal(model.backbone.state_dict()[key], fresh.backbone.state_dict()[key])


def test_unshipped_width_names_the_command_that_makes_it() -> None:
    with pytest.raises(ValueError, match="rmlc pretrain --width 5"):
        build_model("small-cnn", num_classes=3, in_channels=1, width=5, pretrained=True)
