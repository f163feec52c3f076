"""The Haar cascade behind the FaceDetector protocol: the cascade's boxes as face boxes, in the frame's pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emovid.faces.haar import HAAR_BOX_SCALE, HaarDetector, HaarFaceDetector, grey_at_width

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
        x0, y0, x1, y1 = np.divide(HaarFaceDetector()(grey)[0], scale)  # the cascade's own box
        half = (x1 - x0) / 2 / HAAR_BOX_SCALE  # shrunk about its centre to MTCNN's face box
        assert np.allclose(face.box, [(x0 + x1) / 2 - half, (y0 + y1) / 2 - half, (x0 + x1) / 2 + half,
                                      (y0 + y1) / 2 + half])
    assert np.allclose(found[1][0].box, np.multiply(found[0][0].box, 2) + [128, 0, 128, 0], atol=10)
