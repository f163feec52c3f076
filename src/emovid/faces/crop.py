"""Face-aware cropping: find the face in a few frames of a clip, smooth its box, crop a square around it.

Pure functions on decoded uint8 RGB frames (T, H, W, C); decoding stays in :mod:`emovid.data.video`. The
detector is OpenCV's Haar cascade ``frontalface_alt2``, which ships inside opencv-python-headless, so nothing
is downloaded at run time. ``benchmarks/bench_predict.py`` compares it with dlib's HOG detector: both find
the face in every frame of real RAVDESS clips, but at 320 px wide dlib misses faces smaller than its 80 px
window unless it upsamples, and upsampled it is as slow as Haar and finds fewer faces in the other sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import cv2
import numpy as np

from emovid.faces.haar import DETECT_WIDTH, HaarFaceDetector, grey_at_width
from emovid.faces.track import iou

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
Region = tuple[int, int, int, int]  # left, top, width, height in pixels
Detector = Callable[[np.ndarray], list[Box]]  # grey (H, W) uint8 image -> face boxes

DETECT_FRAMES = 5  # frames of a clip the detector looks at
MARGIN = 1.4  # the crop's side over the face box's side: keeps the chin, brows and forehead


@lru_cache(maxsize=1)
def default_detector() -> HaarFaceDetector:
    """One detector per process: loading the cascade takes longer than a detection."""
    return HaarFaceDetector()


def detect_largest(frame: np.ndarray, detector: Detector, width: int = DETECT_WIDTH) -> Box | None:
    """The largest face in an RGB (H, W, C) frame, in the frame's pixels; the frame is scaled to ``width``."""
    grey, scale = grey_at_width(frame, width)
    boxes = detector(grey)
    if not boxes:
        return None
    x0, y0, x1, y1 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    return x0 / scale, y0 / scale, x1 / scale, y1 / scale


def agreeing(boxes: Sequence[Box], min_iou: float = 0.3) -> list[Box]:
    """The largest group of boxes that overlap one of them: the face most frames agree on."""
    groups = [[b for b in boxes if iou(a, b) >= min_iou] for a in boxes]
    return max(groups, key=len, default=[])


def median_box(boxes: Sequence[Box]) -> Box:
    """Coordinate-wise median: one steady box for the clip."""
    x0, y0, x1, y1 = np.median(np.asarray(boxes, dtype=np.float64), axis=0).tolist()
    return x0, y0, x1, y1


def square_around(box: Box, width: int, height: int, margin: float = MARGIN) -> Region:
    """The square of ``margin`` times the box's longer side, centred on the box, moved inside the frame.

    A square larger than the frame's short side shrinks to it.
    """
    x0, y0, x1, y1 = box
    side = max(1, min(round(margin * max(x1 - x0, y1 - y0)), width, height))
    left = round((x0 + x1 - side) / 2)
    top = round((y0 + y1 - side) / 2)
    return min(max(left, 0), width - side), min(max(top, 0), height - side), side, side


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
    detector: Detector | None = None,
    detect_frames: int = DETECT_FRAMES,
) -> tuple[np.ndarray, dict]:
    """Crop a clip to the face it shows: one square per clip, the median of detections that agree.

    A face counts when at least two of the frames looked at (one, for a one-frame clip) find it in about the
    same place, so one stray detection neither makes nor moves the crop.

    Args:
        frames: uint8 RGB (T, H, W, C), the whole frames at a working resolution.
        size: side of the output frames.
        fallback: the region to crop when no face is found (the centre crop).
        detector: face detector; the bundled Haar cascade by default.
        detect_frames: how many frames, spread over the clip, to detect on.

    Returns:
        The cropped clip, uint8 (T, size, size, C), and metadata: ``face_found``, in how many of the frames
        looked at, and the face box and crop square as [x0, y0, x1, y1] fractions of the frame (None without
        a face).
    """
    detector = detector or default_detector()
    t, height, width = frames.shape[:3]
    picks = np.unique(np.linspace(0, t - 1, min(detect_frames, t)).round().astype(int))
    found = agreeing([box for box in (detect_largest(frames[i], detector) for i in picks) if box is not None])
    face = median_box(found) if len(found) >= min(2, len(picks)) else None
    region = square_around(face, width, height) if face else fallback
    left, top, w, h = region
    meta = {
        "face_found": face is not None,
        "face_detections": f"{len(found) if face else 0}/{len(picks)}",
        "face_box": _relative(face, width, height) if face else None,
        "crop_box": _relative((left, top, left + w, top + h), width, height),
    }
    return crop_resize(frames, region, size), meta


def _relative(box: Sequence[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [round(x0 / width, 4), round(y0 / height, 4), round(x1 / width, 4), round(y1 / height, 4)]
