"""Classification metrics from a confusion matrix: pure maths, no plotting (see :mod:`emovid.plots`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
                     ) -> np.ndarray:
    """Counts (num_classes, num_classes): rows are true classes, columns predicted ones."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def summarize(matrix: np.ndarray, class_names: Sequence[str], top_confusions: int = 5) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1 and the most frequent confusions.

    Balanced accuracy and macro-F1 average over the classes present in the true labels (as scikit-learn's
    balanced accuracy does); a class never predicted has precision 0.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _safe_divide(hits, predicted)
    recall = _safe_divide(hits, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    present = support > 0
    off_diagonal = [
        (int(matrix[t, p]), t, p) for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t, p]
    ]
    off_diagonal.sort(key=lambda item: (-item[0], item[1], item[2]))
    total = int(matrix.sum())
    return {
        "num_samples": total,
        "accuracy": float(hits.sum() / total) if total else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": matrix.tolist(),
        "top_confusions": [
            {"true": class_names[t], "predicted": class_names[p], "count": count}
            for count, t, p in off_diagonal[:top_confusions]
        ],
    }


def accuracy_by_group(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                      groups: Sequence[int | str]) -> dict[str, float]:
    """Accuracy within each group (for example per actor), keyed by the group as a string."""
    correct: dict[str, list[bool]] = {}
    for truth, pred, group in zip(y_true, y_pred, groups, strict=True):
        correct.setdefault(str(group), []).append(truth == pred)
    return {group: float(np.mean(hits)) for group, hits in sorted(correct.items(), key=lambda kv: kv[0].zfill(4))}
