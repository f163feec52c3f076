"""Evaluation of a run on a split: predictions, ``metrics.json``, confusion matrix and training curves."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from emovid.checkpoint import InferenceSpec, load_checkpoint
from emovid.config import load_config
from emovid.data.atomic import write_bytes_atomic, write_json_atomic
from emovid.data.cache import ClipCache
from emovid.data.dataset import ClipDataset
from emovid.metrics import accuracy_by_group, confusion_matrix, summarize
from emovid.plots import plot_confusion_matrix, plot_training_curves, read_metric_logs
from emovid.transforms import EvalClipTransform, normalize


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (by validation accuracy), or its last one when it had no validation."""
    for name in ("best.ckpt", "last.ckpt"):
        if (run_dir / "checkpoints" / name).exists():
            return run_dir / "checkpoints" / name
    raise FileNotFoundError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'}")


@torch.inference_mode()
def predict_clips(model: nn.Module, spec: InferenceSpec, loader: DataLoader, tta: int = 1,
                  progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Class probabilities (N, classes), labels (N,) and item metadata for every clip of a loader.

    With ``tta=2`` the probabilities average the clip and its horizontal mirror.
    """
    device = next(model.parameters()).device
    probs, labels, metas = [], [], []
    for clips, batch_labels, batch_meta in tqdm(loader, desc="evaluate", unit="batch", disable=not progress,
                                                leave=False):
        x = normalize(clips.to(device), spec.mean, spec.std)
        p = model(x).softmax(dim=-1)
        if tta == 2:
            p = (p + model(x.flip(-1)).softmax(dim=-1)) / 2
        probs.append(p.float().cpu())
        labels.append(batch_labels)
        metas.extend({k: (v[i].item() if torch.is_tensor(v) else v[i]) for k, v in batch_meta.items()}
                     for i in range(len(batch_labels)))
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), metas


def evaluate_run(run_dir: str | Path, split: str = "test", tta: int = 1, num_workers: int = 0,
                 progress: bool = True) -> dict:
    """Evaluate a run's best checkpoint on ``split`` ("val" or "test") and write ``<run>/<split>/``.

    Writes ``metrics.json`` (accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix,
    per-subject accuracy, top confusions), ``confusion_matrix.png`` and ``predictions.csv``.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    model, spec = load_checkpoint(best_checkpoint(run_dir))
    cache = ClipCache.open(config.cache)
    subjects = config.split(cache.splits)[split]
    dataset = ClipDataset(cache, subjects, EvalClipTransform(spec.frames))
    if len(dataset) == 0:
        raise ValueError(f"{config.cache} has no clips of the {split} subjects {list(subjects)}")
    loader = DataLoader(dataset, batch_size=config.batch_size, num_workers=num_workers)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    probs, labels, metas = predict_clips(model, spec, loader, tta=tta, progress=progress)
    preds = probs.argmax(axis=1)
    matrix = confusion_matrix(labels, preds, len(spec.class_names))
    metrics = {
        "split": split,
        "subjects": list(subjects),
        "checkpoint": str(best_checkpoint(run_dir).relative_to(run_dir)),
        "tta": tta,
        **summarize(matrix, spec.class_names),
        "per_subject_accuracy": accuracy_by_group(labels, preds, [m["subject"] for m in metas]),
    }
    out = run_dir / split
    write_json_atomic(out / "metrics.json", metrics)
    plot_confusion_matrix(matrix, spec.class_names, out / "confusion_matrix.png",
                          title=f"{run_dir.name} - {split} accuracy {metrics['accuracy']:.1%}")
    write_predictions(out / "predictions.csv", metas, labels, probs, spec.class_names)
    return metrics


def write_predictions(path: Path, metas: list[dict], labels: np.ndarray, probs: np.ndarray,
                      class_names: tuple[str, ...]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["key", "subject", "true", "predicted", *class_names])
    for meta, label, p in zip(metas, labels, probs, strict=True):
        writer.writerow([meta["key"], meta["subject"], class_names[label], class_names[int(p.argmax())],
                         *(f"{v:.5f}" for v in p)])
    write_bytes_atomic(path, buffer.getvalue().encode())


def write_training_curves(run_dir: Path) -> None:
    logs = sorted((run_dir / "logs").glob("version_*/metrics.csv"))
    if logs:
        plot_training_curves(read_metric_logs(logs), run_dir / "training_curves.png", title=run_dir.name)
