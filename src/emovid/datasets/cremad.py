"""CREMA-D: ``ActorID_Sentence_Emotion_Level.flv`` names, the index of a collection and its actor split.

91 actors (1001-1091) say 12 sentences with 6 emotions (ANG DIS FEA HAP NEU SAD); the level is LO, MD, HI or
XX (unspecified). The videos are FLV with VP6 video, which PyAV decodes (but cannot encode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry
from emovid.data.source import VideoSource
from emovid.datasets.common import DatasetNameError, collect
from emovid.datasets.splits import kfold_splits, proportional_split

# CREMA-D's codes, and emovid's names for them (the class order is emovid's).
EMOTION_CODES = {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust"}
EMOTIONS: tuple[str, ...] = tuple(EMOTION_CODES.values())
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before", "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
ACTORS = range(1001, 1092)

_NAME = re.compile(r"(?<![0-9])(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})(?![A-Za-z0-9])")


@dataclass(frozen=True, order=True)
class CremadName:
    """The four fields of a CREMA-D name."""

    actor: int
    sentence: str
    emotion: str  # CREMA-D's code, e.g. ANG
    level: str

    @classmethod
    def parse(cls, name: str) -> CremadName:
        """Parse a file name such as ``1001_DFA_ANG_XX.flv`` (the stem must be exactly the four fields).

        Raises:
            DatasetNameError: the name does not have the four fields, or a field has an unknown value.
        """
        stem = name.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
        match = _NAME.fullmatch(stem)
        if not match:
            raise DatasetNameError(f"not a CREMA-D name (expected ActorID_Sentence_Emotion_Level, got {stem!r})")
        parsed = cls(int(match[1]), match[2], match[3], match[4])
        checks = (("actor", parsed.actor, ACTORS), ("sentence", parsed.sentence, SENTENCES),
                  ("emotion code", parsed.emotion, EMOTION_CODES), ("level", parsed.level, LEVELS))
        for what, value, allowed in checks:
            if value not in allowed:
                raise DatasetNameError(f"unknown CREMA-D {what} {value}")
        return parsed

    @classmethod
    def find(cls, name: str) -> CremadName | None:
        """The CREMA-D name inside a longer file name (``clip_1001_DFA_ANG_XX.mp4``), None if there is none."""
        match = _NAME.search(Path(name).name)
        try:
            return cls.parse(match[0]) if match else None
        except DatasetNameError:
            return None

    @property
    def stem(self) -> str:
        return f"{self.actor}_{self.sentence}_{self.emotion}_{self.level}"

    @property
    def emotion_name(self) -> str:
        return EMOTION_CODES[self.emotion]

    def filename(self, suffix: str = ".flv") -> str:
        return self.stem + suffix


def corpus_names() -> list[str]:
    """Every name of the corpus's pattern on all 91 actors, 82 each: 6 emotions x (IEO at its levels, the 11 other
    sentences at XX). The real corpus misses a few of them (it has 7,442)."""
    names = []
    for actor in ACTORS:
        for code in EMOTION_CODES:
            levels = ["XX"] if code == "NEU" else ["LO", "MD", "HI"]
            names += [f"{actor}_IEO_{code}_{level}.flv" for level in levels]
            names += [f"{actor}_{s}_{code}_XX.flv" for s in SENTENCES if s != "IEO"]
    return names


def label_of(name: str) -> str | None:
    """emovid's emotion name for a file name holding a CREMA-D name, else None."""
    found = CremadName.find(name)
    return found.emotion_name if found else None


def default_split(subjects: list[str] | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The actor-independent split: the last tenth of the actors tests, the tenth before validates (on the
    whole corpus: train 1001-1073, val 1074-1082, test 1083-1091)."""
    return proportional_split(subjects)


def kfold(folds: int = 5, subjects: list[str] | None = None) -> list[dict[str, tuple[str, ...]]]:
    """Actor-independent k-fold cross-validation over the corpus's actors (or ``subjects``)."""
    return kfold_splits(subjects or [str(a) for a in ACTORS], folds)


def scan(root: str | Path, levels: tuple[str, ...] | list[str] | None = None) -> DatasetIndex:
    """Index a CREMA-D collection (a folder such as ``VideoFlash/``, searched recursively, zips included).

    Args:
        root: the folder, a zip or one video.
        levels: keep only these levels (e.g. ``HI``); None keeps all.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    wanted = None if levels is None else {lv.upper() for lv in levels}
    if wanted is not None and not wanted <= set(LEVELS):
        raise ValueError(f"unknown CREMA-D levels {sorted(wanted - set(LEVELS))}; choose from {', '.join(LEVELS)}")
    filters: dict[str, object] = {} if wanted is None else {"levels": sorted(wanted)}
    index = DatasetIndex("cremad", EMOTIONS, str(root.resolve()), filters)

    def entry_of(source: VideoSource) -> Entry | None:
        name = CremadName.parse(source.name)
        if wanted is not None and name.level not in wanted:
            return None
        meta = {"sentence": name.sentence, "level": name.level}
        return Entry(source, name.stem, name.emotion_name, str(name.actor), meta)

    collect(index, root, entry_of)
    index.splits = default_split(index.subjects)
    return index
