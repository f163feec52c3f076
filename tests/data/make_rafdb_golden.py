"""Write ``rafdb_golden.npz``: faces of ``astronaut.jpg`` aligned as OpenCV Zoo does, and onnxruntime's outputs.

Run once, from the repository root, with ``onnxruntime``, MTCNN's weights in emovid's weights folder and OpenCV
Zoo's int8 file (``facial_expression_recognition_mobilefacenet_2022july_int8.onnx``)::

    python tests/data/make_rafdb_golden.py PATH/TO/facial_expression_recognition_mobilefacenet_2022july_int8.onnx

OpenCV Zoo's preprocessing (``facial_fer_model.py``): the least-squares similarity fit of the face's five landmarks
onto the ArcFace template, ``cv2.warpAffine`` to 112x112 (bilinear, black border), RGB, ``(x / 255 - 0.5) / 0.5``,
NCHW. The landmarks here are emovid's MTCNN's (stored in the file, with the box, so the crop is reproducible), the
same five points as OpenCV Zoo's YuNet. Besides that crop: a mirror, one turned 15 degrees, one blurred, the box
equivalent emovid uses inside a shared ensemble crop, and two unconfident inputs: the smile covered, a flat grey.
``logits`` are onnxruntime's CPU outputs for the stored uint8 faces on x86 with AVX2 (its ARM kernels, and x86
without AVX2, round QLinearAdd differently now and then).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from emovid.faces.detection import Face
from emovid.faces.geometry import cut_face, similarity_fit
from emovid.faces.mtcnn import MtcnnDetector
from emovid.models.rafdb import RAFDB_GEOMETRY, RAFDB_SIZE, RAFDB_TEMPLATE

HERE = Path(__file__).parent


def crops(image: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N, 112, 112, 3) uint8 RGB faces and their names."""
    template = np.array(RAFDB_TEMPLATE)
    aligned = cv2.warpAffine(image, similarity_fit(landmarks, template), (RAFDB_SIZE, RAFDB_SIZE))
    centre = landmarks.mean(axis=0)
    turn = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 15, 1.0)
    turned_points = landmarks @ turn[:, :2].T + turn[:, 2]  # the face's points turned: the fit turns the crop
    turned = cv2.warpAffine(image, similarity_fit(turned_points, template), (RAFDB_SIZE, RAFDB_SIZE))
    box_equivalent = dataclasses.replace(RAFDB_GEOMETRY, template=None)
    covered = aligned.copy()
    covered[78:] = 128  # below the nose tip: the smile hidden
    sources = {
        "template fit (OpenCV Zoo)": aligned,
        "mirrored": np.ascontiguousarray(aligned[:, ::-1]),
        "turned 15 degrees": turned,
        "blurred (sigma 2)": cv2.GaussianBlur(aligned, (0, 0), 2),
        "box equivalent": cut_face(image, Face(box, 1.0, landmarks), box_equivalent, RAFDB_SIZE),
        "mouth covered": covered,
        "flat grey": np.full_like(aligned, 128),
    }
    return np.stack(list(sources.values())), list(sources)


def main(model: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(HERE / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    (face, *_), = MtcnnDetector().detect([image])
    assert face.landmarks is not None
    faces, names = crops(image, face.box, face.landmarks)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    data = (faces.astype(np.float32) / 255 - 0.5) / 0.5
    logits = np.stack([session.run(None, {"data": x.transpose(2, 0, 1)[None]})[0][0] for x in data])
    np.savez_compressed(HERE / "rafdb_golden.npz", faces=faces, logits=logits, names=np.array(names),
                        box=np.array(face.box, np.float32), landmarks=face.landmarks.astype(np.float32),
                        onnxruntime=np.array(ort.__version__))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    for name, p in zip(names, probs / probs.sum(axis=1, keepdims=True), strict=True):
        print(f"{name:28s} {np.array2string(p, precision=3, suppress_small=True)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
