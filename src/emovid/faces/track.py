"""One face per frame of a clip from any detector's per-frame detections: link, pick, fill, smooth.

A pure function on detections, so it works the same for Haar and MTCNN and is tested with synthetic boxes.
Frames here are the frames detected on (often a few spread over the clip), so "±2 frames" means two
detected frames each side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emovid.faces.detection import Box, Face

MIN_IOU = 0.3  # a face's box in two frames overlaps at least this much; head turns and small moves keep more
MIN_FRAMES = 2  # frames that must find the face: one stray detection is not a face
RADIUS = 2  # smoothing window: a centred median over this many frames each side


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def link(detections: Sequence[Sequence[Face]], min_iou: float = MIN_IOU) -> list[dict[int, Face]]:
    """Tracks: faces linked frame to frame, each track a {frame index: face} dict, in order of first frame.

    A face joins the track whose latest box (in any earlier frame, so a track survives missed frames) overlaps
    it most, at least ``min_iou``; each track takes at most one face per frame, pairs by decreasing IoU.
    """
    tracks: list[dict[int, Face]] = []
    for t, faces in enumerate(detections):
        latest = [track[max(track)] for track in tracks]
        pairs = sorted(
            ((iou(last.box, face.box), k, j) for k, last in enumerate(latest) for j, face in enumerate(faces)),
            reverse=True,
        )
        taken_tracks: set[int] = set()
        taken_faces: set[int] = set()
        for overlap, k, j in pairs:
            if overlap < min_iou:
                break
            if k not in taken_tracks and j not in taken_faces:
                tracks[k][t] = faces[j]
                taken_tracks.add(k)
                taken_faces.add(j)
        tracks.extend({t: face} for j, face in enumerate(faces) if j not in taken_faces)
    return tracks


def _interpolate(known: dict[int, np.ndarray], length: int) -> np.ndarray:
    """Values (length, ...) in every frame, linear between known frames and held beyond the first and last."""
    frames = sorted(known)
    values = np.stack([known[t] for t in frames]).reshape(len(frames), -1)  # (K, D)
    filled = np.stack([np.interp(np.arange(length), frames, values[:, d]) for d in range(values.shape[1])], axis=1)
    return filled.reshape(length, *known[frames[0]].shape)


def _smooth(values: np.ndarray, radius: int) -> np.ndarray:
    """Centred median over ±radius frames of (T, ...) values; the window shrinks symmetrically at the ends.

    A symmetric window follows a face moving at a steady speed exactly, with no lag, even at the ends; the
    median drops a one-frame jump that a mean would smear over its neighbours.
    """
    out = values.copy()
    for t in range(len(values)):
        r = min(radius, t, len(values) - 1 - t)
        out[t] = np.median(values[t - r : t + r + 1], axis=0)
    return out


def face_track(
    detections: Sequence[Sequence[Face]],
    min_frames: int = MIN_FRAMES,
    min_iou: float = MIN_IOU,
    radius: int = RADIUS,
) -> list[Face] | None:
    """The clip's main face in every frame, or None when the clip has none.

    The main face is the track (see :func:`link`) found in the most frames, the larger on a tie. It counts when
    found in at least ``min(min_frames, T)`` frames, so one stray detection neither makes a face nor, in a
    clip with a face, gets picked. Frames that missed it get its box and landmarks interpolated from the
    nearest frames that have it (held at the ends); then boxes and landmarks are smoothed over time.

    Args:
        detections: per frame, the faces a detector found (T lists).
        min_frames: frames that must find the face.
        min_iou: overlap that links a face from one frame to the next.
        radius: smoothing window, in frames each side; 0 leaves the detections as they are.

    Returns:
        T faces: score is the detector's where it found the face and 0.0 where it was filled in; landmarks are
        None unless every detection of the track has them.
    """
    tracks = link(detections, min_iou)
    if not tracks:
        return None
    main = max(tracks, key=lambda track: (len(track), np.mean([_area(f.box) for f in track.values()])))
    if len(main) < min(min_frames, len(detections)):
        return None
    length = len(detections)
    boxes = _smooth(_interpolate({t: np.asarray(f.box, np.float64) for t, f in main.items()}, length), radius)
    points = {t: f.landmarks.astype(np.float64) for t, f in main.items() if f.landmarks is not None}
    landmarks = _smooth(_interpolate(points, length), radius) if len(points) == len(main) else None
    return [
        Face(
            tuple(boxes[t].tolist()),
            main[t].score if t in main else 0.0,
            landmarks[t].astype(np.float32) if landmarks is not None else None,
        )
        for t in range(length)
    ]


def carry(faces: Sequence[Face], at: Sequence[int], length: int) -> list[Face]:
    """A face in each of ``length`` frames from ``faces`` found at frames ``at`` (increasing): boxes and landmarks
    linear in between, held before the first and after the last; carried faces score 0.0.

    Detecting every few frames, this is what carries the box between detections (after :func:`face_track`).
    """
    boxes = _interpolate({t: np.asarray(f.box, np.float64) for t, f in zip(at, faces, strict=True)}, length)
    points = {t: f.landmarks.astype(np.float64) for t, f in zip(at, faces, strict=True) if f.landmarks is not None}
    landmarks = _interpolate(points, length) if len(points) == len(faces) else None
    scores = {t: f.score for t, f in zip(at, faces, strict=True)}
    return [
        Face(tuple(boxes[t].tolist()), scores.get(t, 0.0),
             landmarks[t].astype(np.float32) if landmarks is not None else None)
        for t in range(length)
    ]
