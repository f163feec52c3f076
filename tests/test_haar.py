"""The Haar cascade behind the FaceDetector protocol: the cascade's boxes, in the frame's pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emovid.faces.haar import HaarDetector, HaarFaceDetector, grey_at_width

ASTRONAUT = Path(__file__).parent / "data" / "astronaut.jpg"


def test_haar_detector_gives_the_cascades_boxes_in_the_frames_pixels():
    astronaut = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    big = cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_LINEAR)
    wide = cv2.copyMakeBorder(big, 0, 0, 128, 0, cv2.BORDER_CONSTANT, value=(90, 90, 90))  # 640 x 512, at half size
    blank = np.full((240, 320, 3), 128, np.uint8)
    detector = HaarDetector()
    assert detector.name == "haar"
    found = detector.detect([astronaut, wide, blank])
    assert [len(faces) for faces in found] == [1, 1, 0]
    for frame, (face,) in zip([astronaut, wide], found, strict=False):
        assert face.score == 1.0 and face.landmarks is None
        grey, scale = grey_at_width(frame, 320)
        (box,) = HaarFaceDetector()(grey)
        assert np.allclose(face.box, np.divide(box, scale))
    assert np.allclose(found[1][0].box, np.multiply(found[0][0].box, 2) + [128, 0, 128, 0], atol=10)
