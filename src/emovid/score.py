"""Score any predictor on labelled videos: accuracy, balanced accuracy, per-class recall, confusions, per clip.

Labels come from a CSV/TSV table, from dataset file names (:func:`emovid.datasets.label_from_name`), or from a
dataset adapter's index (:func:`score_dataset`: any collection emovid reads, with subjects). Class sets meet by
name: a clip whose label the predictor cannot output (``calm`` for a FER2013 model, ``contempt`` for most)
is listed as unscorable and left out of every figure, never counted as a mistake; the classes on either side
only are named in ``metrics["classes"]``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emovid.data.atomic import write_bytes_atomic, write_json_atomic
from emovid.data.entry import DatasetIndex
from emovid.data.source import VideoSource
from emovid.datasets import index_dataset, label_from_name
from emovid.labels import canonical_emotion
from emovid.metrics import accuracy_by_group, confusion_matrix, summarize
from emovid.predict import Failure, Predictor, predict_videos


class ScoreError(ValueError):
    """Nothing to score (no video, no usable label); the message is one line."""


@dataclass
class ScoreReport:
    """What :func:`score_videos` found; ``metrics`` is :func:`emovid.metrics.summarize` plus the extras."""

    metrics: dict
    rows: list[dict]
    unlabelled: list[str] = field(default_factory=list)
    unscorable: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def labels_for(videos: Iterable[VideoSource], table: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]]:
    """Label rows by video (as ``str(video)``): from ``table`` by file name, else from dataset file names.

    Videos without a label are left out.
    """
    found: dict[str, dict[str, str]] = {}
    for video in videos:
        if table is not None:
            row = table.get(video.name)
        else:
            label = label_from_name(video.member or video.path)
            row = {"label": label} if label else None
        if row is not None:
            found[str(video)] = row
    return found


def check_labelled(videos: Sequence[VideoSource], labelled: dict[str, dict[str, str]],
                   missing: Sequence[Failure] = ()) -> None:
    """Raises ScoreError when no video has a label: nothing to score, whatever the model (checked before one loads).

    ``missing``: the inputs that gave no video (see :func:`~emovid.predict.find_videos`), said when there is none.
    """
    if not videos:
        why = "; ".join(f"{f.source}: {f.reason}" for f in missing)
        raise ScoreError(f"nothing to score: no videos{f' ({why})' if why else ''}")
    if not any(str(v) in labelled for v in videos):
        raise ScoreError(f"nothing to score: none of the {len(videos)} videos has a label (labels come from --labels "
                         f"TABLE, or from RAVDESS, CREMA-D or MEAD file names)")


def index_labels(index: DatasetIndex) -> tuple[list[VideoSource], dict[str, dict[str, str]]]:
    """The videos of a dataset index and their label rows by ``str(video)``: label, subject and metadata."""
    rows = {str(e.source): {**{k: str(v) for k, v in e.meta.items()}, "label": e.label, "subject": e.subject}
            for e in index.entries}
    return [e.source for e in index.entries], rows


def class_meeting(model: Sequence[str], data: Sequence[str]) -> dict[str, list[str]]:
    """How a model's classes and a dataset's meet by name: shared, the model's only (predicting one is a mistake on
    this data) and the data's only (clips the model cannot get right, left out)."""
    return {"model": list(model), "data": list(data), "shared": [c for c in data if c in model],
            "model_only": [c for c in model if c not in data], "data_only": [c for c in data if c not in model]}


def score_dataset(data: str | Path, predictor: Predictor, dataset: str = "auto", group_column: str | None = "subject",
                  batch_size: int | None = None, **options) -> tuple[ScoreReport, DatasetIndex]:
    """Score a predictor on a whole collection read by a dataset adapter (cross-dataset evaluation: a RAVDESS model
    on CREMA-D, say); ``options`` are the adapter's. Accuracy per subject by default."""
    index = index_dataset(data, dataset, **options)
    videos, labelled = index_labels(index)
    report = score_videos(videos, predictor, group_column=group_column, batch_size=batch_size, labelled=labelled,
                          data_classes=index.classes)
    return report, index


