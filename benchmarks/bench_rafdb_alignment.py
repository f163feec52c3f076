"""The RAF-DB member's face alignment on real clips: its template fit, its box equivalent, and what they change.

OpenCV Zoo's network wants each face warped onto its 112x112 ArcFace template by a 5-point similarity fit.
emovid does exactly that when the crop is the member's own (``rafdb-zero-shot``); inside an ensemble's shared crop
of the face box, the member's window is the template square's median place relative to MTCNN's box
(``RAFDB_GEOMETRY.scale`` and ``shift_y``). For every MTCNN face of 16 frames per clip of ``../shared/realfaces``
(tracked and smoothed as the pipeline does), this prints:

- where the exact fit's square lies in face boxes (scale, vertical and sideways offset, rotation against the eye
  line): the medians are ``RAFDB_GEOMETRY``'s numbers; no label is read for them;
- how far the box equivalent is from the exact fit: the template points' mean displacement, in template pixels,
  and each framing's mean landmark error against the template;
- how often the network's answer changes: argmax agreement per frame and per clip (mean over frames) between
  OpenCV Zoo's own crop (``cv2.warpAffine`` at 112 px), emovid's template crop, and the box-equivalent window of
  the four-member shared crop; and each one's accuracy on the labelled clips (reported, nothing is fitted).

    python benchmarks/bench_rafdb_alignment.py [--realfaces ../shared/realfaces] [--weights FILE.onnx]

Needs MTCNN's weights and one of the network's ONNX files in emovid's weights folder (or ``--weights``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from emovid.data.video import open_video, uniform_indices
from emovid.faces.detection import Face
from emovid.faces.geometry import crop_transform, cut_face, eye_angle, similarity_fit
from emovid.faces.mtcnn import MtcnnDetector
from emovid.faces.track import face_track
from emovid.models.rafdb import RAFDB_GEOMETRY, RAFDB_SIZE, RAFDB_TEMPLATE, load_rafdb_expression
from emovid.zero_shot import CROP_SIZE, _cut, encoders, shared_geometry

FRAMES = 16
TRUSTED = ("MEAD", "DFEW", "RAVDESS")
REPO = Path(__file__).resolve().parents[1]
TEMPLATE = np.array(RAFDB_TEMPLATE)  # (5, 2) in 112x112 pixels
BOX_EQUIVALENT = dataclasses.replace(RAFDB_GEOMETRY, template=None)  # its square in face boxes, eyes level


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realfaces", type=Path, default=REPO.parent / "shared" / "realfaces")
    p.add_argument("--weights", type=Path, default=None, help="the network's ONNX file (default: weights folder)")
    return p.parse_args()


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def placement(face: Face) -> tuple[float, float, float, float]:
    """The exact fit's square relative to the face box: scale, shift down, shift right (box sides), degrees."""
    assert face.landmarks is not None
    matrix = similarity_fit(face.landmarks, TEMPLATE)
    zoom = math.hypot(matrix[0, 0], matrix[1, 0])
    centre = apply(cv2.invertAffineTransform(matrix), np.array([RAFDB_SIZE / 2, RAFDB_SIZE / 2]))
    x0, y0, x1, y1 = face.box
    side = math.sqrt((x1 - x0) * (y1 - y0))
    angle = math.radians(eye_angle(face.landmarks))
    offset = centre - np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    down = offset @ np.array([-math.sin(angle), math.cos(angle)]) / side
    right = offset @ np.array([math.cos(angle), math.sin(angle)]) / side
    # The fit turns the frame by -angle(matrix); levelling the eyes turns it by -eye angle.
    turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])) + math.degrees(angle)
    return RAFDB_SIZE / zoom / side, down, right, turn


