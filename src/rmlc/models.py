"""Networks: torchvision ResNets and a small CNN, each an m-way linear classifier on features.

Every model is a :class:`MultiLabelNet`: a ``backbone`` mapping images ``(N, C, H, W)`` to
features ``(N, d)`` (the penultimate layer) and a linear ``classifier`` to ``(N, m)``
scores; ``features(x)`` is what label propagation and CNN+RMLC use. ResNets come from
torchvision, with ImageNet weights through torchvision's weights API when they can be
downloaded, or from a local weights file (a torchvision ResNet state dict, or an rmlc
checkpoint, e.g. a network pretrained by us).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from rmlc.torch_files import safe_load

__all__ = [
    "BACKBONES",
    "TIMM_PREFIX",
    "MultiLabelNet",
    "SmallCNN",
    "build_model",
    "is_backbone",
    "load_backbone_weights",
    "shipped_weights",
]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
BACKBONES = (*RESNETS, "small-cnn")
TIMM_PREFIX = "timm:"  # backbone "timm:NAME": any timm model (optional extra rmlc[timm])


def _norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


class SmallCNN(nn.Module):
    """A small VGG-style CNN for 28 to 64 px images, for CPU work.

    Three stages of two 3x3 convolutions (``width``, ``2 width``, ``4 width`` channels)
    with normalisation and ReLU, 2x2 max pooling between stages, global average pooling.

    Args:
        in_channels: image channels.
        width: channels of the first stage.
        norm: ``"batch"``, ``"group"`` or ``"none"``.

    Shapes:
        ``(N, in_channels, H, W) -> (N, 4 width)``.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            if stage:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, out_channels, 3, padding=1, bias=norm == "none"),
                    _norm_layer(norm, out_channels),
                    nn.ReLU(inplace=True),
                ]
                channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class MultiLabelNet(nn.Module):
    """A backbone and an m-way linear classifier.

    Args:
        backbone: module mapping ``(N, C, H, W)`` images to ``(N, d)`` features.
        feature_dim: ``d``.
        num_classes: ``m``.
        name: the backbone's name (saved in checkpoints, checked on load).
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, name: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.name = name
        self.num_classes = num_classes
        self.feature_dim = feature_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features, ``(N, d)``."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, m)``."""
        return self.classifier(self.backbone(images))


def is_backbone(name: str) -> bool:
    """Whether ``name`` names a backbone: one of ``BACKBONES`` or ``timm:NAME``."""
    return name in BACKBONES or (name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX))


@contextlib.contextmanager
def _downloading_weights(what: str, pretrained: bool) -> Iterator[None]:
    """Where building ``what`` with ``pretrained`` weights fails (hub unreachable, cache
    missing ...), say how to go on offline."""
    try:
        yield
    except Exception as error:
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not get the pretrained weights of {what} ({type(error).__name__}: "
            f"{error}). Download them where there is internet, or pass a local weights file "
            "with --weights PATH."
        ) from error


def _timm_backbone(name: str, in_channels: int, pretrained: bool) -> tuple[nn.Module, int]:
    """A timm model without its classifier (``num_classes=0``: pooled features)."""
    try:
        import timm
    except ImportError:
        raise ImportError(
            f"backbone {TIMM_PREFIX}{name} needs timm: pip install 'rmlc[timm]'"
        ) from None
    if name not in timm.list_models():
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ValueError(
            f"timm has no model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
        )
    with _downloading_weights(f"timm model {name}", pretrained):
        network = timm.create_model(
            name, pretrained=pretrained, num_classes=0, in_chans=in_channels
        )
    # Models with a head of their own before the classifier (MobileNetV3's) pool into more
    # features than the trunk's num_features; timm names that size head_hidden_size.
    return network, getattr(network, "head_hidden_size", None) or network.num_features


def _resnet_backbone(
    name: str, in_channels: int, small_input: bool, pretrained: bool
) -> tuple[nn.Module, int]:
    import torchvision  # here: importing it costs seconds (torch._dynamo) that small CNNs skip

    weights = "DEFAULT" if pretrained else None
    with _downloading_weights(f"{name} (torchvision)", pretrained):
        network = torchvision.models.get_model(name, weights=weights)
    if small_input:  # CIFAR-style stem: 3x3 stride-1 convolution, no max pooling
        network.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        network.maxpool = nn.Identity()
    elif in_channels != 3:
        old = network.conv1
        network.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        if pretrained:  # grayscale: sum the RGB filters
            with torch.no_grad():
                network.conv1.weight.copy_(
                    old.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
                )
    feature_dim = network.fc.in_features
    network.fc = nn.Identity()
    return network, feature_dim


