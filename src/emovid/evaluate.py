"""Evaluation of a run on a split: predictions, ``metrics.json``, confusion matrix and training curves."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from emovid.checkpoint import load_checkpoint
from emovid.config import load_config
from emovid.data.atomic import write_bytes_atomic, write_json_atomic
from emovid.data.cache import ClipCache
from emovid.data.dataset import ClipDataset
from emovid.inference import InferenceOptions, precision_of, probabilities_of_batches
from emovid.metrics import accuracy_by_group, confusion_matrix, summarize
from emovid.plots import plot_confusion_matrix, plot_training_curves, read_metric_logs
from emovid.transforms import EvalClipTransform


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (by validation accuracy), or its last one when it had no validation."""
    for name in ("best.ckpt", "last.ckpt"):
        if (run_dir / "checkpoints" / name).exists():
            return run_dir / "checkpoints" / name
    raise FileNotFoundError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'}")


def evaluate_run(run_dir: str | Path, split: str = "test", tta: int | None = None, device: str | None = None,
                 num_workers: int = 0, progress: bool = True) -> dict:
    """Evaluate a run's best checkpoint on ``split`` ("val", "test" or "train") and write ``<run>/<split>/``.

    ``tta`` and ``device`` default to the run's config (its ``tta`` and ``accelerator``). Writes
    ``metrics.json`` (accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix, per-subject
    accuracy, top confusions), ``confusion_matrix.png`` and ``predictions.csv``.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    model, spec = load_checkpoint(best_checkpoint(run_dir))
    cache = ClipCache.open(config.cache)
    subjects = config.split(cache.splits)[split]
    dataset = ClipDataset(cache, subjects, EvalClipTransform(spec.frames))
    if len(dataset) == 0:
        raise ValueError(f"{config.cache} has no clips of the {split} subjects {list(subjects)}")
    options = InferenceOptions(tta=tta or config.tta, device=device or _device_of(config.accelerator),
                               precision=precision_of(config.precision), batch_size=config.batch_size)
    loader = DataLoader(dataset, batch_size=options.batch_size, num_workers=num_workers,
                        pin_memory=options.torch_device.type == "cuda")
    model.to(options.torch_device)
    probs, labels, metas = probabilities_of_batches(model, loader, spec.mean, spec.std, options, progress)
    preds = probs.argmax(axis=1)
    matrix = confusion_matrix(labels, preds, len(spec.class_names))
    metrics = {
        "split": split,
        "subjects": list(subjects),
        "checkpoint": str(best_checkpoint(run_dir).relative_to(run_dir)),
        "tta": options.tta,
        **summarize(matrix, spec.class_names),
        "per_subject_accuracy": accuracy_by_group(labels, preds, [m["subject"] for m in metas]),
    }
    out = run_dir / split
    write_json_atomic(out / "metrics.json", metrics)
    plot_confusion_matrix(matrix, spec.class_names, out / "confusion_matrix.png",
                          title=f"{run_dir.name} - {split} accuracy {metrics['accuracy']:.1%}")
    write_predictions(out / "predictions.csv", metas, labels, probs, spec.class_names)
    return metrics


def _device_of(accelerator: str) -> str:
    """The inference device of a training accelerator setting (auto, cpu, gpu, cuda...)."""
    return "cpu" if accelerator == "cpu" else "auto"


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
