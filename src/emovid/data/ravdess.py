"""RAVDESS file names, the index of a collection (folders or official zips), and actor splits.

A RAVDESS name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA.mp4``: modality, vocal channel,
emotion, intensity, statement, repetition and actor.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MODALITIES = {1: "full-AV", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
NUM_ACTORS = 24
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".flv", ".gif")

# The reference study's actor-independent split.
STUDY_SPLIT: dict[str, tuple[int, ...]] = {
    "train": tuple(range(1, 21)),
    "val": (21, 22),
    "test": (23, 24),
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


@dataclass(frozen=True)
class VideoSource:
    """Where a video's bytes live: a file, or a member of a zip archive."""

    path: Path
    member: str | None = None

    @property
    def display(self) -> str:
        """How errors and reports name this video."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    def __str__(self) -> str:
        return self.display

    @property
    def name(self) -> str:
        return Path(self.member).name if self.member else self.path.name

    def open(self) -> BinaryIO:
        """A seekable binary stream of the video (a zip member is read into memory, never to disk)."""
        if self.member is None:
            return open(self.path, "rb")
        with zipfile.ZipFile(self.path) as archive:
            return io.BytesIO(archive.read(self.member))


@dataclass(frozen=True)
class IndexEntry:
    """One video of the collection with its parsed name."""

    source: VideoSource
    meta: RavdessName

    @property
    def key(self) -> str:
        return self.meta.stem


@dataclass(frozen=True)
class Reject:
    """A file left out of a run, with the reason in one line."""

    file: str
    reason: str


@dataclass
class RavdessIndex:
    """The videos of a collection that pass the filters, and the files that were rejected."""

    entries: list[IndexEntry] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def split(self, actors_by_split: dict[str, Sequence[int]] | None = None) -> dict[str, list[IndexEntry]]:
        """Group entries by split; defaults to the study's actor split."""
        return split_by_actors(self.entries, actors_by_split or STUDY_SPLIT)


def _is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_SUFFIXES)


def iter_sources(root: Path, rejects: list[Reject]) -> Iterable[VideoSource]:
    """The videos of a folder (searched recursively, zips included), a zip's members, or one file as it is.

    Archives that cannot be opened go into ``rejects``.
    """
    archives = [root] if root.is_file() and root.suffix.lower() == ".zip" else []
    if root.is_file() and not archives:
        yield VideoSource(root)
        return
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and _is_video(path.name):
                yield VideoSource(path)
            elif path.is_file() and path.suffix.lower() == ".zip":
                archives.append(path)
    for archive in archives:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [i.filename for i in zf.infolist() if not i.is_dir() and _is_video(i.filename)]
        except (zipfile.BadZipFile, OSError) as exc:
            rejects.append(Reject(str(archive), f"unreadable zip archive ({exc})"))
            continue
        for member in sorted(members):
            yield VideoSource(archive, member)


def scan(
    root: str | Path,
    modalities: Sequence[int] = (1, 2),
    vocal_channels: Sequence[int] = (1,),
) -> RavdessIndex:
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
    index = RavdessIndex()
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
        index.entries.append(IndexEntry(source, meta))
    return index


def split_by_actors(
    entries: Iterable[IndexEntry], actors_by_split: dict[str, Sequence[int]]
) -> dict[str, list[IndexEntry]]:
    """Group entries by the split their actor belongs to; actors in no split are left out.

    Raises:
        ValueError: an actor is assigned to two splits (that would leak identities).
    """
    owner: dict[int, str] = {}
    for split_name, actors in actors_by_split.items():
        for actor in actors:
            if actor in owner:
                raise ValueError(f"actor {actor} is in both {owner[actor]!r} and {split_name!r}")
            owner[actor] = split_name
    groups: dict[str, list[IndexEntry]] = {name: [] for name in actors_by_split}
    for entry in entries:
        split_name = owner.get(entry.meta.actor)
        if split_name is not None:
            groups[split_name].append(entry)
    return groups


def kfold_splits(
    actors: Sequence[int] = tuple(range(1, NUM_ACTORS + 1)), folds: int = 6
) -> list[dict[str, tuple[int, ...]]]:
    """Actor-independent k-fold cross-validation.

    Actors are cut, in order, into ``folds`` contiguous groups (for 24 actors and 6 folds: 1-4, 5-8, ...,
    two male and two female actors each). Fold i tests on group i, validates on group i+1 (wrapping)
    and trains on the rest.
    """
    ordered = sorted(actors)
    if folds < 3 or folds > len(ordered):
        raise ValueError(f"need 3 <= folds <= {len(ordered)} actors, got {folds}")
    bounds = [round(i * len(ordered) / folds) for i in range(folds + 1)]
    groups = [tuple(ordered[bounds[i] : bounds[i + 1]]) for i in range(folds)]
    result = []
    for i in range(folds):
        val = groups[(i + 1) % folds]
        test = groups[i]
        train = tuple(a for a in ordered if a not in val and a not in test)
        result.append({"train": train, "val": val, "test": test})
    return result


def parse_actor_list(text: str) -> tuple[int, ...]:
    """Parse ``"1-20"``, ``"21,22"`` or ``"1-4,9,11-12"`` into actor numbers."""
    actors: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            start, end = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"bad actor list {text!r}: use numbers and ranges like 1-20,23") from None
        actors.extend(range(start, end + 1))
    return tuple(actors)


def count_table(groups: dict[str, list[IndexEntry]]) -> dict[str, dict[str, int]]:
    """Counts per split and emotion, with a ``total`` per split."""
    table: dict[str, dict[str, int]] = {}
    for split_name, entries in groups.items():
        counts = Counter(e.meta.emotion_name for e in entries)
        table[split_name] = {name: counts.get(name, 0) for name in EMOTIONS}
        table[split_name]["total"] = len(entries)
    return table


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
