"""Emotion labels of labelled videos: one spelling per emotion, and labels from tables.

Datasets and models spell emotions differently (``surprise``/``surprised``, ``fear``/``fearful``, CREMA-D's
``ANG``); :func:`canonical_emotion` maps them all onto emovid's names, plus ``contempt`` (MEAD, AffectNet),
so class sets meet by name and a label a model cannot output is seen as such, never counted wrong. Labels
from dataset file names are the adapters' job: :func:`emovid.datasets.label_from_name`.
"""

from __future__ import annotations

import csv
from pathlib import Path

CONTEMPT = "contempt"
# emovid's names, in the order class sets list them (RAVDESS's eight, then MEAD's and AffectNet's contempt).
KNOWN_EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", CONTEMPT,
)
_SYNONYMS = {
    "neutral": "neutral", "neu": "neutral", "neutrality": "neutral",
    "calm": "calm",
    "happy": "happy", "happiness": "happy", "hap": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry", "ang": "angry",
    "fearful": "fearful", "fear": "fearful", "fea": "fearful",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "surprised": "surprised", "surprise": "surprised", "sur": "surprised",
    "contempt": CONTEMPT, "con": CONTEMPT,
}
FILE_COLUMNS = ("file", "path", "video", "filename")


class LabelError(ValueError):
    """A labels file that cannot be read; the message is one line naming the file."""


def canonical_emotion(text: str) -> str | None:
    """emovid's name for an emotion however it is spelled (``Surprise``, ``FEA``, ``sadness``), else None."""
    return _SYNONYMS.get(text.strip().lower())


def read_table(path: str | Path) -> tuple[list[dict[str, str]], str]:
    """The rows of a CSV or TSV file with a ``label`` column and a file column, and the file column's name.

    Column names are lower-cased and values stripped; rows without a file or a label are skipped. Tabs in the
    header mean TSV.

    Raises:
        LabelError: unreadable file, or no such columns.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read the labels file ({exc.__class__.__name__})") from None
    first = text.splitlines()[0] if text else ""
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if "\t" in first else ",")
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    file_column = next((c for c in FILE_COLUMNS if c in fields), None)
    if "label" not in fields or file_column is None:
        raise LabelError(f"{path}: needs a header with a 'label' column and a file column "
                         f"({', '.join(FILE_COLUMNS)}); found {', '.join(fields) or 'nothing'}")
    rows = []
    for raw in reader:
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if row.get(file_column) and row.get("label"):
            rows.append(row)
    return rows, file_column


def read_label_table(path: str | Path) -> dict[str, dict[str, str]]:
    """Rows of a CSV or TSV labels file keyed by file name (its last path part), labels made canonical.

    The file needs a header with a ``label`` column and a file column (``file``, ``path``, ``video`` or
    ``filename``); other columns (dataset, subject...) are kept. A label emovid does not know keeps its
    spelling, lower-cased, so it is reported rather than matched to anything.

    Raises:
        LabelError: unreadable file, no such columns, or one file listed twice with different labels.
    """
    table, file_column = read_table(path)
    rows: dict[str, dict[str, str]] = {}
    for row in table:
        row["label"] = canonical_emotion(row["label"]) or row["label"].lower()
        key = Path(row[file_column]).name
        if key in rows and rows[key]["label"] != row["label"]:
            raise LabelError(f"{path}: {key} is listed twice with labels {rows[key]['label']} and {row['label']}")
        rows[key] = row
    return rows
