"""Dataset adapters: each turns a corpus's folder or archive into generic entries with its classes and splits.

An adapter is a function ``scan(root, **options) -> DatasetIndex``; :data:`ADAPTERS` names them, and
:func:`index_dataset` picks one by name or, with ``"auto"``, from the names it finds.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emovid.data.entry import DatasetIndex
from emovid.data.source import iter_sources
from emovid.datasets import cremad, folder, manifest, mead, ravdess
from emovid.datasets.common import path_text

ADAPTERS: dict[str, Callable[..., DatasetIndex]] = {
    "ravdess": ravdess.scan,
    "cremad": cremad.scan,
    "mead": mead.scan,
    "folder": folder.scan,
    "manifest": manifest.scan,
}
# Adapters whose file names carry the label: emotion name from a file name or path, None if not theirs.
NAME_LABELS: dict[str, Callable[[str], str | None]] = {
    "ravdess": ravdess.label_of,
    "cremad": cremad.label_of,
    "mead": mead.label_of,
}
DATASETS = ("auto", *ADAPTERS)
_SAMPLE = 2000  # names read to detect a format


def label_from_name(path: str | Path) -> str | None:
    """The emotion a RAVDESS, CREMA-D or MEAD file name (or MEAD path) encodes, in emovid's names; else None."""
    text = Path(path).as_posix()
    for label_of in NAME_LABELS.values():
        if label := label_of(text):
            return label
    return None


def detect(data: str | Path) -> tuple[str, str]:
    """The adapter for ``data`` and why: a CSV/TSV file is a manifest; else the dataset whose names most of the
    first videos follow; else a folder per class when the folders are emotion names.

    Raises:
        ValueError: no format fits (the message says what was found and how to choose one).
    """
    data = Path(data)
    if data.is_file() and data.suffix.lower() in manifest.SUFFIXES:
        return "manifest", f"{data.name} is a {data.suffix[1:].upper()} file"
    votes: Counter[str] = Counter()
    seen = 0
    for source in iter_sources(data, []):
        if seen >= _SAMPLE:
            break
        seen += 1
        text = path_text(source)
        for name, label_of in NAME_LABELS.items():
            if label_of(text):
                votes[name] += 1
    if seen == 0:
        raise ValueError(f"{data}: no videos found, so no format to detect")
    if votes:
        best, count = votes.most_common(1)[0]
        if count * 2 > seen:
            return best, f"{count} of the first {seen} videos have {best} names"
    classes = folder.emotion_folders(data) if data.is_dir() or data.suffix.lower() == ".zip" else set()
    if len(classes) >= 2:
        return "folder", f"videos sit in folders named after emotions ({', '.join(sorted(classes))})"
    raise ValueError(f"{data}: cannot tell the format from the names of {seen} videos; choose one with --dataset "
                     f"({', '.join(ADAPTERS)})")


def index_dataset(data: str | Path, dataset: str = "auto", **options: Any) -> DatasetIndex:
    """Index ``data`` with the named adapter (``auto``: the one :func:`detect` picks; ``index.detected`` says why).

    ``options`` are the adapter's own (RAVDESS's modalities, MEAD's views); those set to None are left out,
    and one the adapter does not take is an error.

    Raises:
        ValueError: an unknown dataset name or option, or a format that cannot be detected.
        FileNotFoundError: ``data`` does not exist.
    """
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data}: no such file or folder")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    detected = None
    if dataset == "auto":
        dataset, why = detect(data)
        detected = f"{dataset} ({why})"
    adapter = ADAPTERS[dataset]
    given = {k: v for k, v in options.items() if v is not None}
    takes = set(inspect.signature(adapter).parameters) - {"root"}
    if stray := sorted(set(given) - takes):
        names = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise ValueError(f"{names} do not apply to {dataset} data" + (f" (it takes {', '.join(sorted(takes))})"
                                                                      if takes else ""))
    index = adapter(data, **given)
    index.detected = detected
    return index
