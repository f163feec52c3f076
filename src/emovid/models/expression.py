"""What every face-expression encoder of the zero-shot ensemble declares, so the ensemble can feed it."""

from __future__ import annotations

from torch import Tensor, nn

from emovid.faces.geometry import FaceGeometry


class ExpressionEncoder(nn.Module):
    """A face-expression classifier: float RGB faces (N, 3, S, S) in [0, 1] to class probabilities (N, K).

    Subclasses set the class attributes: the output ``classes`` in order, the face side ``input_size`` S, and
    the ``geometry`` its training data's face crops had.
    """

    classes: tuple[str, ...]
    input_size: int
    geometry: FaceGeometry

    def forward(self, faces: Tensor) -> Tensor:
        raise NotImplementedError
