"""Zero-shot accuracy on real labelled clips, with the evidence each default choice needs.

Reads a folder of real clips with a ``SOURCES.tsv`` (file, dataset, label: the development set
``../shared/realfaces``, 33 clips with a basic-emotion label, not distributed). Every member of
:func:`emovid.zero_shot.encoders` classifies every sampled frame of every clip once; the variants (the default
plain combination, log-mean, expressive pooling, the old fitted weights, the balanced ensemble, each member alone,
the ensemble with a member added) are then combined from those frame probabilities, so they differ only in how
they pool. For each variant: clips right of all, of the trusted group (the datasets' own labels: MEAD, DFEW,
RAVDESS), a bootstrap 90% interval over clips, per-class recall, and the **decision rule**:

    a variant may replace the default only if it beats the plain combination by >= 3 clips on all clips
    AND by >= 1 clip on the trusted group, AND it brings no class's recall to 0.

33 clips resolve nothing finer than about 3 clips, so the rule keeps noise from choosing defaults; nothing
here is fitted. The last line runs the shipped default end to end (``emovid predict``'s path) as a check.

    python benchmarks/bench_realfaces.py [--realfaces ../shared/realfaces] [--frames 16]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from emovid.data.video import Resize, VideoError, read_clip
from emovid.faces import FaceGeometry
from emovid.labels import read_label_table
from emovid.predict import Predictor, find_videos
from emovid.score import score_videos
from emovid.transforms import normalize
from emovid.zero_shot import (
    ENSEMBLE,
    EXPRESSIVE_FLOOR,
    FER2013_COUNTS,
    FER_ORDER,
    ZERO_SHOT_CLASSES,
    ZERO_SHOT_MODELS,
    encoders,
    ensemble_predictor,
    zero_shot_predictor,
)

TRUSTED = ("MEAD", "DFEW", "RAVDESS")
MARGIN_ALL, MARGIN_TRUSTED = 3, 1  # clips a change of default must win by
BOOTSTRAP = 2000
FramesByMember = dict[str, np.ndarray]  # member -> (T, 7) frame probabilities in FER_ORDER


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realfaces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "realfaces")
    p.add_argument("--frames", type=int, default=16)
    return p.parse_args()


def frame_probabilities(videos: list, members: list[str], frames: int) -> tuple[list[FramesByMember], list[bool]]:
    """Per clip, each member's (T, 7) frame probabilities on the shared face crop, and whether a face was found."""
    model, spec = ensemble_predictor(members, name="all-members", frames=frames)
    geometry, resize = FaceGeometry.from_dict(spec.face_geometry), Resize(**spec.resize)
    out, faces = [], []
    for video in videos:
        clip = read_clip(video, frames, resize, "face", geometry)
        x = normalize(torch.from_numpy(clip.frames[None]), spec.mean, spec.std)  # (1, T, 3, S, S)
        with torch.inference_mode():
            out.append({m: model.member_probabilities(i, x)[0].numpy() for i, m in enumerate(members)})
        faces.append(bool(clip.meta["face_found"]))
    return out, faces