def score_videos(
    videos: Sequence[VideoSource],
    predictor: Predictor,
    table: dict[str, dict[str, str]] | None = None,
    group_column: str | None = None,
    batch_size: int | None = None,
    labelled: dict[str, dict[str, str]] | None = None,
    data_classes: Sequence[str] | None = None,
) -> ScoreReport:
    """Predict every labelled video once and score the predictions against the labels.

    Args:
        videos: the videos; those without a label are reported in ``unlabelled`` and not run.
        predictor: any predictor (zero-shot, checkpoint, ONNX).
        table: labels by file name (:func:`emovid.labels.read_label_table`); None reads dataset file names.
        group_column: a column of ``table`` (say ``dataset``) to give accuracy per group as well.
        batch_size: clips per model call (default: the predictor's options).
        labelled: label rows by ``str(video)`` (see :func:`index_labels`), instead of ``table``.
        data_classes: the data's class set, in order (default: the labels found).

    Raises:
        ScoreError: no video has a label the predictor can output; raised before any video is read.
    """
    names = tuple(canonical_emotion(c) or c for c in predictor.spec.class_names)
    if labelled is None:
        labelled = labels_for(videos, table)
    check_labelled(videos, labelled)
    report = ScoreReport(metrics={}, rows=[], unlabelled=[str(v) for v in videos if str(v) not in labelled])
    runnable = []
    for video in videos:
        row = labelled.get(str(video))
        if row is not None and row["label"] in names:
            runnable.append(video)
        elif row is not None:
            report.unscorable.append({"file": str(video), "label": row["label"]})
    if not runnable:
        labels = sorted({u["label"] for u in report.unscorable})
        raise ScoreError(f"nothing to score: the {len(report.unscorable)} labelled videos are labelled "
                         f"{', '.join(labels)}, which this model cannot output (its classes: {', '.join(names)})")
    truth, predicted, groups = [], [], []
    for result in predict_videos(runnable, predictor, batch_size):
        if isinstance(result, Failure):
            report.failures.append(result)
            continue
        row = labelled[result.source]
        best = int(np.argmax(result.probabilities))
        truth.append(names.index(row["label"]))
        predicted.append(best)
        groups.append(row.get(group_column, "") if group_column else "")
        report.rows.append({
            "file": result.source,
            "label": row["label"],
            "prediction": names[best],
            "correct": names[best] == row["label"],
            "face_found": result.meta.get("face_found"),
            "probabilities": {c: round(float(p), 6) for c, p in zip(names, result.probabilities, strict=True)},
        })
    metrics = summarize(confusion_matrix(truth, predicted, len(names)), names)
    metrics["per_class_recall"] = {c: v["recall"] for c, v in metrics["per_class"].items() if v["support"]}
    faces = [r["face_found"] for r in report.rows if r["face_found"] is not None]
    metrics["faces_found"] = f"{sum(faces)}/{len(faces)}" if faces else None
    if group_column:
        metrics["accuracy_by_" + group_column] = accuracy_by_group(truth, predicted, groups)
    found = {row["label"] for row in labelled.values()}
    data = list(data_classes) if data_classes is not None else [c for c in (*names, *sorted(found)) if c in found]
    metrics["classes"] = class_meeting(names, list(dict.fromkeys(data)))
    metrics["unscorable"] = report.unscorable
    metrics["unlabelled"] = len(report.unlabelled)
    metrics["failed"] = [{"file": f.source, "error": f.reason} for f in report.failures]
    report.metrics = metrics
    return report


def write_score_outputs(report: ScoreReport, class_names: tuple[str, ...], out: Path, title: str = "") -> list[Path]:
    """``metrics.json``, ``predictions.csv`` and ``confusion_matrix.png`` in ``out``; returns their paths.

    Raises:
        ScoreError: no clip was scored (every labelled video failed): nothing is written.
    """
    from emovid.plots import plot_confusion_matrix

    if not report.rows:
        raise ScoreError(f"nothing to score: none of the {len(report.failures)} labelled videos could be read")
    out.mkdir(parents=True, exist_ok=True)
    names = tuple(canonical_emotion(c) or c for c in class_names)
    metrics_path, csv_path, png_path = out / "metrics.json", out / "predictions.csv", out / "confusion_matrix.png"
    write_json_atomic(metrics_path, report.metrics)
    lines = [["file", "label", "prediction", "correct", "face_found", *names]]
    lines += [[r["file"], r["label"], r["prediction"], r["correct"], "" if r["face_found"] is None else r["face_found"],
               *(r["probabilities"][c] for c in names)] for r in report.rows]
    write_bytes_atomic(csv_path, _csv(lines).encode())
    plot_confusion_matrix(np.asarray(report.metrics["confusion_matrix"]), names, png_path, title)
    return [metrics_path, csv_path, png_path]


def _csv(lines: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()
