"""Early fusion: the T frames of a clip stacked as 3*T channels of one image for a 2-D CNN.

Channels are frame-major, ``[frame 0 RGB, frame 1 RGB, ...]``, so these models need the clip length
(``num_frames``) when built and accept only that T.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torchvision.models import ResNet, ResNet18_Weights, resnet18

from emovid.models.registry import register_model
from emovid.models.weights import InputSpec, PathLike, input_spec_of, load_backbone_weights

Conv1Init = Literal["random", "inflate"]


def _stack_frames(clip: Tensor, num_frames: int) -> Tensor:
    """Clip (B, T, C, H, W) to an image (B, T*C, H, W), checking T."""
    if clip.shape[1] != num_frames:
        raise ValueError(
            f"early-fusion model built for num_frames={num_frames} got a clip of {clip.shape[1]}"
        )
    return clip.flatten(1, 2)


class EarlyFusionCNN(nn.Module):
    """The study's from-scratch CNN: four conv stages (64, 128, 256, 512), global pooling, an MLP head.

    Every stage halves the resolution, and the first also max-pools, so a 224 input is 7x7 at the end.

    Args:
        num_frames: clip length T; the first conv takes 3*T channels.
        num_classes: size of the logits.
        dropout: dropout probability between the two linear layers.
    """

    def __init__(self, *, num_frames: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_frames = num_frames
        # Trained from scratch; ImageNet statistics keep one preprocessing for every 2-D model.
        self.input_spec = input_spec_of(ResNet18_Weights.IMAGENET1K_V1)
        widths = (64, 128, 256, 512)
        stages: list[nn.Module] = [
            *_conv_bn_relu(3 * num_frames, widths[0], kernel_size=7),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        for c_in, c_out in pairwise(widths):
            stages += _conv_bn_relu(c_in, c_out, kernel_size=3)
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(widths[-1], 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W) with T == num_frames."""
        return self.head(self.features(_stack_frames(clip, self.num_frames)))  # features: (B, 512)


def _conv_bn_relu(c_in: int, c_out: int, *, kernel_size: int) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel_size, stride=2, padding=kernel_size // 2, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class EarlyFusionResNet(nn.Module):
    """A torchvision ResNet whose conv1 takes 3*T channels; built by :func:`early_fusion_resnet18`."""

    def __init__(self, resnet: ResNet, *, num_frames: int, input_spec: InputSpec) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.input_spec = input_spec
        self.resnet = resnet

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W) with T == num_frames."""
        return self.resnet(_stack_frames(clip, self.num_frames))


def widen_conv1(conv1: nn.Conv2d, num_frames: int, init: Conv1Init) -> nn.Conv2d:
    """A copy of an RGB stem conv that takes ``num_frames`` stacked frames (3*T channels).

    Args:
        conv1: the stem conv, weights (out, 3, k, k).
        num_frames: clip length T.
        init: ``"random"`` re-initialises like torchvision's ResNet; ``"inflate"`` repeats the RGB
            weights for every frame and divides by T, so a clip of T identical frames gives the
            original conv's response to one frame.
    """
    wide = nn.Conv2d(
        conv1.in_channels * num_frames,
        conv1.out_channels,
        cast(tuple[int, int], conv1.kernel_size),
        cast(tuple[int, int], conv1.stride),
        cast("str | tuple[int, int]", conv1.padding),
        bias=False,
    )
    if init == "inflate":
        with torch.no_grad():
            # (out, 3, k, k) -> (out, 3*T, k, k), frame-major like the stacked input
            wide.weight.copy_(conv1.weight.repeat(1, num_frames, 1, 1) / num_frames)
    elif init == "random":
        nn.init.kaiming_normal_(wide.weight, mode="fan_out", nonlinearity="relu")
    else:
        raise ValueError(f"conv1_init must be 'random' or 'inflate', got {init!r}")
    return wide


@register_model("early-fusion-cnn")
def early_fusion_cnn(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    num_frames: int,
    dropout: float = 0.5,
) -> EarlyFusionCNN:
    """The study's early-fusion CNN, trained from scratch (no pretrained weights exist)."""
    if pretrained or weights_path is not None:
        raise ValueError("early-fusion-cnn is trained from scratch and has no pretrained weights")
    return EarlyFusionCNN(num_frames=num_frames, num_classes=num_classes, dropout=dropout)


@register_model("early-fusion-resnet18")
def early_fusion_resnet18(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    num_frames: int,
    conv1_init: Conv1Init = "random",
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> EarlyFusionResNet:
    """ImageNet ResNet-18 with a new 3*T-channel conv1 and a new classifier.

    ``freeze_backbone`` freezes the pretrained layers; the new conv1 and classifier stay trainable.
    """
    weights = ResNet18_Weights.IMAGENET1K_V1
    resnet = resnet18()
    load_backbone_weights(resnet, weights, pretrained=pretrained, weights_path=weights_path)
    resnet.requires_grad_(not freeze_backbone)
    # New modules replace the old ones after freezing, so they are trainable either way.
    resnet.conv1 = widen_conv1(resnet.conv1, num_frames, conv1_init)
    resnet.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(resnet.fc.in_features, num_classes))
    return EarlyFusionResNet(resnet, num_frames=num_frames, input_spec=input_spec_of(weights))
