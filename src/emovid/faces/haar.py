"""OpenCV's frontal-face Haar cascade, the detector emovid's face crop uses, behind the FaceDetector protocol.

The cascade ships inside opencv-python-headless, so nothing is downloaded. It gives boxes only: no score and
no landmarks.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np

from emovid.faces.detection import Box, Face

DETECT_WIDTH = 320  # frames are detected at this width: fast; faces under ~1/8 of the frame height get missed
# The cascade's square box is 1.06 face boxes (MTCNN's, by the square root of its area) around the same centre,
# the median over 200 real frames where both found the face (benchmarks/bench_detectors.py). Haar's boxes are
# shrunk by it so that face geometries mean the same whichever detector found the face.
HAAR_BOX_SCALE = 1.06


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, bundled with opencv-python-headless, on grey images.

    Args:
        scale_factor: step between the detection scales; smaller finds more faces, slower.
        min_neighbors: overlapping hits a detection needs; higher means fewer false positives.
        min_size: smallest face looked for, as a fraction of the image's short side.
    """

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 4, min_size: float = 0.1) -> None:
        self.cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")  # type: ignore[attr-defined]  # not in stubs
        if self.cascade.empty():
            raise RuntimeError("OpenCV's bundled Haar cascade could not be loaded; reinstall opencv-python-headless")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self._lock = threading.Lock()  # one cascade object is not safe to run from two threads (emovid serve)

    def __call__(self, grey: np.ndarray) -> list[Box]:
        side = max(1, round(min(grey.shape[:2]) * self.min_size))
        # No histogram equalisation: it cost a tenth of the LFW faces in an earlier benchmark.
        with self._lock:
            found = self.cascade.detectMultiScale(grey, self.scale_factor, self.min_neighbors, minSize=(side, side))
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]


def grey_at_width(frame: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """An RGB (H, W, C) frame scaled to ``width`` and made grey (H', width), and the scale applied."""
    scale = width / frame.shape[1]
    size = (width, max(1, round(frame.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(frame, size, interpolation=interpolation), cv2.COLOR_RGB2GRAY), scale


class HaarDetector:
    """The Haar cascade as a :class:`~emovid.faces.detection.FaceDetector`: score 1.0, no landmarks.

    Frames are scaled to ``detect_width`` (up or down, as the face crop does) and boxes mapped back.

    Args:
        detect_width: width the cascade runs at.
        cascade: the cascade and its settings.
        box_scale: the cascade's box side in face boxes; boxes are shrunk by it about their centre.
    """

    name = "haar"

    def __init__(self, detect_width: int = DETECT_WIDTH, cascade: HaarFaceDetector | None = None,
                 box_scale: float = HAAR_BOX_SCALE) -> None:
        self.detect_width = detect_width
        self.cascade = cascade or HaarFaceDetector()
        self.box_scale = box_scale

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each uint8 RGB (H, W, C) frame, in that frame's pixels, largest first."""
        found = []
        for frame in frames:
            grey, scale = grey_at_width(frame, self.detect_width)
            boxes = sorted(self.cascade(grey), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
            found.append([Face(self._to_frame(box, scale), 1.0) for box in boxes])
        return found

    def _to_frame(self, box: Box, scale: float) -> Box:
        """A box at the detection size to the frame's pixels, shrunk to a face box about its centre."""
        x0, y0, x1, y1 = box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 / self.box_scale
        return (cx - half) / scale, (cy - half) / scale, (cx + half) / scale, (cy + half) / scale
