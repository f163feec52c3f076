"""MTCNN on a real face: one face where Haar puts it, landmarks in place, none on a blank image, tilt followed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import load_with_user_weights
from emovid.faces.haar import HaarDetector
from emovid.faces.mtcnn import MtcnnDetector, load_mtcnn_nets, nms_min, pyramid_scales
from emovid.faces.track import iou
from emovid.weights import WeightsUnavailableError
from emovid.weights.files import MTCNN_WEIGHTS

ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)

@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return load_with_user_weights(MtcnnDetector, *MTCNN_WEIGHTS)


def eye_tilt(landmarks: np.ndarray) -> float:
    """Degrees the line from the left to the right eye turns clockwise (image y points down)."""
    dx, dy = landmarks[RIGHT_EYE] - landmarks[LEFT_EYE]
    return float(np.degrees(np.arctan2(dy, dx)))


def test_one_face_where_haar_finds_it_with_landmarks_in_place(detector, astronaut):
    faces = detector.detect([astronaut])[0]
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.9 and face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    (haar,) = HaarDetector().detect([astronaut])[0]
    assert iou(face.box, haar.box) > 0.5
    x0, y0, x1, y1 = face.box
    points = face.landmarks
    assert np.all((points >= [x0, y0]) & (points <= [x1, y1]))
    eyes_y = points[[LEFT_EYE, RIGHT_EYE], 1].max()
    assert eyes_y < points[NOSE, 1] < points[[MOUTH_LEFT, MOUTH_RIGHT], 1].min()
    assert points[LEFT_EYE, 0] < points[NOSE, 0] < points[RIGHT_EYE, 0]
    assert points[MOUTH_LEFT, 0] < points[MOUTH_RIGHT, 0]
    assert abs(eye_tilt(points)) < 8  # she holds her head about level


def test_boxes_and_landmarks_are_in_the_frames_pixels(detector, astronaut):
    """A 2x frame is detected at detect_width (480) and mapped back: twice the box of the original."""
    big = cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_LINEAR)
    small_face, big_face = detector.detect([astronaut, big])  # two sizes in one call
    assert len(small_face) == len(big_face) == 1
    assert iou(np.multiply(small_face[0].box, 2), big_face[0].box) > 0.8
    side = small_face[0].box[2] - small_face[0].box[0]
    assert np.abs(small_face[0].landmarks * 2 - big_face[0].landmarks).max() < 0.1 * 2 * side


def test_blank_and_flat_images_have_no_face(detector):
    frames = [np.zeros((240, 320, 3), np.uint8), np.full((240, 320, 3), 128, np.uint8)]
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detector.detect([*frames, noise]) == [[], [], []]


@pytest.mark.parametrize("angle", [-20, 20])
def test_eyes_follow_a_tilted_head(detector, astronaut, angle):
    # cv2's positive angle turns the image anticlockwise on screen, so the eye line tilts by -angle.
    turn = cv2.getRotationMatrix2D((128, 128), angle, 1.0)
    tilted = cv2.warpAffine(astronaut, turn, (256, 256), borderMode=cv2.BORDER_REFLECT)
    (level,) = detector.detect([astronaut])[0]
    (face,) = detector.detect([tilted])[0]
    assert face.score > 0.9
    assert abs(eye_tilt(face.landmarks) - (eye_tilt(level.landmarks) - angle)) < 8
    # The nose moves with the head: the landmarks are the turned originals, to within a few pixels.
    moved = cv2.transform(level.landmarks[None].astype(np.float64), turn)[0]
    assert np.abs(face.landmarks - moved).max() < 0.1 * (level.box[2] - level.box[0])


def test_a_batch_gives_what_single_frames_give(detector, astronaut):
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    batch = detector.detect([astronaut, flipped, np.zeros_like(astronaut)])
    single = [detector.detect([f])[0] for f in (astronaut, flipped)]
    for got, want in zip(batch, single, strict=False):
        assert len(got) == len(want) == 1
        assert np.allclose(got[0].box, want[0].box, atol=1e-3)
    assert batch[2] == []


def test_the_smallest_detection_size_still_finds_the_face(detector, astronaut):
    """At the size where a face of min_face (a tenth of the short side) fills RNet's 24 px input, the astronaut's
    face is found where the full-size detection finds it."""
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[52:308, 200:456] = astronaut  # a face a quarter of the frame high
    small = detector.at_smallest_size(640, 360)
    assert small.detect_width == 427 and detector.detect_width == 480 and small.nets is detector.nets
    assert detector.at_smallest_size(100, 80).detect_width == 100  # never wider than the frame
    (full,) = detector.detect([frame])[0]
    (found,) = small.detect([frame])[0]
    side = full.box[2] - full.box[0]
    assert iou(found.box, full.box) > 0.75 and np.abs(found.landmarks - full.landmarks).max() < 0.1 * side


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVID_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="mtcnn_pnet.pt .*emovid weights download"):
        MtcnnDetector()


def test_a_broken_weights_file_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVID_WEIGHTS_DIR", str(tmp_path))
    for weights in MTCNN_WEIGHTS:
        (tmp_path / weights.name).write_bytes(b"not a torch file")
    with pytest.raises(WeightsUnavailableError) as error:
        load_mtcnn_nets()
    assert "mtcnn_pnet.pt" in str(error.value) and "\n" not in str(error.value)


def test_weights_are_declared_with_their_package():
    assert [w.source.member for w in MTCNN_WEIGHTS] == [  # type: ignore[union-attr]
        f"facenet_pytorch/data/{n}.pt" for n in ("pnet", "rnet", "onet")]
    assert {(w.source.describe(), w.licence, w.used_by) for w in MTCNN_WEIGHTS} == {
        ("facenet-pytorch 2.6.0 (pypi)", "MIT", ("face detection (MTCNN)",))
    }
    assert all(len(w.sha256) == 64 for w in MTCNN_WEIGHTS)


def test_pyramid_spans_min_face_to_the_short_side():
    scales = pyramid_scales(240, 320, min_face=20)
    assert scales[0] == pytest.approx(12 / 20)  # a 20 px face fills PNet's 12 px window
    assert 240 * scales[-1] >= 12 > 240 * scales[-1] * 0.709  # the last level is the last that fits the window
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert pyramid_scales(10, 10, min_face=20) == []


def test_min_nms_drops_a_box_inside_another_only_in_its_own_image():
    boxes = torch.tensor([[0, 0, 100, 100], [10, 10, 50, 50], [10, 10, 50, 50], [200, 0, 260, 60]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.95, 0.8, 0.7])
    images = torch.tensor([0, 0, 1, 0])
    # IoU NMS keeps the inner box (IoU 0.16); MTCNN's "min" overlap is 1 and drops the lower-scored box 0.
    assert nms_min(boxes, scores, images, 0.7).tolist() == [1, 2, 3]
    assert nms_min(boxes[:0], scores[:0], images[:0], 0.7).tolist() == []
