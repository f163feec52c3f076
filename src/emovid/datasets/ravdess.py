"""RAVDESS: file names, the index of a collection (folders or official zips), and the study's actor split.

A RAVDESS name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA.mp4``: modality, vocal channel,
emotion, intensity, statement, repetition and actor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emovid.data.entry import DatasetIndex, Entry
from emovid.data.source import Reject, VideoSource, iter_sources
from emovid.datasets.splits import kfold_splits

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MODALITIES = {1: "full-AV", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
NUM_ACTORS = 24

# The reference study's actor-independent split (subjects are actor numbers as text).
STUDY_SPLIT: dict[str, tuple[str, ...]] = {
    "train": tuple(str(a) for a in range(1, 21)),
    "val": ("21", "22"),
    "test": ("23", "24"),
}

_FIELD = re.compile(r"^\d{2}$")


class RavdessNameError(ValueError):
    """A file name that does not follow the RAVDESS convention."""


@dataclass(frozen=True, order=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, as integers."""

    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @classmethod
    def parse(cls, name: str) -> RavdessName:
        """Parse a file name or path such as ``Actor_01/01-01-03-02-01-01-01.mp4``.

        Raises:
            RavdessNameError: the name has the wrong number of fields or an unknown code.
        """
        stem = Path(name).name.split(".", 1)[0]
        parts = stem.split("-")
        if len(parts) != 7 or not all(_FIELD.match(p) for p in parts):
            raise RavdessNameError(
                f"{name}: not a RAVDESS name (expected 7 two-digit fields MM-VV-EE-II-SS-RR-AA, got {stem!r})"
            )
        parsed = cls(*(int(p) for p in parts))
        parsed._validate(name)
        return parsed

    def _validate(self, name: str) -> None:
        checks = (
            ("modality", self.modality, MODALITIES),
            ("vocal channel", self.vocal_channel, VOCAL_CHANNELS),
            ("emotion", self.emotion, range(1, len(EMOTIONS) + 1)),
            ("intensity", self.intensity, INTENSITIES),
            ("statement", self.statement, STATEMENTS),
            ("repetition", self.repetition, (1, 2)),
            ("actor", self.actor, range(1, NUM_ACTORS + 1)),
        )
        for what, value, allowed in checks:
            if value not in allowed:
                raise RavdessNameError(f"{name}: unknown {what} code {value:02d}")
        if self.emotion == 1 and self.intensity == 2:
            raise RavdessNameError(f"{name}: neutral has no strong intensity in RAVDESS")

    @property
    def stem(self) -> str:
        """The name without extension, e.g. ``01-01-03-02-01-01-01``."""
        return "-".join(f"{v:02d}" for v in self.fields)

    @property
    def fields(self) -> tuple[int, ...]:
        return (
            self.modality,
            self.vocal_channel,
            self.emotion,
            self.intensity,
            self.statement,
            self.repetition,
            self.actor,
        )

    @property
    def label(self) -> int:
        """0-based class index into :data:`EMOTIONS`."""
        return self.emotion - 1

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.label]

    @property
    def sex(self) -> str:
        return "male" if self.actor % 2 else "female"

    def filename(self, suffix: str = ".mp4") -> str:
        return self.stem + suffix

    def as_dict(self) -> dict[str, int | str]:
        """Fields plus derived values, for clip metadata and reports."""
        return {
            "modality": self.modality,
            "vocal_channel": self.vocal_channel,
            "emotion": self.emotion,
            "intensity": self.intensity,
            "statement": self.statement,
            "repetition": self.repetition,
            "actor": self.actor,
            "label": self.label,
            "emotion_name": self.emotion_name,
        }


_SEARCH = re.compile(r"(?<![0-9])(\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?![0-9])")


def label_of(name: str) -> str | None:
    """emovid's emotion name for a file name holding a valid RAVDESS name (anywhere in it), else None."""
    for match in _SEARCH.finditer(Path(name).name):
        try:
            return RavdessName.parse(match[1]).emotion_name
        except RavdessNameError:
            continue
    return None


def entry_of(source: VideoSource, name: RavdessName) -> Entry:
    """The generic entry of a RAVDESS video: its stem as key, the actor as subject, the fields as metadata."""
    meta = {k: v for k, v in name.as_dict().items() if k not in ("emotion", "label", "emotion_name")}
    return Entry(source, name.stem, name.emotion_name, str(name.actor), meta)


def scan(
    root: str | Path,
    modalities: Sequence[int] = (1, 2),
    vocal_channels: Sequence[int] = (1,),
) -> DatasetIndex:
    """Index a RAVDESS collection: a folder tree, official zips, or a mix.

    Args:
        root: a folder (searched recursively for videos and ``.zip`` archives), a zip, or one video.
        modalities: modality codes to keep (default full-AV and video-only, as the study uses).
        vocal_channels: vocal channel codes to keep (default speech).

    Files whose names do not parse are rejected with a reason; files filtered out are not rejects.
    The same clip found twice (say in a folder and a zip) is kept once and the copy is rejected.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    filters: dict[str, object] = {"modalities": list(modalities), "vocal_channels": list(vocal_channels)}
    index = DatasetIndex("ravdess", EMOTIONS, str(root.resolve()), filters, splits=dict(STUDY_SPLIT))
    seen: dict[str, VideoSource] = {}
    for source in iter_sources(root, index.rejects):
        try:
            meta = RavdessName.parse(source.name)
        except RavdessNameError as exc:
            index.rejects.append(Reject(source.display, str(exc).split(": ", 1)[1]))
            continue
        if meta.modality not in modalities or meta.vocal_channel not in vocal_channels:
            continue
        if meta.stem in seen:
            index.rejects.append(Reject(source.display, f"duplicate of {seen[meta.stem].display}"))
            continue
        seen[meta.stem] = source
        index.entries.append(entry_of(source, meta))
    return index


def kfold(folds: int = 6) -> list[dict[str, tuple[str, ...]]]:
    """Actor-independent k-fold cross-validation over the 24 actors (6 folds: 1-4, 5-8, ..., two male and two
    female actors each; see :func:`emovid.datasets.splits.kfold_splits`)."""
    return kfold_splits([str(a) for a in range(1, NUM_ACTORS + 1)], folds)


def speech_set_names(
    actors: Iterable[int] = range(1, NUM_ACTORS + 1), modalities: Sequence[int] = (1, 2)
) -> list[RavdessName]:
    """Every name of the official speech set for these actors: 60 performances per actor and modality."""
    return [
        RavdessName(modality, 1, emotion, intensity, statement, repetition, actor)
        for actor in actors
        for modality in modalities
        for emotion in range(1, len(EMOTIONS) + 1)
        for intensity in ((1,) if emotion == 1 else (1, 2))
        for statement in (1, 2)
        for repetition in (1, 2)
    ]
