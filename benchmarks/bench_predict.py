"""Inference cost: predict latency per model, timeline real-time factor (face detectors: bench_detectors.py).

1. ``emovid predict`` on one 3.7 s 1280x720 H.264 clip (a RAVDESS original re-encoded to 3.7 s at 8 Mbit/s
   with B-frames; a synthetic face clip without network), per study model with random weights at 224, T=16:
   decode, face detection + crop, model, PyTorch against ONNX Runtime. Best of ``--repeat`` interleaved runs.
2. ``--timeline`` of the default zero-shot model (its weights needed: ``emovid weights download``) on 60 s at
   1280x720 and at 320x180 and on 10 min at 320x180 (30 fps, the face clip looped back and forth): seconds, the
   real-time factor and peak RSS of the frame path (:func:`emovid.analysis.frame_analysis`) against the windowed
   path every model took before (:func:`emovid.analysis.window_analysis`), each run in a process of its own after
   a one-clip prediction, whose peak RSS is the baseline. The 60 s and 10 min runs at 320x180 show whether memory
   grows with the video's length.

    python benchmarks/bench_predict.py [--repeat 3] [--models r3d18 cnn-lstm] [--only timeline] [--old-long]

Other processes may share the CPU: compare the ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from emovid.analysis import frame_analysis, window_analysis
from emovid.checkpoint import InferenceSpec
from emovid.data.video import Resize, clip_geometry, finish_clip, open_video, uniform_indices
from emovid.datasets.ravdess import EMOTIONS
from emovid.models import create_model, model_options
from emovid.predict import Predictor, load_predictor, predict_videos
from emovid.synthetic.generate import SynthConfig, generate_dataset, read_meta
from emovid.timeline import DETECT_EVERY, FPS
from emovid.zero_shot import ENSEMBLE

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
    from emovid.export import OnnxModel, export_onnx  # here: the timeline's processes need not load ONNX

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


def long_video(seconds: int, width: int, height: int, ravdess: list[Path]) -> Path:
    """A ``seconds`` long ``width`` x ``height`` 30 fps H.264 video: a face clip looped back and forth."""
    path = WORK / f"long_{seconds}s_{height}p.mp4"
    if path.exists():
        return path
    source = all_frames(ravdess[0]) if ravdess else synthetic_face_frames(1280, 720, 4.0)
    small = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in source])
    loop = np.concatenate([small, small[::-1]])
    return encode((loop[i % len(loop)] for i in range(seconds * 30)), path, 30)


def timeline_predictor(model: str) -> Predictor:
    """The timeline's model: ``zero-shot`` (its weights needed), else a study model with random weights."""
    return load_predictor(model=model) if model == ENSEMBLE else random_predictor(model)


def child(mode: str, model: str, video: Path, clip: Path) -> None:
    """One measurement in this process, printed as JSON: after start-up and a one-clip prediction of ``clip`` (the
    baseline RSS), ``mode`` ``clip`` stops; ``frames`` runs the frame path and ``windows`` the windowed one."""
    torch.set_num_threads(2)
    predictor = timeline_predictor(model)
    list(predict_videos([clip], predictor))  # warm-up: lazy loads (the face detector), first allocations
    result = {"clip_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if mode != "clip":
        analyse = frame_analysis if mode == "frames" else window_analysis
        start = time.perf_counter()
        analysis = analyse(video, predictor)
        result.update(seconds=time.perf_counter() - start, windows=len(analysis.starts),
                      frames=len(analysis.frames.indices) if analysis.frames else None,
                      duration=analysis.video["duration"],
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def measure(mode: str, model: str, video: Path, clip: Path) -> dict:
    """:func:`child` in a fresh process, so that its peak RSS is its own."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, model, str(video), str(clip)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def timeline_table(ravdess: list[Path], model: str, old_long: bool) -> None:
    """Real-time factor and peak RSS of the timeline, frame path against the windowed path, each in its own process."""
    clip = bench_clip(ravdess)
    videos = [("60 s 1280x720", long_video(60, 1280, 720, ravdess)),
              ("60 s 320x180", long_video(60, 320, 180, ravdess)),
              ("10 min 320x180", long_video(600, 320, 180, ravdess))]
    load = os.getloadavg()
    baseline = measure("clip", model, clip, clip)["clip_rss_mb"]
    print(f"\ntimeline of {model}: window 3 s, stride 1.5 s; frame path at {FPS:g} fps, face detection on one "
          f"sampled frame in {DETECT_EVERY}; one-clip predict of {clip.name}: peak RSS {baseline:.0f} MB")
    print("\n| video | path | windows | frames scored | seconds | real-time factor | peak RSS "
          "| over one-clip predict | load before |")
    print("|---|---|---|---|---|---|---|---|---|")
    speed = {}
    for label, video in videos:
        for mode in ("frames", "windows"):
            if mode == "windows" and label.startswith("10 min") and not old_long:
                continue
            before = os.getloadavg()[0]
            r = measure(mode, model, video, clip)
            speed[label, mode] = r["duration"] / r["seconds"]
            frames = r["frames"] if r["frames"] is not None else f"{r['windows']} x T"
            print(f"| {label} | {mode} | {r['windows']} | {frames} | {r['seconds']:.1f} | {speed[label, mode]:.1f}x | "
                  f"{r['peak_rss_mb']:.0f} MB | {r['peak_rss_mb'] - baseline:+.0f} MB | {before:.1f} |")
    for label, _ in videos:
        if (label, "windows") in speed:
            ratio = speed[label, "frames"] / speed[label, "windows"]
            print(f"{label}: the frame path runs {ratio:.1f}x as fast as the windowed one")
    print(f"load average before: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min); after: {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(STUDY_MODELS))
    parser.add_argument("--timeline-model", default=ENSEMBLE,
                        help=f"{ENSEMBLE} (default; its weights needed) or a study model with random weights")
    parser.add_argument("--only", choices=("latency", "timeline"), help="run one section")
    parser.add_argument("--old-long", action="store_true", help="also time the windowed path on the 10 min video")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "MODEL", "VIDEO", "CLIP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, model, video, clip = args.child
        child(mode, model, Path(video), Path(clip))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    ravdess = ravdess_clips()
    print(f"RAVDESS samples: {len(ravdess) or 'unavailable (offline): synthetic faces instead'}; "
          f"torch threads {torch.get_num_threads()}")
    if args.only != "timeline":
        latency_table(bench_clip(ravdess), args.models, args.repeat)
    if args.only != "latency":
        timeline_table(ravdess, args.timeline_model, args.old_long)


if __name__ == "__main__":
    main()
