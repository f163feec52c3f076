"""Faces in video frames: detection (MTCNN, Haar), a per-frame track, alignment and crop geometry."""

from __future__ import annotations

from functools import lru_cache

from emovid.faces.crop import crop_to_face
from emovid.faces.detection import Face, FaceDetector
from emovid.faces.geometry import FaceGeometry
from emovid.faces.haar import DETECT_WIDTH, HaarDetector

__all__ = ["DETECT_WIDTH", "Face", "FaceDetector", "FaceGeometry", "crop_to_face", "default_detectors"]


@lru_cache(maxsize=1)
def default_detectors() -> tuple[FaceDetector, ...]:
    """MTCNN, then Haar where MTCNN finds no face; Haar alone while MTCNN's weights are not downloaded.

    One set per process: loading takes longer than a detection.
    """
    from emovid.faces.mtcnn import MTCNN_WEIGHTS, MtcnnDetector

    haar = HaarDetector()
    if all(w.path.is_file() for w in MTCNN_WEIGHTS):
        return MtcnnDetector(), haar
    return (haar,)
