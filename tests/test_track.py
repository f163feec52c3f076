"""The per-frame face track on synthetic detections: linking, the main face, filling gaps, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from emovid.faces.detection import Face
from emovid.faces.track import carry, face_track, link

FACE = (100.0, 50.0, 160.0, 120.0)
STRAY = (10.0, 10.0, 30.0, 30.0)


def face(box, score: float = 0.99, landmarks: bool = True) -> Face:
    """A face whose landmarks sit at fixed fractions of its box, so they move with it."""
    x0, y0, x1, y1 = box
    fractions = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    points = (np.array([x0, y0]) + fractions * [x1 - x0, y1 - y0]).astype(np.float32)
    return Face(tuple(map(float, box)), score, points if landmarks else None)


def shifted(box, dx: float = 0.0, dy: float = 0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def boxes(track) -> np.ndarray:
    return np.array([f.box for f in track])


def test_a_missed_frame_is_interpolated_and_marked():
    moving = [face(shifted(FACE, dx=4 * t)) for t in range(6)]
    detections = [[f] for f in moving]
    detections[2] = []
    track = face_track(detections, radius=0)
    assert len(track) == 6
    assert np.allclose(track[2].box, moving[2].box) and np.allclose(track[2].landmarks, moving[2].landmarks)
    assert track[2].score == 0.0 and track[1].score == 0.99


def test_missing_ends_hold_the_nearest_detection():
    detections = [[], [face(FACE)], [face(shifted(FACE, dx=10))], []]
    track = face_track(detections)
    assert np.allclose(boxes(track), [FACE, FACE, shifted(FACE, dx=10), shifted(FACE, dx=10)])


def test_a_one_frame_stray_is_ignored():
    detections = [[face(FACE)] for _ in range(5)]
    detections[2] = [face(STRAY, score=1.0), face(FACE)]
    track = face_track(detections)
    assert np.allclose(boxes(track), [FACE] * 5)


@pytest.mark.parametrize("frames", [2, 5, 16])
def test_a_single_detection_is_no_face(frames):
    detections = [[] for _ in range(frames)]
    detections[frames // 2] = [face(FACE)]
    assert face_track(detections) is None
    assert face_track([[] for _ in range(frames)]) is None


def test_a_one_frame_clip_needs_one_detection():
    (only,) = face_track([[face(FACE)]])
    assert only.box == FACE


def test_the_persistent_face_wins_over_a_larger_passing_one():
    big = (300.0, 40.0, 450.0, 220.0)
    detections = [[face(FACE)] + ([face(big)] if t in (1, 2) else []) for t in range(6)]
    assert np.allclose(boxes(face_track(detections)), [FACE] * 6)
    # With as many frames each, the larger face is the main one.
    detections = [[face(FACE), face(big)] if t % 2 else [] for t in range(4)]
    assert np.allclose(boxes(face_track(detections)), [big] * 4)


def test_two_faces_crossing_stay_apart():
    left = [face(shifted(FACE, dx=5 * t)) for t in range(5)]
    right = [face(shifted(FACE, dx=200 - 5 * t), score=0.9) for t in range(5)]
    tracks = link([[a, b] for a, b in zip(left, right, strict=True)])
    assert len(tracks) == 2 and all(len(t) == 5 for t in tracks)
    assert [f.box for f in tracks[0].values()] == [f.box for f in left]


def test_smoothing_keeps_a_still_face_still_and_a_moving_face_on_time():
    still = face_track([[face(FACE)] for _ in range(8)])
    assert np.array_equal(boxes(still), [FACE] * 8)
    moving = [face(shifted(FACE, dx=7 * t, dy=-3 * t)) for t in range(8)]
    track = face_track([[f] for f in moving])
    assert np.allclose(boxes(track), boxes(moving))  # a steady move: no lag, even at the ends
    assert np.allclose([f.landmarks for f in track], [f.landmarks for f in moving], atol=1e-4)


def test_smoothing_removes_jitter_and_a_one_frame_jump():
    rng = np.random.default_rng(0)
    noisy = [face(shifted(FACE, *rng.normal(0, 2, 2))) for _ in range(12)]
    noisy[6] = face(shifted(FACE, dx=25))  # a poor detection, still linked (IoU > 0.3)
    track = face_track([[f] for f in noisy])
    assert np.abs(boxes(track)[6] - FACE).max() < 5
    assert np.abs(boxes(track)[2:-2] - FACE).std() < np.abs(boxes(noisy)[2:-2] - FACE).std()


def test_boxes_without_landmarks_give_none():
    track = face_track([[face(FACE, score=1.0, landmarks=False)], [], [face(FACE, score=1.0, landmarks=False)]])
    assert len(track) == 3 and all(f.landmarks is None for f in track)
    assert np.allclose(boxes(track), [FACE] * 3)


def test_carry_fills_between_detections_and_holds_the_ends():
    found = [face(FACE), face(shifted(FACE, dx=30))]
    carried = carry(found, [1, 4], 6)
    assert [f.score for f in carried] == [0.0, 0.99, 0.0, 0.0, 0.99, 0.0]
    np.testing.assert_allclose(boxes(carried)[:, 0], [100, 100, 110, 120, 130, 130])
    np.testing.assert_allclose(carried[2].landmarks, face(shifted(FACE, dx=10)).landmarks, atol=1e-4)
    assert carry([face(FACE, landmarks=False), face(FACE)], [0, 2], 3)[1].landmarks is None
