"""A labelled picture of the synthetic data: one apex frame per emotion (columns) for a few actors (rows).

Usage: python scripts/synthetic_montage.py [docs/synthetic_montage.png]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from emovid.datasets.ravdess import EMOTIONS, RavdessName
from emovid.synthetic.clip import ClipFormat, ClipPlan

DEFAULT_FORMAT = ClipFormat(320, 180, 30.0, 105)  # the synthetic set's default: 3.5 s at 30 fps
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)


def _face_cell(plan: ClipPlan, cell: int) -> np.ndarray:
    """The apex frame cropped to a square around the face (with its hair), resized to ``cell`` pixels."""
    i = plan.motion.apex_frame
    frame = plan.frame(i, noise=False)  # sensor noise would only bloat the PNG
    x0, y0, x1, y1 = plan.boxes()[i]
    side = 1.45 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.08 * side  # a little above centre, to keep the hair
    # Pad with the frame's edge colour so faces near the border still get a centred crop.
    pad = int(side)
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    left, top = int(round(cx - side / 2)) + pad, int(round(cy - side / 2)) + pad
    crop = padded[top : top + int(side), left : left + int(side)]
    return cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_AREA)


def montage(
    actors: Sequence[int] = (1, 4, 7, 14, 17, 22),
    *,
    seed: int = 0,
    fmt: ClipFormat = DEFAULT_FORMAT,
    cell: int = 128,
) -> np.ndarray:
    """The montage image (H, W, 3) uint8 BGR: strong performances (neutral: normal) of statement 1."""
    label_w, header_h = 110, 28
    rows = [np.full((header_h, label_w + cell * len(EMOTIONS), 3), 255, np.uint8)]
    for j, emotion in enumerate(EMOTIONS):
        cv2.putText(rows[0], emotion, (label_w + j * cell + 8, 19), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    for actor in actors:
        label = np.full((cell, label_w, 3), 255, np.uint8)
        cv2.putText(label, f"Actor {actor:02d}", (8, cell // 2 - 4), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
        cv2.putText(
            label, "male" if actor % 2 else "female", (8, cell // 2 + 16), _FONT, 0.45, _INK, 1, cv2.LINE_AA
        )
        cells = [label]
        for code in range(1, len(EMOTIONS) + 1):
            name = RavdessName(2, 1, code, 1 if code == 1 else 2, 1, 1, actor)
            cells.append(_face_cell(ClipPlan.build(seed, name, fmt), cell))
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)


def save_montage(path: str | Path, actors: Sequence[int] = (1, 4, 7, 14, 17, 22), *, seed: int = 0) -> Path:
    """Write :func:`montage` as a PNG (for ``docs/synthetic_montage.png``) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), montage(actors, seed=seed)):
        raise OSError(f"{path}: could not write the montage")
    return path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/synthetic_montage.png"))
    parser.add_argument("--seed", type=int, default=0)
    print(save_montage(parser.parse_args().out, seed=parser.parse_args().seed))
