"""Faces in video frames: detection (MTCNN, Haar), a per-frame track, per-person tracks, alignment and crop
geometry."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

from emovid.faces.crop import crop_to_face
from emovid.faces.detection import Face, FaceDetector
from emovid.faces.geometry import FaceGeometry
from emovid.faces.haar import DETECT_WIDTH, HaarDetector
from emovid.faces.tracks import PersonTrack, main_track, person_tracks

__all__ = [
    "DETECT_WIDTH", "Face", "FaceDetector", "FaceGeometry", "PersonTrack", "crop_to_face", "default_detectors",
    "main_track", "person_tracks",
]


def default_detectors() -> tuple[FaceDetector, ...]:
    """MTCNN, then Haar where MTCNN finds no face. MTCNN's weights are fetched on first use (see
    :func:`emovid.weights.require`); without them (offline, unreachable) Haar works alone, with one warning.

    One set per process and weights folder: loading takes longer than a detection.
    """
    from emovid.weights import weights_dir

    return _detectors_for(weights_dir())


@lru_cache(maxsize=2)
def _detectors_for(folder: Path) -> tuple[FaceDetector, ...]:
    from emovid.faces.mtcnn import MtcnnDetector
    from emovid.weights import WeightsUnavailableError

    haar = HaarDetector()
    try:
        return MtcnnDetector(), haar
    except WeightsUnavailableError as exc:
        warnings.warn(f"{exc}; finding faces with OpenCV's Haar cascade alone, which misses more of them",
                      stacklevel=2)
        return (haar,)
