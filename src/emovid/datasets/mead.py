"""MEAD: the release tree ``M003/video/front/angry/level_3/001.mp4`` and the flat ``M003_front_angry_level3_001.mp4``.

Actors are named ``M`` (male) or ``W`` (female) and three digits; 8 emotions (MEAD's spelling: angry, contempt,
disgusted, fear, happy, neutral, sad, surprised), 3 levels (neutral has level 1 only), 7 camera views.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry, MetaValue
from emovid.data.source import VideoSource
from emovid.datasets.common import DatasetNameError, collect, path_text
from emovid.datasets.splits import proportional_split
from emovid.labels import canonical_emotion

# MEAD's spelling -> emovid's name; the class order is emovid's.
EMOTION_NAMES = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fear": "fearful",
                 "disgusted": "disgust", "surprised": "surprised", "contempt": "contempt"}
EMOTIONS: tuple[str, ...] = tuple(EMOTION_NAMES.values())
VIEWS = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
LEVELS = (1, 2, 3)

_VIEW = "(" + "|".join(VIEWS) + ")"
_FLAT = re.compile(r"(?<![A-Za-z0-9])([MW]\d{3})_" + _VIEW + r"_([a-z]+)_level_?(\d)_(\d{3})(?![0-9])")
_TREE = re.compile(r"(?:^|/)([MW]\d{3})/video/" + _VIEW + r"/([a-z]+)/level_(\d)/(\d{3})\.\w+$")


@dataclass(frozen=True, order=True)
class MeadName:
    """The fields of a MEAD clip: actor, view, emotion (MEAD's spelling), level and clip number."""

    actor: str
    view: str
    emotion: str
    level: int
    clip: int

    @classmethod
    def parse(cls, path: str) -> MeadName:
        """Parse a tree path (``.../M003/video/front/angry/level_3/001.mp4``) or a flat name
        (``M003_front_angry_level3_001.mp4``, whose stem must be exactly those fields).

        Raises:
            DatasetNameError: neither form, or an unknown emotion or level.
        """
        text = path.replace("\\", "/")
        stem = Path(text).name.split(".", 1)[0]
        match = _TREE.search(text) or _FLAT.fullmatch(stem)
        if not match:
            raise DatasetNameError(f"not a MEAD name (expected ACTOR/video/VIEW/EMOTION/level_N/NNN.mp4 or "
                                   f"ACTOR_VIEW_EMOTION_levelN_NNN, got {'/'.join(text.split('/')[-3:])!r})")
        parsed = cls(match[1], match[2], match[3], int(match[4]), int(match[5]))
        if parsed.emotion not in EMOTION_NAMES:
            raise DatasetNameError(f"unknown MEAD emotion {parsed.emotion!r}")
        if parsed.level not in LEVELS:
            raise DatasetNameError(f"unknown MEAD level {parsed.level}")
        return parsed

    @classmethod
    def find(cls, path: str) -> MeadName | None:
        """The MEAD name in a path or inside a longer file name, None if there is none."""
        text = path.replace("\\", "/")
        match = _TREE.search(text) or _FLAT.search(Path(text).name)
        if not match or match[3] not in EMOTION_NAMES or int(match[4]) not in LEVELS:
            return None
        return cls(match[1], match[2], match[3], int(match[4]), int(match[5]))

    @property
    def stem(self) -> str:
        """The flat name without suffix: ``M003_front_angry_level3_001``."""
        return f"{self.actor}_{self.view}_{self.emotion}_level{self.level}_{self.clip:03d}"

    @property
    def tree_path(self) -> str:
        """The release layout's path: ``M003/video/front/angry/level_3/001.mp4``."""
        return f"{self.actor}/video/{self.view}/{self.emotion}/level_{self.level}/{self.clip:03d}.mp4"

    @property
    def emotion_name(self) -> str:
        return EMOTION_NAMES[self.emotion]


def label_of(path: str) -> str | None:
    """emovid's emotion name for a path holding a MEAD name, else None."""
    found = MeadName.find(path)
    return canonical_emotion(found.emotion) if found else None


def default_split(subjects: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The actor-independent split: for men and women apart, the last tenth of the actors tests and the tenth
    before validates, so every split holds both."""
    groups = [proportional_split([s for s in subjects if s[:1] == sex]) for sex in ("M", "W")]
    return {name: tuple(s for g in groups for s in g[name]) for name in ("train", "val", "test")}


def scan(root: str | Path, views: Sequence[str] = ("front",)) -> DatasetIndex:
    """Index a MEAD collection, in the release tree or with flat names (zips included).

    Args:
        root: the folder, a zip or one video.
        views: camera views to keep (default the frontal one; ``all`` keeps every view).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    chosen = tuple(VIEWS) if tuple(views) == ("all",) else tuple(views)
    if not set(chosen) <= set(VIEWS):
        raise ValueError(f"unknown MEAD views {sorted(set(chosen) - set(VIEWS))}; choose from {', '.join(VIEWS)}")
    index = DatasetIndex("mead", EMOTIONS, str(root.resolve()), {"views": list(chosen)})

    def entry_of(source: VideoSource) -> Entry | None:
        name = MeadName.parse(path_text(source))
        if name.view not in chosen:
            return None
        meta: dict[str, MetaValue] = {"view": name.view, "level": name.level, "clip": name.clip}
        return Entry(source, name.stem, name.emotion_name, name.actor, meta)

    collect(index, root, entry_of)
    index.splits = default_split(index.subjects)
    return index
