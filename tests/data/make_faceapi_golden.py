"""Write faceapi_golden.npz: four 112x112 faces cut from astronaut.jpg and face-api.js's probabilities for them.

The probabilities come from the original runtime (make_faceapi_golden.mjs: face-api 1.7.15 on tfjs 4.22, CPU
backend, in node). Prepare a scratch folder outside the repository, then run from the repository root:

    mkdir -p /tmp/faceapi_ref && cd /tmp/faceapi_ref && npm init -y && \\
        npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
    python tests/data/make_faceapi_golden.py /tmp/faceapi_ref /tmp/faceapi_ref/node_modules/@vladmandic/face-api/model
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).parent
SIZE = 112


def pad_to_square(crop: np.ndarray) -> np.ndarray:
    """face-api's padToSquare(isCenterImage=true) on (H, W, 3): zeros, round(diff / 2) after, the rest before."""
    h, w = crop.shape[:2]
    after = round(abs(h - w) / 2 + 1e-9)  # JS Math.round rounds .5 up, Python's round to even
    before = abs(h - w) - after
    pads = ((0, 0), (before, after), (0, 0)) if h > w else ((before, after), (0, 0), (0, 0))
    return np.pad(crop, pads)


def to_input(crop: np.ndarray) -> np.ndarray:
    """A crop padded to a square and resized to 112x112 (INTER_AREA; any resize will do for a golden input)."""
    return cv2.resize(pad_to_square(crop), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def faces() -> np.ndarray:
    """(4, 112, 112, 3) uint8 RGB: the Haar box grown 20%, a wide non-square crop, a mirror of the first turned
    by 20 degrees, and the tight Haar box darker and flatter."""
    image = cv2.cvtColor(cv2.imread(str(HERE / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
    x, y, w, h = cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 1.1, 3)[0]
    grown = image[y - h // 10 : y + h + h // 10, x - w // 10 : x + w + w // 10]
    wide = image[20:120, 70:150]  # 100 x 80: padded to a square like face-api does
    first = to_input(grown)
    turn = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 20, 1.0)
    mirror_turned = cv2.warpAffine(np.ascontiguousarray(first[:, ::-1]), turn, (SIZE, SIZE))
    darker = (to_input(image[y : y + h, x : x + w]).astype(np.float32) * 0.4 + 20).round().astype(np.uint8)
    return np.stack([first, to_input(wide), mirror_turned, darker])


def main(scratch: Path, model_dir: Path) -> None:
    batch = np.ascontiguousarray(faces())
    raw = scratch / "faces.u8"
    raw.write_bytes(batch.tobytes())
    run = subprocess.run(
        ["node", str(HERE.resolve() / "make_faceapi_golden.mjs"), str(raw), str(len(batch)), str(model_dir)],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])  # tfjs prints a banner first
    logits, probs = (np.asarray(result[key], dtype=np.float32) for key in ("logits", "probs"))
    labels = np.asarray(result["labels"])
    np.savez_compressed(HERE / "faceapi_golden.npz", faces=batch, logits=logits, probs=probs, labels=labels)
    print(result["labels"], result["backend"], result["tfjs"], logits.round(2), probs.round(4), sep="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
