"""What a face detector returns, and the interface every detector follows.

A detector takes uint8 RGB frames (H, W, C) and gives, per frame, the faces it found in the frame's
pixels. Detectors with landmarks give five points (left eye, right eye, nose, left and right mouth corner,
"left" as seen in the image); the others give None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


class Face(NamedTuple):
    """One detected face.

    Attributes:
        box: x0, y0, x1, y1 in the frame's pixels.
        score: the detector's confidence in [0, 1].
        landmarks: float32 (5, 2) x, y of the eyes, nose tip and mouth corners, or None.
    """

    box: Box
    score: float
    landmarks: np.ndarray | None = None


class FaceDetector(Protocol):
    """Finds faces in a batch of frames."""

    name: str

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each uint8 RGB (H, W, C) frame, in that frame's pixels; an empty list where none."""
        ...
