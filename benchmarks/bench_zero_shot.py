"""Zero-shot prediction on the CPU: latency per stage, end to end after start-up, for each zero-shot model.

Stages, as ``emovid predict`` runs one clip per video (:func:`emovid.data.video.read_clip`):

- decode: open the video, decode the T sampled frames, scale them to the face-crop working size;
- detect: the face detectors on the T frames (MTCNN, Haar where MTCNN finds nothing);
- crop: the per-frame face track and the aligned crops;
- encoders: every member on its frames (and their mirror images), then pooling (one column per member too).

Videos default to the four RAVDESS originals (1280x720, 3.3-4.1 s) of the ``pyfame`` wheel, fetched once with
pip into a temporary folder. The weights must be in emovid's weights folder (``emovid weights download``).

    python benchmarks/bench_zero_shot.py
    python benchmarks/bench_zero_shot.py VIDEO... --models zero-shot fer2013-zero-shot --frames 16 32
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch

from emovid.data.video import Resize, clip_geometry, open_video, uniform_indices
from emovid.faces import FaceGeometry, default_detectors
from emovid.faces.crop import crop_to_face
from emovid.transforms import normalize
from emovid.zero_shot import ENSEMBLE, ZeroShotEnsemble, zero_shot_predictor

WHEELS = Path(tempfile.gettempdir()) / "emovid-test-wheels"  # shared with tests/test_fer.py
SAMPLES = ["01/sample_01.mp4", "01/sample_02.mp4", "02/sample_03.mp4", "02/sample_04.mp4"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="default: the pyfame RAVDESS clips")
    p.add_argument("--models", nargs="+", default=[ENSEMBLE], help=f"zero-shot models (default {ENSEMBLE})")
    p.add_argument("--frames", nargs="+", type=int, default=[16], help="T values to time (default 16)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per video; the median is reported")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def pyfame_clips() -> list[Path]:
    """The RAVDESS clips inside the pyfame 1.0.10 wheel, downloaded once."""
    folder = WHEELS / "pyfame-1.0.10"
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob("*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "pyfame==1.0.10", "-d",
                        str(folder)], capture_output=True, timeout=300)
    wheels = list(folder.glob("*.whl"))
    if not wheels:
        sys.exit("cannot fetch pyfame==1.0.10 from PyPI: pass videos instead")
    members = [f"pyfame/data/sample/{s}" for s in SAMPLES]
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(folder / "x", members)
    return [folder / "x" / m for m in members]


class Recorded:
    """A detector that gives back detections made earlier, so the crop stage is timed without detection."""

    name = "recorded"

    def __init__(self, detections: list) -> None:
        self.detections = detections

    def detect(self, frames: list) -> list:
        return self.detections


def time_stages(path: Path, model: ZeroShotEnsemble, spec, frames: int) -> dict[str, float]:
    """Seconds per stage for one prediction of ``path`` with T = ``frames``."""
    resize, geometry = Resize(**spec.resize), FaceGeometry.from_dict(spec.face_geometry)
    detectors = default_detectors()
    t0 = time.perf_counter()
    with open_video(path) as reader:
        info = reader.info
        raw = reader.frames_at(uniform_indices(info.num_frames, frames),
                               clip_geometry(resize, spec.crop, info.width, info.height))
    t1 = time.perf_counter()
    for detector in detectors:  # what crop_to_face does first, timed on its own
        detections = detector.detect(list(raw))
        if any(detections):
            break
    t2 = time.perf_counter()
    clip, _ = crop_to_face(raw, resize.size, resize.center_region(raw.shape[2], raw.shape[1]), geometry,
                           [Recorded(detections)])
    t3 = time.perf_counter()
    x = normalize(torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2))[None]), spec.mean, spec.std)
    members = {}
    with torch.inference_mode():
        for index, member in enumerate(model.members):
            start = time.perf_counter()
            model.member_probabilities(index, x)
            members[type(member).__name__] = time.perf_counter() - start
        start = time.perf_counter()
        model(x).softmax(dim=1)
        t4 = time.perf_counter()
    return {"decode": t1 - t0, "detect": t2 - t1, "crop": t3 - t2, "encoders": t4 - start,
            "total": (t1 - t0) + (t2 - t1) + (t3 - t2) + (t4 - start), **members}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    videos = args.videos or pyfame_clips()
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs, milliseconds\n")
    for name in args.models:
        for frames in args.frames:
            model, spec = zero_shot_predictor(name, frames=frames)
            members = [type(m).__name__ for m in model.members]
            print(f"{name}, T={frames}\n")
            print("| video | s | size | decode | detect | crop | encoders | total | " + " | ".join(members) + " |")
            print("|---" * (8 + len(members)) + "|")
            for path in videos:
                with open_video(path) as reader:
                    info = reader.info
                time_stages(path, model, spec, frames)  # warm-up: model loading, first allocations
                runs = [time_stages(path, model, spec, frames) for _ in range(args.repeats)]
                ms = {k: 1000 * statistics.median(r[k] for r in runs) for k in runs[0]}
                print(f"| {path.name} | {info.duration:.2f} | {info.width}x{info.height} | {ms['decode']:.0f} | "
                      f"{ms['detect']:.0f} | {ms['crop']:.0f} | {ms['encoders']:.0f} | {ms['total']:.0f} | "
                      + " | ".join(f"{ms[m]:.0f}" for m in members) + " |")
            print()


if __name__ == "__main__":
    main()
