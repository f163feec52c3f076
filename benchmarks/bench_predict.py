"""Inference cost and face detection: predict latency per model, timeline real-time factor, Haar versus dlib.

1. Face detectors, on frames scaled to 320 px wide: OpenCV's Haar cascades (bundled with opencv-python-headless)
   and dlib's HOG detector (``pip install dlib-bin``; skipped without it). Speed per frame, and hit rates on
   real faces: every other frame of the four original RAVDESS clips in the pyfame 1.0.10 wheel, skimage's
   astronaut pasted into scenes at several sizes, places and tilts (centre error against a hand-labelled box),
   LFW faces from skimage; false positives on LFW non-faces and face-free skimage images.
2. ``emovid predict`` on one 3.7 s 1280x720 H.264 clip (a RAVDESS original re-encoded to 3.7 s at 8 Mbit/s
   with B-frames; a synthetic face clip without network), per study model with random weights at 224, T=16:
   decode, face detection + crop, model, PyTorch against ONNX Runtime. Best of ``--repeat`` interleaved runs.
3. ``--timeline`` on a 60 s video (640x360, 30 fps: the RAVDESS clip looped; a lower resolution than the
   originals, to keep the video quick to make): seconds per second of video and peak numpy memory, against a
   20 s video to show memory does not grow with length.

    python benchmarks/bench_predict.py [--repeat 3] [--models r3d18 cnn-lstm] [--skip-detectors]

Other processes may share the CPU: compare the ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from skimage import data as skdata

from emovid.checkpoint import InferenceSpec
from emovid.data.ravdess import EMOTIONS
from emovid.data.synthetic import SynthConfig, generate_dataset, read_meta
from emovid.data.video import Resize, clip_geometry, finish_clip, open_video, uniform_indices
from emovid.export import OnnxModel, export_onnx
from emovid.faces.crop import Detector, HaarFaceDetector, detect_largest
from emovid.models import create_model, model_options
from emovid.predict import Predictor, predict_timeline

STUDY_MODELS = ("early-fusion-cnn", "early-fusion-resnet18", "late-fusion-resnet18", "r3d18", "cnn-lstm")
FRAMES, SIZE = 16, 224
ASTRONAUT_FACE = (180, 65, 265, 170)  # hand-labelled: brow to chin, cheek to cheek
WORK = Path(tempfile.gettempdir()) / "emovid_bench_predict"


def ravdess_clips() -> list[Path]:
    """The four RAVDESS originals shipped in the pyfame 1.0.10 wheel (fetched once), or [] offline."""
    folder = WORK / "pyfame"
    clips = sorted(folder.glob("pyfame/data/sample/*/*.mp4"))
    if clips:
        return clips
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "pyfame==1.0.10", "-d",
                        str(folder)], check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError):
        return []
    with zipfile.ZipFile(next(folder.glob("pyfame-*.whl"))) as wheel:
        wheel.extractall(folder, [m for m in wheel.namelist() if m.endswith(".mp4")])
    return sorted(folder.glob("pyfame/data/sample/*/*.mp4"))


def all_frames(path: Path, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame, (N, H, W, C) RGB at full size."""
    with open_video(path) as reader:
        return np.stack([f for i, f in reader.stream() if i % step == 0])


