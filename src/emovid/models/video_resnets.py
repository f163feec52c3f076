"""3-D video ResNets from torchvision (R3D-18, R(2+1)D-18, MC3-18) with Kinetics-400 weights."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models import WeightsEnum
from torchvision.models import video as tv

from emovid.models.registry import register_model
from emovid.models.weights import InputSpec, PathLike, input_spec_of, load_backbone_weights


class VideoResNetClassifier(nn.Module):
    """A torchvision video ResNet behind emovid's (B, T, C, H, W) clip layout."""

    def __init__(self, net: tv.VideoResNet, input_spec: InputSpec) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.net = net

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W)."""
        # The only layout change in emovid's models: torchvision's 3-D convs want (B, C, T, H, W).
        return self.net(clip.permute(0, 2, 1, 3, 4))


def _build(
    arch: Callable[[], tv.VideoResNet],
    weights: WeightsEnum,
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool,
    dropout: float,
) -> VideoResNetClassifier:
    net = arch()
    load_backbone_weights(net, weights, pretrained=pretrained, weights_path=weights_path)
    net.requires_grad_(not freeze_backbone)
    # Replaced after freezing, so the new classifier is trainable either way.
    net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(net.fc.in_features, num_classes))
    return VideoResNetClassifier(net, input_spec_of(weights))


@register_model("r3d18")
def r3d18(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> VideoResNetClassifier:
    """R3D-18 (full 3-D convolutions) with a new classifier."""
    return _build(
        tv.r3d_18,
        tv.R3D_18_Weights.KINETICS400_V1,
        num_classes=num_classes,
        pretrained=pretrained,
        weights_path=weights_path,
        freeze_backbone=freeze_backbone,
        dropout=dropout,
    )


@register_model("r2plus1d18")
def r2plus1d18(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> VideoResNetClassifier:
    """R(2+1)D-18 (3-D convolutions split into spatial and temporal) with a new classifier."""
    return _build(
        tv.r2plus1d_18,
        tv.R2Plus1D_18_Weights.KINETICS400_V1,
        num_classes=num_classes,
        pretrained=pretrained,
        weights_path=weights_path,
        freeze_backbone=freeze_backbone,
        dropout=dropout,
    )


@register_model("mc3-18")
def mc3_18(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> VideoResNetClassifier:
    """MC3-18 (3-D convolutions in the first block only, 2-D after) with a new classifier."""
    return _build(
        tv.mc3_18,
        tv.MC3_18_Weights.KINETICS400_V1,
        num_classes=num_classes,
        pretrained=pretrained,
        weights_path=weights_path,
        freeze_backbone=freeze_backbone,
        dropout=dropout,
    )
