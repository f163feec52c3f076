"""Temporal attention: shared 2-D frame features, learned positions and a small Transformer over time."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from emovid.models.frame_encoders import encode_frames, encoder_features, resnet18_encoder
from emovid.models.registry import register_model
from emovid.models.weights import PathLike


class TemporalAttention(nn.Module):
    """Frame features projected to ``embed_dim``, a CLS token, a pre-norm Transformer encoder over time.

    Args:
        encoder: a frame encoder (see :mod:`emovid.models.frame_encoders`).
        num_classes: size of the logits.
        embed_dim: token width inside the Transformer.
        num_layers: Transformer encoder layers.
        num_heads: attention heads; must divide ``embed_dim``.
        max_frames: longest clip the position table covers; shorter clips use its first rows.
        dropout: dropout inside the Transformer and before the classifier.
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        num_classes: int,
        embed_dim: int = 256,
        num_layers: int = 2,
        num_heads: int = 4,
        max_frames: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_spec = encoder.input_spec
        self.max_frames = max_frames
        self.project = nn.Linear(encoder_features(encoder), embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.positions = nn.Parameter(torch.zeros(1, max_frames + 1, embed_dim))  # row 0 is the CLS slot
        nn.init.trunc_normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, 4 * embed_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        # Pre-norm layers need a final norm; nested tensors only apply to post-norm layers.
        self.transformer = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, num_classes))

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W) with T <= max_frames."""
        b, t = clip.shape[:2]
        if t > self.max_frames:
            raise ValueError(f"clip has {t} frames; this model takes at most max_frames={self.max_frames}")
        tokens = self.project(encode_frames(self.encoder, clip))  # (B, T, D)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (B, 1 + T, D)
        tokens = tokens + self.positions[:, : t + 1]
        return self.head(self.transformer(tokens)[:, 0])  # classify the CLS token


@register_model("temporal-attention")
def temporal_attention(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    embed_dim: int = 256,
    num_layers: int = 2,
    num_heads: int = 4,
    max_frames: int = 64,
    freeze_backbone: bool = False,
    dropout: float = 0.1,
) -> TemporalAttention:
    """Temporal attention over an ImageNet ResNet-18 shared by all frames."""
    encoder = resnet18_encoder(pretrained=pretrained, weights_path=weights_path)
    return TemporalAttention(
        encoder.requires_grad_(not freeze_backbone),
        num_classes=num_classes,
        embed_dim=embed_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        max_frames=max_frames,
        dropout=dropout,
    )
