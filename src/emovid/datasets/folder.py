"""A folder per class: ``happy/clip.mp4``; the class is the first folder below the root, spelled emovid's way.

Such a collection names no subjects, so it is split by file (a stable hash of the path) and the index says
so loudly: clips of one person can end up in train and test.
"""

from __future__ import annotations

from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry
from emovid.data.source import Reject, VideoSource, iter_sources
from emovid.datasets.common import (
    DatasetNameError,
    class_order,
    collect,
    file_key,
    hash_split,
    no_subjects_note,
    relative_parts,
)
from emovid.labels import canonical_emotion


def class_of(parts: tuple[str, ...]) -> str:
    """The class a relative path's first folder names: a known emotion in emovid's spelling (``Happiness`` is
    ``happy``), any other folder name lower-cased.

    Raises:
        DatasetNameError: the file is not inside a class folder.
    """
    if len(parts) < 2:
        raise DatasetNameError("not in a class folder (expected CLASS/video.mp4)")
    folder = parts[0].strip()
    return canonical_emotion(folder) or folder.lower()


def emotion_folders(root: Path, limit: int = 2000) -> set[str]:
    """The class folders of the first ``limit`` videos under ``root`` that are emotion names (for detection)."""
    found: set[str] = set()
    for i, source in enumerate(iter_sources(root, [])):
        if i >= limit:
            break
        parts = relative_parts(root, source)
        if len(parts) >= 2 and canonical_emotion(parts[0]):
            found.add(parts[0])
    return found


def scan(root: str | Path) -> DatasetIndex:
    """Index a folder per class (zips count as folders). Subjects are the files themselves: see the module."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    if not root.is_dir() and root.suffix.lower() != ".zip":
        raise ValueError(f"{root}: a folder per class needs a folder or a zip, not a single file")
    index = DatasetIndex("folder", (), str(root.resolve()))

    def entry_of(source: VideoSource) -> Entry:
        parts = relative_parts(root, source)
        key = file_key(parts)
        return Entry(source, key, class_of(parts), key, {"path": "/".join(parts)})

    collect(index, root, entry_of)
    index.classes = class_order({e.label for e in index.entries})
    if len(index.classes) == 1:
        index.rejects.append(Reject(str(root), f"only one class folder ({index.classes[0]}): nothing to tell apart"))
    index.splits = hash_split([e.key for e in index.entries])
    index.note = no_subjects_note(root)
    return index
