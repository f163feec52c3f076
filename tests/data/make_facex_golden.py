"""Write ``facex_golden.npz``: face crops of ``astronaut.jpg`` prepared as facex does, and LiteRT's probabilities.

Run once, from the repository root, with ``ai-edge-litert``, ``scikit-image`` and facex's tflite file::

    python tests/data/make_facex_golden.py PATH/TO/model_optimized.tflite

facex's preprocessing: OpenCV BGR2GRAY, Haar cascade ``haarcascade_frontalface_default`` (OpenCV's copy,
which finds the same box) with ``detectMultiScale(gray, 1.1, 4)``, the box cut as is,
``skimage.transform.resize(crop, (200, 200, 3))``. The crops are stored as uint8 gray (N, 200, 200), the resize's
output rounded, and the references are computed on exactly those crops (``/ 255``, replicated to three channels).
``reference`` is LiteRT's default interpreter (XNNPACK for float ops), the one facex gets; ``spread`` is how far
LiteRT's own kernels (built-in optimised and reference) are from it on each crop, because the hybrid int8 ops make
the output sensitive to float rounding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from skimage.transform import resize

HERE = Path(__file__).parent


def crops(gray: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """facex's box and four variants, as uint8 gray (N, 200, 200); the blurred one is the only unconfident one."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    (x, y, w, h), *_ = cascade.detectMultiScale(gray, 1.1, 4)
    margin = w // 4
    sources = {
        f"box {w}x{h} at ({x}, {y})": gray[y : y + h, x : x + w],
        "box with 25% margin": gray[y - margin : y + h + margin, x - margin : x + w + margin],
        "box flipped left-right": gray[y : y + h, x : x + w][:, ::-1],
        "box darker (x0.6)": (gray[y : y + h, x : x + w] * 0.6).round().astype(np.uint8),
        "box blurred (sigma 3)": cv2.GaussianBlur(gray[y : y + h, x : x + w], (0, 0), 3),
    }
    resized = [resize(crop, (200, 200, 3))[..., 0] for crop in sources.values()]  # float [0, 1], gray replicated
    return np.stack([(r * 255).round().astype(np.uint8) for r in resized]), list(sources)


def probabilities(model: Path, faces: np.ndarray, resolver: OpResolverType) -> np.ndarray:
    interpreter = Interpreter(model_path=str(model), experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for face in faces:
        interpreter.set_tensor(inp["index"], np.repeat(face[None, :, :, None] / np.float32(255), 3, axis=3))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(rows)


def main(model: Path) -> None:
    gray = cv2.cvtColor(cv2.imread(str(HERE / "astronaut.jpg")), cv2.COLOR_BGR2GRAY)
    faces, names = crops(gray)
    reference = probabilities(model, faces, OpResolverType.AUTO)
    others = [probabilities(model, faces, r) for r in (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                                                       OpResolverType.BUILTIN_REF)]
    spread = np.max([np.abs(o - reference).max(axis=1) for o in others], axis=0)
    np.savez_compressed(HERE / "facex_golden.npz", faces=faces, reference=reference, spread=spread,
                        names=np.array(names))
    for name, probs, s in zip(names, reference, spread, strict=True):
        print(f"{name:28s} {np.array2string(probs, precision=4, suppress_small=True)}  spread {s:.1e}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
