"""CNN-LSTM: shared 2-D frame features read in order by an LSTM; its last hidden state is classified."""

from __future__ import annotations

from torch import Tensor, nn

from emovid.models.frame_encoders import encode_frames, encoder_features, resnet18_encoder
from emovid.models.registry import register_model
from emovid.models.weights import PathLike


class CnnLstm(nn.Module):
    """Frame encoder, LSTM over time, linear classifier on the last layer's final hidden state.

    Args:
        encoder: a frame encoder (see :mod:`emovid.models.frame_encoders`).
        num_classes: size of the logits.
        hidden_size: LSTM hidden size per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also read the clip backwards; the two final states are concatenated.
        dropout: dropout probability before the classifier.
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        num_classes: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_spec = encoder.input_spec
        self.lstm = nn.LSTM(
            encoder_features(encoder), hidden_size, num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.directions = 2 if bidirectional else 1
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size * self.directions, num_classes))

    def forward(self, clip: Tensor) -> Tensor:
        """Logits (B, num_classes) for a clip (B, T, C, H, W)."""
        features = encode_frames(self.encoder, clip)  # (B, T, F)
        _, (h_n, _) = self.lstm(features)  # h_n: (num_layers * directions, B, hidden), last layer last
        last = h_n[-self.directions :].transpose(0, 1).flatten(1)  # (B, directions * hidden), forward first
        return self.head(last)


@register_model("cnn-lstm")
def cnn_lstm(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    hidden_size: int = 256,
    num_layers: int = 1,
    bidirectional: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> CnnLstm:
    """CNN-LSTM over an ImageNet ResNet-18 shared by all frames."""
    encoder = resnet18_encoder(pretrained=pretrained, weights_path=weights_path)
    return CnnLstm(
        encoder.requires_grad_(not freeze_backbone),
        num_classes=num_classes,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
    )