def build_model(
    backbone: str,
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    weights: str | Path | None = None,
    small_input: bool = False,
    width: int = 16,
    norm: str = "batch",
) -> MultiLabelNet:
    """Make a network by backbone name.

    Args:
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``,
            ``"small-cnn"``, or ``"timm:NAME"`` for any timm model (``pip install
            'rmlc[timm]'``; its pooled features, without its classifier).
        num_classes: number of labels ``m``.
        in_channels: image channels (1 for grayscale).
        pretrained: ImageNet weights through torchvision (needs internet or a cache); for
            the small CNN, rmlc's own self-supervised weights (:mod:`rmlc.pretrain`, shipped
            for grayscale images at widths 8 and 16), which saw no task's labels.
        weights: a local weights file for the backbone (see :func:`load_backbone_weights`).
        small_input: for ResNets on 32-64 px images, a 3x3 stem without max pooling.
        width: channels of the small CNN's first layer.
        norm: the small CNN's normalisation layers.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if backbone in RESNETS:
        network, feature_dim = _resnet_backbone(backbone, in_channels, small_input, pretrained)
    elif backbone == "small-cnn":
        network = SmallCNN(in_channels, width, norm)
        feature_dim = network.out_features
        if pretrained and weights is None:  # the rotation-pretrained stand-in, shipped
            if in_channels != 1:
                raise ValueError("the shipped small-cnn weights are for grayscale images")
            weights = shipped_weights(width, norm)
    elif backbone.startswith(TIMM_PREFIX):
        network, feature_dim = _timm_backbone(
            backbone.removeprefix(TIMM_PREFIX), in_channels, pretrained
        )
    else:
        raise ValueError(
            f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)} or "
            f"{TIMM_PREFIX}NAME (a timm model)"
        )
    model = MultiLabelNet(network, feature_dim, num_classes, backbone)
    if weights is not None:
        load_backbone_weights(model, weights)
    return model


def load_backbone_weights(model: MultiLabelNet, path: str | Path) -> None:
    """Load backbone weights from a file into ``model`` (the classifier is kept).

    Accepts an rmlc checkpoint (``{"model": state_dict, "backbone": name, ...}``), a plain
    state dict of a :class:`MultiLabelNet`, or a torchvision ResNet state dict (``fc.*``
    ignored). Raises a ``ValueError`` naming the file when the weights belong to another
    backbone or do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = safe_load(path, "weights file")  # tensors and plain data only: runs no code
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        if state.get("backbone") not in (None, model.name):
            raise ValueError(
                f"{path} holds weights of backbone {state.get('backbone')!r}, not {model.name!r}"
            )
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    head = getattr(model.backbone, "pretrained_cfg", {}).get("classifier")  # timm's head
    heads = ("classifier.", "fc.", *((f"{head}.",) if isinstance(head, str) else ()))
    backbone_state = {
        key.removeprefix("backbone."): value
        for key, value in state.items()
        if not key.startswith(heads)
    }
    try:
        result = model.backbone.load_state_dict(backbone_state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"weights in {path} do not fit backbone {model.name!r}: {error}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"weights in {path} do not fit backbone {model.name!r}: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def shipped_weights(width: int, norm: str = "batch") -> Path:
    """The rotation-pretrained small CNN shipped with rmlc for this width.

    Raises:
        ValueError: no weights are shipped for that width and norm (make them with
            ``rmlc pretrain --width W --out FILE`` and pass ``--weights FILE``).
    """
    name = f"small-cnn-w{width}-{norm}-rotation.pt"
    path = Path(str(resources.files("rmlc") / "data" / "embedded" / name))
    if not path.is_file():
        raise ValueError(
            f"no pretrained small-cnn of width {width} (norm {norm!r}) is shipped; make one "
            f"with `rmlc pretrain --width {width} --out weights.pt` and pass --weights"
        )
    return path