def pooled(frames: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "log-mean":
        logs = np.log(np.clip(frames, 1e-12, 1)).mean(0)
        return np.exp(logs - logs.max()) / np.exp(logs - logs.max()).sum()
    if pooling == "expressive":
        w = 1 - frames[:, FER_ORDER.index("neutral")] + EXPRESSIVE_FLOOR
        return (frames * w[:, None]).sum(0) / w.sum()
    return frames.mean(0)


def variant(members: tuple[str, ...], pooling: str = "mean", weights: tuple[float, ...] | None = None,
            balanced: bool = False) -> Callable[[FramesByMember], np.ndarray]:
    """A way to turn one clip's frame probabilities into clip probabilities (7,), as ZeroShotEnsemble does."""
    shares = np.array(weights or [1.0] * len(members)) / sum(weights or [1.0] * len(members))
    prior = np.array(FER2013_COUNTS, float) / sum(FER2013_COUNTS)

    def combine(clip: FramesByMember) -> np.ndarray:
        per_member = []
        for m in members:
            p = clip[m]
            if balanced and encoders()[m].train_counts is not None:
                p = p / prior
                p = p / p.sum(1, keepdims=True)
            per_member.append(pooled(p, pooling))
        stacked = np.stack(per_member)
        if pooling == "log-mean":
            logs = (np.log(np.clip(stacked, 1e-12, 1)) * shares[:, None]).sum(0)
            return np.exp(logs - logs.max()) / np.exp(logs - logs.max()).sum()
        return (stacked * shares[:, None]).sum(0)

    return combine


def recalls(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {ZERO_SHOT_CLASSES[c]: float((predicted[labels == c] == c).mean()) for c in np.unique(labels)}


def main() -> None:
    args = parse_args()
    table = read_label_table(args.realfaces / "SOURCES.tsv")
    videos, _ = find_videos([str(args.realfaces)])
    kept = [v for v in videos if table.get(Path(str(v.path)).name, {}).get("label") in ZERO_SHOT_CLASSES]
    names = [Path(str(v.path)).name for v in kept]
    labels = np.array([ZERO_SHOT_CLASSES.index(table[n]["label"]) for n in names])
    trusted = np.array([table[n].get("dataset", "") in TRUSTED for n in names])
    members = list(encoders())
    start = time.perf_counter()
    try:
        clips, faces = frame_probabilities(kept, members, args.frames)
    except VideoError as exc:
        raise SystemExit(f"bench_realfaces: {exc}") from None
    print(f"{len(kept)} clips with a basic label in {args.realfaces} ({trusted.sum()} trusted), faces found "
          f"{sum(faces)}/{len(kept)}; {len(members)} members x {args.frames} frames in "
          f"{time.perf_counter() - start:.0f} s\n")

    base = ZERO_SHOT_MODELS[ENSEMBLE]
    variants = {f"{ENSEMBLE} (default: plain mean, equal weights)": variant(base),
                "log-mean (geometric) of the same": variant(base, "log-mean"),
                "expressive pooling, equal weights": variant(base, "expressive"),
                "expressive, weights 0.6/0.3/0.1 (the old default)": variant(base, "expressive", (0.6, 0.3, 0.1)),
                "balanced (FER2013 prior divided out)": variant(base, balanced=True)}
    variants.update({f"{m} alone": variant((m,)) for m in members})
    variants.update({f"plain mean + {m}": variant((*base, m)) for m in members if m not in base})

    rng = np.random.default_rng(0)
    resamples = rng.integers(0, len(kept), size=(BOOTSTRAP, len(kept)))
    baseline = None
    print("| variant | all | 90% interval | trusted | per-class recall | rule vs the default |")
    print("|---|---|---|---|---|---|")
    for name, combine in variants.items():
        predicted = np.array([int(combine(c).argmax()) for c in clips])
        right = predicted == labels
        low, high = np.percentile(right[resamples].sum(1), [5, 95])
        recall = recalls(predicted, labels)
        if baseline is None:
            baseline, base_recall, verdict = right, recall, "(the default)"
        else:
            gain, gain_trusted = int(right.sum() - baseline.sum()), int(right[trusted].sum() - baseline[trusted].sum())
            zeroed = [c for c, r in recall.items() if r == 0 and base_recall[c] > 0]
            passes = gain >= MARGIN_ALL and gain_trusted >= MARGIN_TRUSTED and not zeroed
            verdict = (f"{gain:+d} all, {gain_trusted:+d} trusted"
                       + (f", zeroes {', '.join(zeroed)}" if zeroed else "") + (": PASSES" if passes else ": stays"))
        per_class = ", ".join(f"{c} {r:.0%}" for c, r in recall.items())
        print(f"| {name} | {right.sum()}/{len(right)} | {low:.0f}-{high:.0f} | {right[trusted].sum()}/{trusted.sum()} "
              f"| {per_class} | {verdict} |")

    start = time.perf_counter()
    report = score_videos(kept, Predictor(*zero_shot_predictor(ENSEMBLE, frames=args.frames)), table)
    print(f"\ncheck, the shipped default end to end: accuracy {report.metrics['accuracy']:.1%} "
          f"({time.perf_counter() - start:.0f} s), faces found {report.metrics['faces_found']}")


if __name__ == "__main__":
    main()