def main() -> None:
    args = parse_args()
    if not (args.realfaces / "SOURCES.tsv").is_file():
        raise SystemExit(f"no SOURCES.tsv in {args.realfaces}; point --realfaces at the real clips")
    with open(args.realfaces / "SOURCES.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    net = load_rafdb_expression(args.weights)
    detector = MtcnnDetector()
    # The shared crop of an ensemble of all four members, and the RAF-DB window in it.
    mixed = shared_geometry([e.load().geometry for e in encoders().values()])
    window = RAFDB_GEOMETRY.within(mixed)
    own = shared_geometry([RAFDB_GEOMETRY])

    places, displaced, error_exact, error_box = [], [], [], []
    answers: dict[str, list[np.ndarray]] = {"opencv zoo": [], "emovid template": [], "box window": []}
    labels, datasets = [], []
    for row in rows:
        with open_video(args.realfaces / row["file"]) as reader:
            frames = reader.frames_at(uniform_indices(reader.info.num_frames, FRAMES))
        track = face_track(detector.detect(list(frames)))
        if track is None or track[0].landmarks is None:
            print(f"{row['file']}: no MTCNN face, skipped")
            continue
        crops: dict[str, list[np.ndarray]] = {k: [] for k in answers}
        for frame, face in zip(frames, track, strict=True):
            assert face.landmarks is not None
            exact = similarity_fit(face.landmarks, TEMPLATE)
            box = crop_transform(face, BOX_EQUIVALENT, (RAFDB_SIZE, RAFDB_SIZE))
            places.append(placement(face))
            displaced.append(np.linalg.norm(apply(box, apply(cv2.invertAffineTransform(exact), TEMPLATE)) - TEMPLATE,
                                            axis=1).mean())
            error_exact.append(np.linalg.norm(apply(exact, face.landmarks) - TEMPLATE, axis=1).mean())
            error_box.append(np.linalg.norm(apply(box, face.landmarks) - TEMPLATE, axis=1).mean())
            crops["opencv zoo"].append(cv2.warpAffine(frame, exact, (RAFDB_SIZE, RAFDB_SIZE)))
            crops["emovid template"].append(cut_face(frame, face, own, CROP_SIZE))
            crops["box window"].append(cut_face(frame, face, mixed, CROP_SIZE))
        windows = {"opencv zoo": (0.0, 0.0, 1.0, 1.0), "emovid template": (0.0, 0.0, 1.0, 1.0), "box window": window}
        for name, images in crops.items():
            faces = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255  # (T, 3, S, S)
            with torch.no_grad():
                answers[name].append(net(_cut(faces, windows[name], RAFDB_SIZE)).numpy())
        labels.append(row["label"])
        datasets.append(row["dataset"])

    scale, down, right, turn = np.array(places).T
    print(f"{len(places)} faces of {len(labels)} clips\n")
    for name, values in (("scale (box sides)", scale), ("shift_y (box sides)", down),
                         ("sideways (box sides)", right), ("turn vs eye line (deg)", turn)):
        p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95])
        print(f"{name:24s} median {p50:+.3f}  IQR {p25:+.3f}..{p75:+.3f}  5-95% {p5:+.3f}..{p95:+.3f}")
    print(f"\nRAFDB_GEOMETRY: scale {RAFDB_GEOMETRY.scale}, shift_y {RAFDB_GEOMETRY.shift_y}")
    print(f"box equivalent vs exact fit: template points displaced {np.mean(displaced):.2f} px on average "
          f"(median {np.median(displaced):.2f}, 90th percentile {np.percentile(displaced, 90):.2f}); "
          f"landmark error against the template {np.mean(error_box):.2f} px, the exact fit's own "
          f"{np.mean(error_exact):.2f} px\n")

    names = list(net.classes)
    reference = answers["opencv zoo"]
    for name, probs in answers.items():
        frame_agree = sum(int((p.argmax(1) == r.argmax(1)).sum()) for p, r in zip(probs, reference, strict=True))
        clips = [names[p.mean(0).argmax()] for p in probs]
        clip_agree = sum(c == names[r.mean(0).argmax()] for c, r in zip(clips, reference, strict=True))
        scored = [(c, label, d) for c, label, d in zip(clips, labels, datasets, strict=True) if label in names]
        right_all = sum(c == label for c, label, _ in scored)
        trusted = [(c, label) for c, label, d in scored if d in TRUSTED]
        print(f"{name:16s} agrees with OpenCV Zoo's crop on {frame_agree}/{len(places)} frames, "
              f"{clip_agree}/{len(clips)} clips; right on {right_all}/{len(scored)} clips, trusted group "
              f"{sum(c == label for c, label in trusted)}/{len(trusted)} (mean over frames)")


if __name__ == "__main__":
    main()
