"""Face detectors on real clips: how many frames and clips each finds a face in, and milliseconds per frame.

Reads the real clips in ``../shared/realfaces`` (relative to the repository root; ``SOURCES.tsv`` lists them
and their datasets), decodes 16 frames spread uniformly over each, and runs OpenCV's Haar cascade as the face
crop uses it (frames scaled to 320 px wide) and MTCNN at a few detection widths and smallest face sizes, with
its standard thresholds. A clip counts as having a face when its main face track
(:func:`emovid.faces.track.face_track`) is found in at least 2 of the 16 frames. Time is the detector alone on
a clip's 16 frames at once (decoding excluded), then the cost of 16 frames of a 1280x720 clip, best of
``--repeat`` interleaved runs.

    python benchmarks/bench_detectors.py [--realfaces PATH] [--widths 320 480 640] [--min-faces 0.1 0.05]

Other processes may share the CPU: compare the ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emovid.data.video import open_video, uniform_indices
from emovid.faces.detection import FaceDetector
from emovid.faces.haar import HaarDetector
from emovid.faces.mtcnn import MtcnnDetector
from emovid.faces.track import face_track

FRAMES = 16
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    """What one detector found over all clips."""

    frames_found: int = 0
    clips_found: int = 0
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time over all its threads: less swayed by other processes
    by_dataset: Counter[str] = field(default_factory=Counter)  # frames with a face, per dataset
    hits: set[tuple[str, int]] = field(default_factory=set)  # (clip, frame) pairs with a face


def read_clips(folder: Path) -> list[tuple[str, str, np.ndarray]]:
    """(file name, dataset, uint8 RGB frames (16, H, W, 3)) for every clip in SOURCES.tsv."""
    with open(folder / "SOURCES.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = []
    for row in rows:
        with open_video(folder / row["file"]) as reader:
            frames = reader.frames_at(uniform_indices(reader.info.num_frames, FRAMES))
        clips.append((row["file"], row["dataset"], frames))
    return clips


def run(detector: FaceDetector, clips: list[tuple[str, str, np.ndarray]]) -> Tally:
    tally = Tally()
    detector.detect(list(clips[0][2][:2]))  # warm-up: first-call allocations
    for name, dataset, frames in clips:
        start, cpu_start = time.perf_counter(), time.process_time()
        detections = detector.detect(list(frames))
        tally.seconds += time.perf_counter() - start
        tally.cpu_seconds += time.process_time() - cpu_start
        found = [t for t, faces in enumerate(detections) if faces]
        tally.frames_found += len(found)
        tally.by_dataset[dataset] += len(found)
        tally.hits.update((name, t) for t in found)
        tally.clips_found += face_track(detections) is not None
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realfaces", type=Path, default=REPO.parent / "shared" / "realfaces")
    parser.add_argument("--widths", type=int, nargs="+", default=[320, 480, 640], help="MTCNN detection widths")
    parser.add_argument("--min-faces", type=float, nargs="+", default=[0.1, 0.05],
                        help="MTCNN's smallest faces, as fractions of the short side")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 1280x720 timing; the best counts")
    args = parser.parse_args()

    if not (args.realfaces / "SOURCES.tsv").is_file():
        raise SystemExit(f"no SOURCES.tsv in {args.realfaces}; point --realfaces at the real clips")
    clips = read_clips(args.realfaces)
    total = len(clips) * FRAMES
    print(f"{len(clips)} clips x {FRAMES} frames = {total} frames from {args.realfaces}\n")
    detectors: dict[str, FaceDetector] = {"haar @320": HaarDetector(320)}
    for min_face in args.min_faces:
        for width in args.widths:
            detectors[f"mtcnn @{width} {min_face}"] = MtcnnDetector(min_face=min_face, detect_width=width)
    tallies = {label: run(detector, clips) for label, detector in detectors.items()}

    haar = tallies["haar @320"].hits
    datasets = sorted({dataset for _, dataset, _ in clips})
    sizes = Counter(dataset for _, dataset, _ in clips)
    header = ("detector", "frames", "clips", "ms/frame", "cpu ms", "haar-only", "new")
    print("{:<18} {:>9} {:>7} {:>9} {:>7} {:>10} {:>5}  per dataset".format(*header))
    for label, t in tallies.items():
        per = " ".join(f"{d}:{t.by_dataset[d]}/{sizes[d] * FRAMES}" for d in datasets)
        print(
            f"{label:<18} {t.frames_found:>4}/{total:<4} {t.clips_found:>3}/{len(clips):<3} "
            f"{1000 * t.seconds / total:>9.1f} {1000 * t.cpu_seconds / total:>7.1f} "
            f"{len(haar - t.hits):>10} {len(t.hits - haar):>5}  {per}"
        )
    print("  ms/frame: wall clock; cpu ms: CPU time of all threads. haar-only: frames Haar finds a face in and this")
    print("  detector does not; new: the other way round")

    hd = next((frames for _, _, frames in clips if frames.shape[1:3] == (720, 1280)), None)
    if hd is None:
        return
    print(f"\n{FRAMES} frames of a 1280x720 clip, best of {args.repeat} interleaved runs:")
    best = dict.fromkeys(detectors, float("inf"))
    for _ in range(args.repeat):  # interleaved, so a burst of load from elsewhere hits every detector alike
        for label, detector in detectors.items():
            best[label] = min(best[label], _timed(detector, hd))
    for label, seconds in best.items():
        print(f"  {label:<18} {1000 * seconds:7.0f} ms  ({1000 * seconds / FRAMES:.1f} ms/frame)")


def _timed(detector: FaceDetector, frames: np.ndarray) -> float:
    start = time.perf_counter()
    detector.detect(list(frames))
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
