"""Emotion labels of labelled videos: one spelling per emotion, labels from tables and from dataset file names.

Datasets and models spell emotions differently (``surprise``/``surprised``, ``fear``/``fearful``, CREMA-D's
``ANG``); :func:`canonical_emotion` maps them all onto emovid's names, plus ``contempt`` (MEAD, AffectNet),
so class sets meet by name and a label a model cannot output is seen as such, never counted wrong.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from emovid.datasets.ravdess import EMOTIONS

CONTEMPT = "contempt"
KNOWN_EMOTIONS: tuple[str, ...] = (*EMOTIONS, CONTEMPT)
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
_TABLE_FILE_COLUMNS = ("file", "path", "video", "filename")
# CREMA-D: ActorID_Sentence_Emotion_Level, e.g. 1001_DFA_ANG_XX
_CREMA_D = re.compile(r"(?<![0-9])(1\d{3})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX)(?![A-Za-z0-9])")
# MEAD, flat: M003_front_angry_level3_001; release layout: M003/video/front/angry/level_3/001.mp4
_MEAD_VIEW = r"(front|down|top|left_30|left_60|right_30|right_60)"
_MEAD_FLAT = re.compile(r"(?<![A-Za-z0-9])([MW]\d{3})_" + _MEAD_VIEW + r"_([a-z]+)_level_?(\d)_(\d{3})(?![0-9])")
_MEAD_TREE = re.compile(r"([MW]\d{3})/video/" + _MEAD_VIEW + r"/([a-z]+)/level_(\d)/(\d{3})\.\w+$")
# RAVDESS: MM-VV-EE-II-SS-RR-AA anywhere in the name
_RAVDESS = re.compile(r"(?<![0-9])(0[12])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d{2})(?![0-9])")


class LabelError(ValueError):
    """A labels file that cannot be read; the message is one line naming the file."""


def canonical_emotion(text: str) -> str | None:
    """emovid's name for an emotion however it is spelled (``Surprise``, ``FEA``, ``sadness``), else None."""
    return _SYNONYMS.get(text.strip().lower())


def label_from_name(path: str | Path) -> str | None:
    """The emotion a RAVDESS, CREMA-D or MEAD file name encodes, in emovid's names; None for other names."""
    text = Path(path).as_posix()
    name = Path(path).name
    if match := _RAVDESS.search(name):
        return EMOTIONS[int(match.group(3)) - 1]
    if match := _CREMA_D.search(name):
        return canonical_emotion(match.group(3))
    if match := _MEAD_FLAT.search(name) or _MEAD_TREE.search(text):
        return canonical_emotion(match.group(3))
    return None


def read_label_table(path: str | Path) -> dict[str, dict[str, str]]:
    """Rows of a CSV or TSV labels file keyed by file name (its last path part), labels made canonical.

    The file needs a header with a ``label`` column and a file column (``file``, ``path``, ``video`` or
    ``filename``); other columns (dataset, subject...) are kept. A label emovid does not know keeps its
    spelling, lower-cased, so it is reported rather than matched to anything.

    Raises:
        LabelError: unreadable file, no such columns, or one file listed twice with different labels.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read the labels file ({exc.__class__.__name__})") from None
    first = text.splitlines()[0] if text else ""
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if "\t" in first else ",")
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    file_column = next((c for c in _TABLE_FILE_COLUMNS if c in fields), None)
    if "label" not in fields or file_column is None:
        raise LabelError(f"{path}: needs a header with a 'label' column and a file column "
                         f"({', '.join(_TABLE_FILE_COLUMNS)}); found {', '.join(fields) or 'nothing'}")
    rows: dict[str, dict[str, str]] = {}
    for raw in reader:
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row.get(file_column) or not row.get("label"):
            continue
        row["label"] = canonical_emotion(row["label"]) or row["label"].lower()
        key = Path(row[file_column]).name
        if key in rows and rows[key]["label"] != row["label"]:
            raise LabelError(f"{path}: {key} is listed twice with labels {rows[key]['label']} and {row['label']}")
        rows[key] = row
    return rows
