"""Inference cost: predict latency per model, timeline real-time factor (face detectors: bench_detectors.py).

1. ``emovid predict`` on one 3.7 s 1280x720 H.264 clip (a RAVDESS original re-encoded to 3.7 s at 8 Mbit/s
   with B-frames; a synthetic face clip without network), per study model with random weights at 224, T=16:
   decode, face detection + crop, model, PyTorch against ONNX Runtime. Best of ``--repeat`` interleaved runs.
2. ``--timeline`` on a 60 s video (640x360, 30 fps: the RAVDESS clip looped; a lower resolution than the
   originals, to keep the video quick to make): seconds per second of video and peak numpy memory, against a
   20 s video to show memory does not grow with length.

    python benchmarks/bench_predict.py [--repeat 3] [--models r3d18 cnn-lstm]

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

from emovid.checkpoint import InferenceSpec
from emovid.data.video import Resize, clip_geometry, finish_clip, open_video, uniform_indices
from emovid.datasets.ravdess import EMOTIONS
from emovid.export import OnnxModel, export_onnx
from emovid.models import create_model, model_options
from emovid.predict import Predictor, predict_timeline
from emovid.synthetic.generate import SynthConfig, generate_dataset, read_meta

STUDY_MODELS = ("early-fusion-cnn", "early-fusion-resnet18", "late-fusion-resnet18", "r3d18", "cnn-lstm")
FRAMES, SIZE = 16, 224
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


# 1. Predict latency ---------------------------------------------------------------------------------------


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


# 2. Timeline -----------------------------------------------------------------------------------------------


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
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    ravdess = ravdess_clips()
    print(f"RAVDESS samples: {len(ravdess) or 'unavailable (offline): synthetic faces instead'}; "
          f"torch threads {torch.get_num_threads()}")
    latency_table(bench_clip(ravdess), args.models, args.repeat)
    timeline_table(ravdess, args.timeline_model)


if __name__ == "__main__":
    main()
