"""Late fusion: one shared 2-D encoder on every frame, features averaged over time, a linear classifier."""

from __future__ import annotations

from torch import Tensor, nn

from emovid.models.frame_encoders import encode_frames, encoder_features, resnet18_encoder
from emovid.models.registry import register_model
from emovid.models.weights import PathLike


class LateFusion(nn.Module):
    """Average of per-frame features, then a linear layer; blind to frame order by design.

    Args:
        encoder: a frame encoder (see :mod:`emovid.models.frame_encoders`).
        num_classes: size of the logits.
        dropout: dropout probability before the classifier.
    """

    def __init__(self, encoder: nn.Module, *, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_spec = encoder.input_spec
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder_features(encoder), num_classes))

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W)."""
        features = encode_frames(self.encoder, clip)  # (B, T, F)
        return self.head(features.mean(dim=1))

    frame_pooling = "logits"  # the head is linear (dropout is off in eval mode): a clip's logits are its frames' mean

    def frame_scores(self, frames: Tensor) -> Tensor:
        """Logits (N, num_classes) of single frames (N, C, H, W), so that a timeline scores each frame once."""
        return self.head(self.encoder(frames))


@register_model("late-fusion-resnet18")
def late_fusion_resnet18(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> LateFusion:
    """Late fusion over an ImageNet ResNet-18 shared by all frames."""
    encoder = resnet18_encoder(pretrained=pretrained, weights_path=weights_path)
    return LateFusion(encoder.requires_grad_(not freeze_backbone), num_classes=num_classes, dropout=dropout)
