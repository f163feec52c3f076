"""Per-frame 2-D feature extractors shared by the late-fusion, CNN-LSTM and temporal-attention models.

A frame encoder is any module mapping frames (N, C, H, W) to features (N, out_features) that has two
attributes: ``out_features`` (int) and ``input_spec`` (the normalisation its weights expect). The
temporal models take one in their constructor, so another image backbone can replace ResNet-18.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import ResNet, ResNet18_Weights, resnet18

from emovid.models.weights import InputSpec, PathLike, input_spec_of, load_backbone_weights


class ResNetFrameEncoder(nn.Module):
    """A torchvision ResNet without its classifier: frames (N, C, H, W) to pooled features (N, 512)."""

    def __init__(self, resnet: ResNet, input_spec: InputSpec) -> None:
        super().__init__()
        self.out_features: int = resnet.fc.in_features
        self.input_spec = input_spec
        resnet.fc = nn.Identity()
        self.resnet = resnet

    def forward(self, frames: Tensor) -> Tensor:
        return self.resnet(frames)


def resnet18_encoder(*, pretrained: bool, weights_path: PathLike | None) -> ResNetFrameEncoder:
    """ResNet-18 frame encoder, optionally with ImageNet weights (downloaded or from a local file)."""
    weights = ResNet18_Weights.IMAGENET1K_V1
    resnet = resnet18()
    load_backbone_weights(resnet, weights, pretrained=pretrained, weights_path=weights_path)
    return ResNetFrameEncoder(resnet, input_spec_of(weights))


def encoder_features(encoder: nn.Module) -> int:
    """A frame encoder's feature width, its ``out_features``."""
    width = encoder.out_features
    if not isinstance(width, int):
        raise TypeError(f"{type(encoder).__name__}.out_features must be an int, got {type(width).__name__}")
    return width


def encode_frames(encoder: nn.Module, clip: Tensor) -> Tensor:
    """Run ``encoder`` on every frame of a clip (B, T, C, H, W) and return features (B, T, F)."""
    b, t = clip.shape[:2]
    features = encoder(clip.flatten(0, 1))  # (B*T, F): time folded into the batch
    return features.unflatten(0, (b, t))
