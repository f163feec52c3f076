"""The generic dataset item and index that every corpus adapter produces and the clip cache consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from emovid.data.source import Reject, VideoSource

MetaValue = str | int | float


@dataclass(frozen=True)
class Entry:
    """One labelled video of a collection.

    Attributes:
        source: where the video is.
        key: unique within the collection and safe as a file name; names the clip in the cache.
        label: the class name, one of the index's ``classes``.
        subject: the person filmed; subject-independent splits never put one subject in two splits.
        meta: flat, dataset-specific facts (RAVDESS's intensity, MEAD's view angle...), kept in reports.
    """

    source: VideoSource
    key: str
    label: str
    subject: str
    meta: Mapping[str, MetaValue] = field(default_factory=dict)


@dataclass
class DatasetIndex:
    """The labelled videos of a collection, the files that could not be placed, and how to split them.

    Attributes:
        dataset: the adapter's name (``ravdess``, ``cremad``...).
        classes: the class names in label-index order.
        root: the folder, archive or file that was indexed.
        filters: the adapter's options that chose the entries (RAVDESS's modalities, say).
        entries: the videos, sorted by key.
        rejects: files found but not usable, each with its reason.
        splits: the default subject-independent split, split name -> subjects.
        note: something a user must know about the split (say, no subjects were given).
        detected: how the format was detected, when it was (``cremad (7442 of the first 2000 ...)``).
    """

    dataset: str
    classes: tuple[str, ...]
    root: str = ""
    filters: dict[str, object] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    splits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    note: str | None = None
    detected: str | None = None

    @property
    def subjects(self) -> tuple[str, ...]:
        """Every subject, in natural order (``2`` before ``10``)."""
        return tuple(sorted({e.subject for e in self.entries}, key=subject_order))


def subject_order(subject: str) -> tuple[int, int, str]:
    """Sort key that puts numeric subjects in numeric order, before any others."""
    return (0, int(subject), "") if subject.isdigit() else (1, 0, subject)
