"""Dataset adapters: each turns a corpus's folder or archive into generic entries with its classes and splits.

An adapter is a function ``scan(root, **options) -> DatasetIndex``; :data:`ADAPTERS` names them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from emovid.data.entry import DatasetIndex
from emovid.datasets import ravdess

ADAPTERS: dict[str, Callable[..., DatasetIndex]] = {
    "ravdess": ravdess.scan,
}


def index_dataset(data: str | Path, dataset: str = "ravdess", **options: Any) -> DatasetIndex:
    """Index ``data`` with the named adapter; ``options`` are the adapter's own (RAVDESS's modalities, say).

    Raises:
        ValueError: an unknown dataset name.
        FileNotFoundError: ``data`` does not exist.
    """
    if dataset not in ADAPTERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(ADAPTERS)}")
    return ADAPTERS[dataset](Path(data), **options)
