"""Faces in video frames: detection (Haar, MTCNN), landmarks, alignment and crop geometry."""

from emovid.faces.crop import (
    DETECT_WIDTH,
    HaarFaceDetector,
    crop_to_face,
    detect_largest,
    square_around,
)

__all__ = ["DETECT_WIDTH", "HaarFaceDetector", "crop_to_face", "detect_largest", "square_around"]
