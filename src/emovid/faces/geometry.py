"""Face geometry: where, relative to a detected face, an encoder's input crop lies, and how to cut it.

An expression encoder only works on faces framed the way its training data framed them: FER2013's faces
fill their 48x48 images, face-api.js crops its detector's box, and so on. :class:`FaceGeometry` states that
framing in one detector-independent unit, the **face box** (MTCNN's box convention: brows to chin, ear to
ear; other detectors' boxes are converted to it), so it can travel with the encoder's weights, in
checkpoints and ONNX metadata, and every detector gives the same crop.

The crop is a square (or ``aspect``-wide rectangle) of ``scale`` face-box sides, centred ``shift_y``
face-box sides below the box's centre and, with ``align``, turned so the eyes are level. An encoder trained on
faces warped onto a landmark ``template`` (ArcFace-style 5-point alignment) gets exactly that warp when the
detector gives landmarks; ``scale`` and ``shift_y`` then say where the template's square lies on average, which
frames it without landmarks and places it inside a wider crop (:meth:`FaceGeometry.within`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from emovid.faces.detection import Face

LEFT_EYE, RIGHT_EYE = 0, 1  # rows of Face.landmarks
Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class FaceGeometry:
    """How an encoder's input is cut from a frame around a face.

    Attributes:
        scale: the crop's height in face-box sides (1.0: the box itself).
        shift_y: the crop centre's offset below the box centre, in face-box sides.
        aspect: the crop's width over its height.
        align: rotate so the eyes are level (when the detector gives landmarks).
        colour: what the encoder looks at; crops are always RGB, a ``gray`` encoder converts them itself.
        template: where the five landmarks (:class:`~emovid.faces.detection.Face` order) sit in the square crop,
            as (x, y) fractions of its side; with landmarks the crop is their least-squares similarity fit onto
            it, and ``scale`` and ``shift_y`` should be that square's typical place (see the module docstring).
    """

    scale: float = 1.4
    shift_y: float = 0.0
    aspect: float = 1.0
    align: bool = False
    colour: Literal["rgb", "gray"] = "rgb"
    template: Points | None = None

    def __post_init__(self) -> None:
        if not (self.scale > 0 and self.aspect > 0):
            raise ValueError(f"face geometry needs scale > 0 and aspect > 0, got {self.scale} and {self.aspect}")
        if self.colour not in ("rgb", "gray"):
            raise ValueError(f"face geometry colour must be 'rgb' or 'gray', got {self.colour!r}")
        if self.template is not None:
            points = tuple((float(x), float(y)) for x, y in self.template)  # JSON gives lists
            if len(points) != 5 or self.aspect != 1:
                raise ValueError(f"a face geometry template is 5 points of a square crop, got {len(points)} "
                                 f"points and aspect {self.aspect}")
            object.__setattr__(self, "template", points)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceGeometry:
        return cls(**data)

    def within(self, outer: FaceGeometry) -> tuple[float, float, float, float]:
        """This crop as (x0, y0, x1, y1) fractions of the ``outer`` crop, both aligned alike.

        An ensemble cuts one generous crop and lets each member take its own window out of it.
        """
        half_h = self.scale / outer.scale / 2
        half_w = half_h * self.aspect / outer.aspect
        cy = 0.5 + (self.shift_y - outer.shift_y) / outer.scale
        return 0.5 - half_w, cy - half_h, 0.5 + half_w, cy + half_h


def eye_angle(landmarks: np.ndarray) -> float:
    """The eye line's angle in degrees, positive when the right eye (as seen) is lower than the left."""
    dx, dy = landmarks[RIGHT_EYE] - landmarks[LEFT_EYE]
    return math.degrees(math.atan2(float(dy), float(dx)))


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The (2, 3) rotation, uniform scale and shift that best maps (N, 2) ``source`` points onto ``target``.

    Least squares, no reflection: the same fit as scikit-image's ``SimilarityTransform`` and OpenCV Zoo's
    face alignment. With points as complex numbers it is ``target ~ a * source + b``, solved in closed form.
    """
    z = source[:, 0].astype(np.float64) + 1j * source[:, 1]
    w = target[:, 0].astype(np.float64) + 1j * target[:, 1]
    zc, wc = z - z.mean(), w - w.mean()
    a = (np.conj(zc) * wc).sum() / max(float((np.abs(zc) ** 2).sum()), 1e-12)
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def crop_transform(face: Face, geometry: FaceGeometry, size: tuple[int, int]) -> np.ndarray:
    """The (2, 3) affine matrix that maps a frame onto the ``size`` = (width, height) crop of ``face``."""
    if geometry.template is not None and face.landmarks is not None:
        return similarity_fit(face.landmarks, np.asarray(geometry.template) * np.asarray(size, np.float64))
    x0, y0, x1, y1 = face.box
    side = math.sqrt(max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6))  # robust to slightly non-square boxes
    angle = eye_angle(face.landmarks) if geometry.align and face.landmarks is not None else 0.0
    # The shift is along the face's own vertical axis, so it follows a tilted head.
    down = np.array([-math.sin(math.radians(angle)), math.cos(math.radians(angle))])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + geometry.shift_y * side * down
    width, height = size
    zoom = height / (geometry.scale * side)
    # OpenCV's positive angle turns the image counter-clockwise, which levels a right eye that sits lower.
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, zoom)
    matrix[:, 2] += (width / 2 - centre[0], height / 2 - centre[1])
    return matrix


def cut_face(frame: np.ndarray, face: Face, geometry: FaceGeometry, size: int) -> np.ndarray:
    """The ``size`` pixels high crop of ``face`` in a uint8 (H, W, C) frame; outside the frame repeats its edge."""
    width = max(1, round(size * geometry.aspect))
    matrix = crop_transform(face, geometry, (width, size))
    zoom = math.hypot(matrix[0, 0], matrix[0, 1])
    # Shrinking with bilinear sampling aliases: shrink the frame with INTER_AREA first, then warp at about 1:1.
    if zoom < 0.8:
        factor = 1 / zoom
        small = cv2.resize(frame, (max(1, round(frame.shape[1] / factor)), max(1, round(frame.shape[0] / factor))),
                           interpolation=cv2.INTER_AREA)
        scale_back = np.array([[frame.shape[1] / small.shape[1], 0, 0], [0, frame.shape[0] / small.shape[0], 0]])
        matrix = matrix @ np.vstack([scale_back, [0, 0, 1]])
        frame = small
    return cv2.warpAffine(frame, matrix, (width, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
