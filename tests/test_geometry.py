"""Face geometry: a known face box gives the known crop; alignment levels the eyes; windows nest."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from emovid.faces.detection import Face
from emovid.faces.geometry import FaceGeometry, crop_transform, cut_face, eye_angle, similarity_fit


def marked_frame() -> np.ndarray:
    """A 200x300 frame whose pixel (x, y) holds x in red and y in green: a crop shows where it came from."""
    ys, xs = np.mgrid[0:200, 0:300]
    return np.stack([xs % 256, ys % 256, np.zeros_like(xs)], axis=-1).astype(np.uint8)


def test_a_known_box_gives_the_known_crop():
    face = Face((100.0, 50.0, 160.0, 110.0), 1.0)  # 60-pixel box centred at (130, 80)
    crop = cut_face(marked_frame(), face, FaceGeometry(scale=1.0), 60)
    assert crop.shape == (60, 60, 3)
    # One crop pixel per frame pixel: the crop's top-left is the box's top-left.
    assert abs(int(crop[0, 0, 0]) - 100) <= 1 and abs(int(crop[0, 0, 1]) - 50) <= 1
    assert abs(int(crop[-1, -1, 0]) - 159) <= 1 and abs(int(crop[-1, -1, 1]) - 109) <= 1
    wider = cut_face(marked_frame(), face, FaceGeometry(scale=2.0, shift_y=0.25), 120)
    # Twice the box, its centre moved down a quarter of the box: top-left at (130-60, 80+15-60).
    assert abs(int(wider[0, 0, 0]) - 70) <= 1 and abs(int(wider[0, 0, 1]) - 35) <= 1


def test_alignment_levels_the_eyes():
    landmarks = np.array([[110, 70], [150, 90], [130, 95], [115, 115], [140, 125]], np.float32)
    angle = eye_angle(landmarks)
    assert angle == pytest.approx(math.degrees(math.atan2(20, 40)))
    face = Face((100.0, 50.0, 160.0, 140.0), 1.0, landmarks)
    matrix = crop_transform(face, FaceGeometry(scale=1.5, align=True), (64, 64))
    eyes = np.hstack([landmarks[:2], np.ones((2, 1))]) @ matrix.T
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6 and eyes[0, 0] < eyes[1, 0]  # level, left stays left
    unaligned = crop_transform(face, FaceGeometry(scale=1.5, align=False), (64, 64))
    eyes = np.hstack([landmarks[:2], np.ones((2, 1))]) @ unaligned.T
    assert eyes[1, 1] - eyes[0, 1] > 5


def test_a_big_shrink_does_not_alias():
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: bilinear sampling at 1/10 scale would give pure black or white
    crop = cut_face(stripes, Face((0.0, 0.0, 800.0, 800.0), 1.0), FaceGeometry(scale=1.0), 80)
    assert abs(float(crop.mean()) - 127.5) < 10 and crop.std() < 20


def test_inner_windows_in_an_outer_crop():
    outer = FaceGeometry(scale=2.0)
    assert FaceGeometry(scale=1.0).within(outer) == pytest.approx((0.25, 0.25, 0.75, 0.75))
    assert FaceGeometry(scale=1.0, shift_y=0.5).within(outer) == pytest.approx((0.25, 0.5, 0.75, 1.0))
    assert FaceGeometry(scale=2.0).within(outer) == pytest.approx((0, 0, 1, 1))


def test_geometry_round_trips_and_checks():
    g = FaceGeometry(scale=1.2, shift_y=0.1, align=True, colour="gray")
    assert FaceGeometry.from_dict(g.to_dict()) == g
    with pytest.raises(ValueError, match="scale > 0"):
        FaceGeometry(scale=0)
    with pytest.raises(ValueError, match="colour"):
        FaceGeometry(colour="bgr")  # type: ignore[arg-type]


def test_crop_outside_the_frame_repeats_its_edge():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = cut_face(frame, Face((-20.0, -20.0, 40.0, 40.0), 1.0), FaceGeometry(scale=1.0), 30)
    assert crop.min() == 200  # no black border
    assert cv2.countNonZero(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)) == 30 * 30


TEMPLATE = ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))  # a face's five points in its crop


def test_similarity_fit_recovers_a_turn_zoom_and_shift():
    points = np.array(TEMPLATE) * 100
    turn = cv2.getRotationMatrix2D((30.0, 40.0), 25, 1.7)
    turn[:, 2] += (12.0, -7.0)
    moved = points @ turn[:, :2].T + turn[:, 2]
    assert np.allclose(similarity_fit(points, moved), turn, atol=1e-9)


def test_a_template_geometry_puts_the_landmarks_on_its_template():
    # A face turned 20 degrees: the crop undoes the turn and lands each landmark on its template point.
    turn = cv2.getRotationMatrix2D((0.0, 0.0), -20, 90.0)
    landmarks = (np.array(TEMPLATE) @ turn[:, :2].T + (150.0, 60.0)).astype(np.float32)
    face = Face((120.0, 60.0, 200.0, 150.0), 1.0, landmarks)
    geometry = FaceGeometry(scale=1.3, shift_y=-0.1, align=True, template=TEMPLATE)
    matrix = crop_transform(face, geometry, (64, 64))
    placed = np.hstack([landmarks, np.ones((5, 1))]) @ matrix.T
    assert np.allclose(placed, np.array(TEMPLATE) * 64, atol=1e-3)
    # Without landmarks (Haar) the crop is the template's box equivalent.
    boxed = crop_transform(face._replace(landmarks=None), geometry, (64, 64))
    assert np.allclose(boxed, crop_transform(face._replace(landmarks=None), FaceGeometry(1.3, -0.1), (64, 64)))


def test_a_template_geometry_round_trips_through_json_and_checks():
    geometry = FaceGeometry(scale=1.24, shift_y=-0.09, align=True, template=TEMPLATE)
    assert FaceGeometry.from_dict(json.loads(json.dumps(geometry.to_dict()))) == geometry
    with pytest.raises(ValueError, match="5 points"):
        FaceGeometry(template=TEMPLATE[:4])
    with pytest.raises(ValueError, match="square"):
        FaceGeometry(aspect=1.2, template=TEMPLATE)
