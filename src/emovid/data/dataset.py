"""PyTorch datasets over a prepared clip cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from emovid.data.cache import ClipCache

# Metadata fields every item carries, whatever the dataset (flat scalars, so the default collate batches them).
ITEM_META = ("key", "subject")

ClipTransform = Callable[[torch.Tensor], torch.Tensor]


class ClipDataset(Dataset):
    """Clips of a cache as ``(frames, label, meta)``: uint8 (T, C, H, W), class index, ``{"key", "subject"}``.

    Args:
        cache: a :class:`ClipCache` or its folder.
        subjects: keep only these subjects (a split); None keeps all.
        transform: applied to the uint8 (T, C, H, W) tensor, e.g. train-time augmentation.
    """

    def __init__(
        self,
        cache: ClipCache | str | Path,
        subjects: Sequence[str] | None = None,
        transform: ClipTransform | None = None,
    ) -> None:
        self.cache = cache if isinstance(cache, ClipCache) else ClipCache.open(cache)
        wanted = set(subjects) if subjects is not None else None
        self.entries = [e for e in self.cache.entries if wanted is None or e["subject"] in wanted]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def labels(self) -> list[int]:
        return [e["label"] for e in self.entries]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict]:
        entry = self.entries[index]
        frames = torch.from_numpy(np.array(self.cache.load(entry["key"])))  # copy out of the memmap
        if self.transform is not None:
            frames = self.transform(frames)
        return frames, entry["label"], {k: entry[k] for k in ITEM_META}
