"""Cost of every person (``--faces all``) against the main face alone, with the default zero-shot model.

Synthetic scenes of 60 s at 1280x720, 25 fps (:mod:`emovid.synthetic.scene`): one person, and the same person with
a second one beside them. Each is run the way ``emovid predict VIDEO --timeline-out PREFIX`` runs it, through
:func:`emovid.predict.predict_records` (analysis, CSV, JSON and PNG), with ``faces="main"`` and ``faces="all"``,
interleaved, best of ``--repeat``. Reported: wall and CPU seconds, the real-time factor (seconds per second of video),
``--faces all`` against the single-face run on the same video, and the cost of the extra face in ms per sampled
frame: (all on two people - all on one) / sampled frames, and measured alone (cut and scored, batched).

    python benchmarks/bench_people.py [--repeat 2] [--seconds 60] [--threads 2]

Needs the zero-shot weights (``emovid weights download``). Other processes may share the CPU: compare the ratios
within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from emovid.predict import TimelineRequest, load_predictor, predict_records
from emovid.synthetic.clip import ClipFormat
from emovid.synthetic.scene import Person, Scene, write_scene

WORK = Path(tempfile.gettempdir()) / "emovid_bench_people"
PEOPLE = (Person(actor=1, emotion=3, x=0.3, size=0.2), Person(actor=14, emotion=5, x=0.72, size=0.2))


def scene_video(people: tuple[Person, ...], seconds: float) -> Path:
    """The scene at 1280x720, 25 fps, made once (streamed: frames are never all in memory)."""
    path = WORK / f"scene-{len(people)}p-{seconds:g}s.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = ClipFormat(width=1280, height=720, fps=25.0, num_frames=round(25 * seconds))
        write_scene(path, Scene.build(people, fmt, seed=0))
    return path


def timed(video: Path, predictor, faces: str) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one ``--timeline`` run, and its record."""
    out = WORK / f"out-{video.stem}-{faces}"
    wall, cpu = time.perf_counter(), time.process_time()
    (record,) = predict_records([str(video)], predictor, TimelineRequest(prefix=out), faces=faces)  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu, record


def face_cost(video: Path, predictor, faces: int = 64, repeat: int = 5) -> float:
    """Milliseconds to cut and score one more face: ``faces`` faces of the video (its first detections), cut with
    the model's geometry and scored in one batched call, best of ``repeat``; the part of a frame's cost that grows
    with its faces (decoding and detection do not)."""
    from emovid.data.video import clip_geometry, open_video
    from emovid.faces import FaceGeometry, default_detectors
    from emovid.faces.geometry import cut_face

    with open_video(video) as reader:
        geometry = clip_geometry(predictor.resize, "face", reader.info.width, reader.info.height)
        frames = reader.frames_at(range(0, faces * 5, 5), geometry)
    found = [(f, face) for f, fs in zip(frames, default_detectors()[0].detect(list(frames)), strict=True)
             for face in fs][:faces]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        crops = np.stack([cut_face(f, face, predictor.face_geometry or FaceGeometry(), predictor.resize.size)
                          for f, face in found])
        predictor.frame_scores(crops.transpose(0, 3, 1, 2))
        best = min(best, (time.perf_counter() - start) / len(found) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = load_predictor()
    videos = {n: scene_video(PEOPLE[:n], args.seconds) for n in (1, 2)}
    timed(videos[1], predictor, "all")  # warm-up: weights, detectors
    best: dict[tuple[int, str], tuple[float, float, dict]] = {}
    for _ in range(args.repeat):
        for n, video in videos.items():
            for faces in ("main", "all"):
                run = timed(video, predictor, faces)
                if (n, faces) not in best or run[0] < best[n, faces][0]:
                    best[n, faces] = run
    seconds = args.seconds
    print(f"{seconds:g} s at 1280x720, 25 fps; zero-shot; {args.threads} threads; best of {args.repeat}")
    print(f"{'video':<10} {'faces':<5} {'wall s':>7} {'cpu s':>7} {'x real time':>11}  tracks")
    for (n, faces), (wall, cpu, record) in sorted(best.items()):
        tracks = len(record.get("faces", [])) if faces == "all" else "-"
        print(f"{n} person{'s' if n > 1 else ' '} {faces:<5} {wall:7.1f} {cpu:7.1f} {wall / seconds:11.3f}  {tracks}")
    sampled = best[2, "all"][2]["faces"][0]["face_found_frames"]  # about every sampled frame: there all along
    extra = (best[2, "all"][0] - best[1, "all"][0]) / max(sampled, 1) * 1000
    print(f"--faces all / main on two people: {best[2, 'all'][0] / best[2, 'main'][0]:.2f}x wall, "
          f"{best[2, 'all'][1] / best[2, 'main'][1]:.2f}x cpu")
    print(f"--faces all / main on one person: {best[1, 'all'][0] / best[1, 'main'][0]:.2f}x wall")
    print(f"extra face, whole runs: (all on two people - all on one) / sampled frames = {extra:.1f} ms per frame")
    print(f"extra face, cut and scored alone: {face_cost(videos[2], predictor):.1f} ms per frame (best of 5)")


if __name__ == "__main__":
    main()