def encode(frames, path: Path, fps: float, bit_rate: int | None = None) -> Path:
    """Write RGB frames as H.264 with B-frames, like RAVDESS originals."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "3", "g": "60"}
        if bit_rate:
            stream.bit_rate = bit_rate
        for i, frame in enumerate(frames):
            if i == 0:
                stream.width, stream.height = frame.shape[1], frame.shape[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return path


def synthetic_face_frames(width: int, height: int, seconds: float) -> np.ndarray:
    """Frames of a synthetic actor, for machines without the RAVDESS samples."""
    out = WORK / f"synth{width}"
    generate_dataset(out, SynthConfig(actors=(1,), width=width, height=height, seconds=seconds, modalities=(2,),
                                      limit=1), workers=1, progress=False)
    return all_frames(out / read_meta(out)[0]["file"])


# 1. Face detectors ---------------------------------------------------------------------------------------


def dlib_detector(upsample: int) -> Detector | None:
    """dlib's HOG detector; ``upsample`` doubles the image that many times to find faces under 80 px."""
    try:
        import dlib
    except ImportError:
        return None
    hog = dlib.get_frontal_face_detector()
    return lambda grey: [(float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
                         for r in hog(grey, upsample)]


class EqualizedHaar(HaarFaceDetector):
    """The Haar detector on histogram-equalised images, as many tutorials do."""

    def __call__(self, grey: np.ndarray) -> list:
        return super().__call__(cv2.equalizeHist(grey))


def astronaut_scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, true face box) for the astronaut's head at several sizes, places, tilts and exposures."""
    head = skdata.astronaut()[:300, 80:380]
    rng = np.random.default_rng(0)
    scenes = []
    for width, height in ((640, 360), (1280, 720), (480, 640)):
        for face_frac in (0.12, 0.2, 0.3):  # face height as a fraction of the frame height
            for angle in (-12, 0, 12):
                scale = face_frac * height / (ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1])
                patch = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                if patch.shape[1] > width:
                    continue
                centre = (patch.shape[1] / 2, patch.shape[0] / 2)
                patch = cv2.warpAffine(patch, cv2.getRotationMatrix2D(centre, angle, 1.0), patch.shape[1::-1],
                                       borderMode=cv2.BORDER_REFLECT)
                frame = cv2.resize(rng.integers(30, 220, (9, 16, 3), dtype=np.uint8), (width, height))
                left = int(rng.integers(0, width - patch.shape[1] + 1))
                top = int(rng.integers(0, height - patch.shape[0] + 1))
                frame[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
                frame = cv2.convertScaleAbs(frame, alpha=float(rng.uniform(0.7, 1.2)))
                box = (np.array(ASTRONAUT_FACE, float) - [80, 0, 80, 0]) * scale + [left, top, left, top]
                scenes.append((frame, box))
    return scenes


def lfw_images(faces: bool) -> list[np.ndarray]:
    """skimage's LFW subset (25x25 grey; first 100 faces, then 100 non-faces), scaled up into a grey frame."""
    images = skdata.lfw_subset()[:100] if faces else skdata.lfw_subset()[100:]
    out = []
    for image in images:
        frame = np.full((180, 320), 128, np.uint8)
        frame[40:140, 110:210] = cv2.resize((image * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        out.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))
    return out


def face_free_images() -> list[np.ndarray]:
    images = [getattr(skdata, name)() for name in ("coffee", "chelsea", "rocket", "coins", "brick", "grass", "horse")]
    return [cv2.cvtColor(i.astype(np.uint8) * (255 if i.dtype == bool else 1), cv2.COLOR_GRAY2RGB) if i.ndim == 2
            else i for i in images]


def detector_table(ravdess: list[Path]) -> None:
    detectors: dict[str, Detector] = {
        "Haar alt2, step 1.1, 4 neighbours (emovid)": HaarFaceDetector(),
        "Haar alt2, step 1.2": HaarFaceDetector(scale_factor=1.2),
        "Haar alt2, equalised histogram": EqualizedHaar(),
        "Haar default cascade": _haar_default(),
    }
    for upsample in (0, 1):
        hog = dlib_detector(upsample)
        if hog is None:
            print("dlib not installed (pip install dlib-bin): Haar only")
            break
        detectors[f"dlib HOG, upsample {upsample} (dlib-bin)"] = hog
    real = np.concatenate([all_frames(p, step=2) for p in ravdess]) if ravdess else np.zeros((0, 2, 2, 3), np.uint8)
    scenes = astronaut_scenes()
    lfw_faces, lfw_other, free = lfw_images(True), lfw_images(False), face_free_images()
    cv2.setNumThreads(1)  # per-frame cost on one core, as in a prepare worker
    print(f"\n| detector (frames at 320 px wide, 1 thread) | ms/frame (RAVDESS + astronaut) | "
          f"RAVDESS hit ({len(real)} frames) | astronaut hit ({len(scenes)}) | centre err / face | LFW faces hit | "
          f"false pos. ({len(lfw_other)} LFW non-faces + {len(free)} images) |")
    print("|---|---|---|---|---|---|---|")
    for name, detector in detectors.items():
        start = time.perf_counter()
        real_hits = sum(detect_largest(f, detector) is not None for f in real)
        errors = []
        for frame, box in scenes:
            found = detect_largest(frame, detector)
            if found is not None:
                errors.append(np.hypot(*(_centre(found) - _centre(box))) / (box[2] - box[0]))
        ms = (time.perf_counter() - start) / (len(real) + len(scenes)) * 1000
        face_hits = sum(detect_largest(f, detector) is not None for f in lfw_faces)
        false = sum(detect_largest(f, detector) is not None for f in [*lfw_other, *free])
        print(f"| {name} | {ms:.1f} | {real_hits / max(1, len(real)):.1%} | {len(errors) / len(scenes):.0%} | "
              f"{np.median(errors) if errors else float('nan'):.2f} | {face_hits}% | {false} |")
    cv2.setNumThreads(-1)


def _haar_default() -> HaarFaceDetector:
    detector = HaarFaceDetector()
    detector.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return detector


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


# 2. Predict latency ---------------------------------------------------------------------------------------


def bench_clip(ravdess: list[Path]) -> Path:
    """A 3.7 s 1280x720 H.264 clip with a real face when the RAVDESS samples are there."""
    path = WORK / "clip_720p_3.7s.mp4"
    if not path.exists():
        frames = all_frames(ravdess[1]) if ravdess else synthetic_face_frames(1280, 720, 4.0)
        encode(frames[: round(30 * 3.7)], path, 30, bit_rate=8_000_000)
    return path


def random_predictor(name: str) -> Predictor:
    """A study model with random weights at 224, T=16, and a spec to match."""
    torch.manual_seed(0)
    options = {"num_frames": FRAMES} if "num_frames" in model_options(name) else {}
    model = create_model(name, **options).eval()
    spec = InferenceSpec(dict(model.emovid_args), EMOTIONS, FRAMES, {"mode": "intelligent", "size": SIZE,
                         "short_side": 256}, "center", tuple(model.input_spec.mean), tuple(model.input_spec.std), 3.7)
    return Predictor(model, spec)


def best_of(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Fastest time of each function in seconds, running them in turn so load hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def decode_clip(path: Path, crop: str, resize: Resize) -> np.ndarray:
    with open_video(path) as reader:
        info = reader.info
        geometry = clip_geometry(resize, crop, info.width, info.height)
        return reader.frames_at(uniform_indices(info.num_frames, FRAMES), geometry)


def latency_table(clip: Path, models: list[str], repeat: int) -> None:
    resize = Resize("intelligent", SIZE, 256)
    working = decode_clip(clip, "face", resize)
    stages = best_of({
        "decode": lambda: decode_clip(clip, "center", resize),
        "decode_face": lambda: decode_clip(clip, "face", resize),
        "face": lambda: finish_clip(working, resize, "face"),
    }, repeat)
    _, meta = finish_clip(working, resize, "face")
    print(f"\nclip: {clip.name}, 1280x720, 3.7 s, H.264; face found: {meta['face_found']} ({meta['face_detections']})")
    print(f"decode + resize to 224 (centre crop): {stages['decode'] * 1000:.0f} ms; face crop: decode to "
          f"{working.shape[2]}x{working.shape[1]} {stages['decode_face'] * 1000:.0f} ms + detect 5 frames and crop "
          f"{stages['face'] * 1000:.0f} ms")
    clips = finish_clip(working, resize, "face")[0][None]  # (1, T, C, H, W)
    print("\n| model (T=16, 224, batch 1) | PyTorch ms | ONNX Runtime ms | ORT speed-up | predict total, centre crop "
          "(torch / ORT) ms | predict total, face crop (torch / ORT) ms |")
    print("|---|---|---|---|---|---|")
    for name in models:
        torch_predictor = random_predictor(name)
        onnx_path = WORK / f"{name}.onnx"
        export_onnx(torch_predictor.model, torch_predictor.spec, onnx_path)
        ort_predictor = Predictor(OnnxModel(onnx_path), torch_predictor.spec)
        ort_predictor.probabilities(clips)  # warm-up: first run allocates
        torch_predictor.probabilities(clips)
        times = best_of({"torch": lambda p=torch_predictor: p.probabilities(clips),
                         "ort": lambda p=ort_predictor: p.probabilities(clips)}, repeat)
        centre = [(stages["decode"] + times[k]) * 1000 for k in ("torch", "ort")]
        face = [(stages["decode_face"] + stages["face"] + times[k]) * 1000 for k in ("torch", "ort")]
        print(f"| {name} | {times['torch'] * 1000:.0f} | {times['ort'] * 1000:.0f} | "
              f"{times['torch'] / times['ort']:.2f}x | {centre[0]:.0f} / {centre[1]:.0f} | "
              f"{face[0]:.0f} / {face[1]:.0f} |")


# 3. Timeline -----------------------------------------------------------------------------------------------


def long_video(seconds: int, ravdess: list[Path]) -> Path:
    """A ``seconds`` long 640x360 30 fps H.264 video: a face clip looped back and forth."""
    path = WORK / f"long_{seconds}s_360p.mp4"
    if path.exists():
        return path
    source = all_frames(ravdess[0]) if ravdess else synthetic_face_frames(1280, 720, 4.0)
    small = np.stack([cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in source])
    loop = np.concatenate([small, small[::-1]])
    return encode((loop[i % len(loop)] for i in range(seconds * 30)), path, 30)


def timeline_table(ravdess: list[Path], model: str) -> None:
    torch_predictor = random_predictor(model)
    print(f"\n| timeline ({model}, window 3.7 s, stride 1.85 s, 640x360 30 fps) | windows | seconds | "
          "real-time factor | peak numpy memory |")
    print("|---|---|---|---|---|")
    for crop in ("center", "face"):
        predictor = Predictor(torch_predictor.model, replace(torch_predictor.spec, crop=crop))
        for seconds in (20, 60):
            video = long_video(seconds, ravdess)
            tracemalloc.start()
            start = time.perf_counter()
            timeline = predict_timeline(video, predictor)
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"| {seconds} s video, {crop} crop | {len(timeline.starts)} | {elapsed:.1f} | "
                  f"{elapsed / seconds:.2f} | {peak / 2**20:.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(STUDY_MODELS))
    parser.add_argument("--timeline-model", default="late-fusion-resnet18")
    parser.add_argument("--skip-detectors", action="store_true", help="skip the Haar versus dlib comparison")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    ravdess = ravdess_clips()
    print(f"RAVDESS samples: {len(ravdess) or 'unavailable (offline): synthetic faces instead'}; "
          f"torch threads {torch.get_num_threads()}")
    if not args.skip_detectors:
        detector_table(ravdess)
    latency_table(bench_clip(ravdess), args.models, args.repeat)
    timeline_table(ravdess, args.timeline_model)


if __name__ == "__main__":
    main()
