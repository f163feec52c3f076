"""Face-aware cropping of a clip: detect the face in every frame, follow it, cut each frame as the encoder wants.

Pure functions on decoded uint8 RGB frames (T, H, W, C); decoding stays in :mod:`emovid.data.video`. The
default detector is MTCNN (landmarks, so crops can be aligned) with OpenCV's Haar cascade as its fallback,
or Haar alone while the MTCNN weights are not downloaded (see :func:`emovid.faces.default_detectors`). The
crop follows the face frame by frame along a smoothed track (:mod:`emovid.faces.track`), framed by the
encoder's :class:`~emovid.faces.geometry.FaceGeometry`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from emovid.faces.detection import Box, FaceDetector
from emovid.faces.geometry import FaceGeometry, crop_transform, cut_face
from emovid.faces.track import face_track

Region = tuple[int, int, int, int]  # left, top, width, height in pixels


def crop_resize(frames: np.ndarray, region: Region, size: int) -> np.ndarray:
    """Cut ``region`` out of every (H, W, C) frame of a (T, H, W, C) clip and resize it to ``size`` x ``size``."""
    left, top, w, h = region
    # INTER_AREA when shrinking (no aliasing), bilinear when the region is smaller than the output.
    interpolation = cv2.INTER_AREA if min(w, h) >= size else cv2.INTER_LINEAR
    return np.stack(
        [cv2.resize(f[top : top + h, left : left + w], (size, size), interpolation=interpolation) for f in frames]
    )


def crop_to_face(
    frames: np.ndarray,
    size: int,
    fallback: Region,
    geometry: FaceGeometry | None = None,
    detectors: Sequence[FaceDetector] | None = None,
) -> tuple[np.ndarray, dict]:
    """Crop a clip to the face it shows, frame by frame, framed by ``geometry``.

    The face is the one most frames agree on (:func:`emovid.faces.track.face_track`): a stray detection
    neither makes nor moves it, frames where the detector missed it take their neighbours' box.

    Args:
        frames: uint8 RGB (T, H, W, C), the whole frames at a working resolution.
        size: side of the output frames (its height when ``geometry.aspect`` is not 1).
        fallback: the region to crop when no face is found (the centre crop).
        geometry: how the crop frames the face; the default is emovid's own training crop.
        detectors: tried in turn until one finds a face; :func:`emovid.faces.default_detectors` when None.

    Returns:
        The cropped clip, uint8 (T, size, size, C), and metadata: ``face_found``, in how many frames the
        detector found it, which detector, and the median face box and crop as [x0, y0, x1, y1] fractions of
        the frame (None without a face).
    """
    from emovid.faces import default_detectors

    geometry = geometry or FaceGeometry()
    t, height, width = frames.shape[:3]
    for detector in detectors or default_detectors():
        detections = detector.detect(list(frames))
        track = face_track(detections)
        if track is not None:
            break
    else:
        left, top, w, h = fallback
        return crop_resize(frames, fallback, size), {
            "face_found": False, "face_detections": f"0/{t}", "face_detector": None, "face_box": None,
            "crop_box": _relative((left, top, left + w, top + h), width, height),
        }
    found = sum(face.score > 0 for face in track)  # frames that found the face, not filled in
    clip = np.stack([cut_face(frame, face, geometry, size) for frame, face in zip(frames, track, strict=True)])
    median = _median_box([face.box for face in track])
    return clip, {
        "face_found": True,
        "face_detections": f"{found}/{t}",
        "face_detector": detector.name,
        "face_box": _relative(median, width, height),
        "crop_box": _relative(_crop_extent(track[t // 2], geometry, size), width, height),
    }


def _median_box(boxes: Sequence[Box]) -> Box:
    x0, y0, x1, y1 = np.median(np.asarray(boxes, dtype=np.float64), axis=0).tolist()
    return x0, y0, x1, y1


def _crop_extent(face, geometry: FaceGeometry, size: int) -> Box:
    """The frame-pixel bounding box of one frame's crop (its corners mapped back through the crop transform)."""
    width = max(1, round(size * geometry.aspect))
    matrix = cv2.invertAffineTransform(crop_transform(face, geometry, (width, size)))
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, size, 1], [width, size, 1]], dtype=np.float64) @ matrix.T
    return (*corners.min(axis=0).tolist(), *corners.max(axis=0).tolist())


def _relative(box: Sequence[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [round(x0 / width, 4), round(y0 / height, 4), round(x1 / width, 4), round(y1 / height, 4)]
