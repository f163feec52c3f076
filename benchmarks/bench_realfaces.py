"""Zero-shot accuracy on real labelled clips: each encoder alone, the ensemble, and its log-loss weights.

Reads ``../shared/realfaces`` (33 clips with a basic-emotion label and one contempt clip; ``SOURCES.tsv``
gives the labels and the dataset of each) through ``emovid score``'s library function. Prints, per zero-shot
model (the ensemble, ``balanced-zero-shot``, each encoder alone): accuracy on all clips, on the trusted group
(MEAD, DFEW, RAVDESS: the dataset's own label), log loss, faces found. Then the ensemble weights with the
lowest log loss, on a 0.1 grid, for the averaged clip probabilities of the single encoders: the ``weight``
values in :mod:`emovid.zero_shot` come from here.

    python benchmarks/bench_realfaces.py [--realfaces ../shared/realfaces] [--frames 16]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from emovid.labels import read_label_table
from emovid.predict import Predictor, find_videos
from emovid.score import score_videos
from emovid.zero_shot import ENSEMBLE, ZERO_SHOT_MODELS, zero_shot_predictor

TRUSTED = ("MEAD", "DFEW", "RAVDESS")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realfaces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "realfaces")
    p.add_argument("--frames", type=int, default=16)
    return p.parse_args()


def clip_probabilities(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, K) probabilities, (N,) label indices and the file names of scored rows, in file order."""
    rows = sorted(rows, key=lambda r: r["file"])
    names = list(rows[0]["probabilities"])
    probs = np.array([[r["probabilities"][c] for c in names] for r in rows])
    return probs, np.array([names.index(r["label"]) for r in rows]), [Path(r["file"]).name for r in rows]


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-6, 1)).mean())


def main() -> None:
    args = parse_args()
    table = read_label_table(args.realfaces / "SOURCES.tsv")
    videos, _ = find_videos([str(args.realfaces)])
    print(f"{len(videos)} videos in {args.realfaces}\n")
    print("| model | all | trusted group | log loss | faces found | seconds |")
    print("|---|---|---|---|---|---|")
    singles = {}
    for name in ZERO_SHOT_MODELS:
        start = time.perf_counter()
        report = score_videos(videos, Predictor(*zero_shot_predictor(name, frames=args.frames)), table)
        seconds = time.perf_counter() - start
        probs, labels, files = clip_probabilities(report.rows)
        right = probs.argmax(1) == labels
        trusted = [table[f]["dataset"] in TRUSTED for f in files]
        print(f"| {name} | {right.sum()}/{len(right)} ({right.mean():.1%}) | {right[trusted].sum()}/{sum(trusted)} | "
              f"{log_loss(probs, labels):.3f} | {report.metrics['faces_found']} | {seconds:.0f} |")
        if len(ZERO_SHOT_MODELS[name]) == 1:
            singles[ZERO_SHOT_MODELS[name][0]] = (probs, labels)
    members = ZERO_SHOT_MODELS[ENSEMBLE]
    labels = singles[members[0]][1]
    grid = [w for w in itertools.product(np.arange(11) / 10, repeat=len(members)) if abs(sum(w) - 1) < 1e-9]
    scored = [(log_loss(sum(wi * singles[m][0] for wi, m in zip(w, members, strict=True)), labels), w) for w in grid]
    best_loss, best = min(scored)
    mixed = sum(wi * singles[m][0] for wi, m in zip(best, members, strict=True))
    equal = sum(singles[m][0] for m in members) / len(members)
    print(f"\nlowest log loss of the averaged clip probabilities: {best_loss:.3f} with weights "
          f"{dict(zip(members, (round(float(w), 1) for w in best), strict=True))}, "
          f"{int((mixed.argmax(1) == labels).sum())}/{len(labels)} right; equal weights: "
          f"{log_loss(equal, labels):.3f}, {int((equal.argmax(1) == labels).sum())}/{len(labels)} right")


if __name__ == "__main__":
    main()
