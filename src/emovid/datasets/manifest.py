"""A CSV or TSV manifest for any other collection: ``path,label[,subject]`` and any further columns as metadata.

Paths are relative to the manifest's folder (or absolute); labels are spelled emovid's way where emovid knows
the emotion (``Surprise`` is ``surprised``) and kept, lower-cased, where it does not. With a ``subject``
column the split is by subject; without one it is by file, and the index says so loudly.
"""

from __future__ import annotations

from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry
from emovid.data.source import Reject, VideoSource
from emovid.datasets.common import class_order, file_key, hash_split, no_subjects_note
from emovid.datasets.splits import normalise_subject, proportional_split
from emovid.labels import FILE_COLUMNS, LabelError, canonical_emotion, read_table

SUFFIXES = (".csv", ".tsv")


def scan(root: str | Path) -> DatasetIndex:
    """Index the videos a manifest lists.

    Rows whose file is missing, whose subject is empty while others have one, or that repeat a file are
    rejected with the reason. The manifest is read as it is: its files are not searched for other videos.

    Raises:
        ValueError: the manifest cannot be read or lacks the ``label`` or file column (one line naming it).
    """
    path = Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest file")
    try:
        rows, file_column = read_table(path)
    except LabelError as exc:
        raise ValueError(str(exc)) from None
    with_subjects = any(row.get("subject") for row in rows)
    index = DatasetIndex("manifest", (), str(path.resolve()))
    seen: dict[str, str] = {}
    base = path.parent
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        listed = row[file_column]
        where = f"{path}:{number}"
        video = Path(listed) if Path(listed).is_absolute() else base / listed
        if not video.is_file():
            index.rejects.append(Reject(f"{where}: {listed}", "no such file"))
            continue
        key = file_key(Path(listed).parts)
        if key in seen:
            index.rejects.append(Reject(f"{where}: {listed}", f"listed before, as {seen[key]}"))
            continue
        subject = normalise_subject(row.get("subject", ""))
        if with_subjects and not subject:
            index.rejects.append(Reject(f"{where}: {listed}", "no subject, while other rows have one"))
            continue
        seen[key] = listed
        label = canonical_emotion(row["label"]) or row["label"].lower()
        meta = {k: v for k, v in row.items() if k not in (file_column, "label", "subject", *FILE_COLUMNS)}
        index.entries.append(Entry(VideoSource(video), key, label, subject if with_subjects else key, meta))
    index.entries.sort(key=lambda e: e.key)
    index.classes = class_order({e.label for e in index.entries})
    if with_subjects:
        index.splits = proportional_split(index.subjects)
    else:
        index.splits = hash_split([e.key for e in index.entries])
        index.note = no_subjects_note(path)
    return index
