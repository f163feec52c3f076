"""Pictures of results: confusion matrix, training curves. Metric maths lives in :mod:`emovid.metrics`."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # never pyplot: no global figure state, a notebook's backend left as it is


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for t in range(len(class_names)):
        for p in range(len(class_names)):
            if matrix[t, p]:
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center",
                        color="white" if rates[t, p] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def read_metric_logs(paths: Sequence[Path]) -> dict[str, list[tuple[int, float]]]:
    """Series of (epoch, value) per metric from Lightning CSV logs (several files when a run resumed)."""
    series: dict[str, dict[int, float]] = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                epoch = row.get("epoch")
                if not epoch:
                    continue
                for key, value in row.items():
                    if key not in ("epoch", "step") and value not in ("", None):
                        series.setdefault(key, {})[int(float(epoch))] = float(value)
    return {key: sorted(values.items()) for key, values in series.items()}


def plot_training_curves(series: dict[str, list[tuple[int, float]]], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, training against validation, saved as PNG."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("loss", "acc"), strict=True):
        for split in ("train", "val"):
            points = series.get(f"{split}/{kind}_epoch") or series.get(f"{split}/{kind}") or []
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(np.asarray(epochs) + 1, values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if kind == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
