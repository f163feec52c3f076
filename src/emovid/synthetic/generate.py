"""Write a synthetic RAVDESS-format speech set: the official names and layout, with ground truth beside it.

With ``SynthConfig.naming`` the same performances get CREMA-D, MEAD or folder-per-class names instead
(:mod:`emovid.synthetic.naming`).

Each actor gets 60 performances (8 emotions; normal and strong intensity except neutral; 2 statements;
2 repetitions), each written as a full-AV file (modality 01, with audio) and a video-only file (02) of the
same recording, in ``OUT/Actor_XX/`` or in official-style ``OUT/Video_Speech_Actor_XX.zip`` archives.
``OUT/synth_meta.jsonl`` holds one line per file with its labels, format and per-frame face box.

Every file is written atomically, so a file with its final name is whole; a rerun skips the files (or
archives) that are already complete and rewrites the rest.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from emovid.data.atomic import remove_stale_temporaries, write_atomic, write_bytes_atomic, write_jsonl_atomic
from emovid.datasets.ravdess import EMOTIONS, INTENSITIES, NUM_ACTORS, STATEMENTS, RavdessName
from emovid.datasets.splits import parse_subjects
from emovid.progress import progress as progress_bar
from emovid.synthetic.clip import ClipFormat, ClipPlan
from emovid.synthetic.encode import add_audio, encode_flv, encode_video, is_complete
from emovid.synthetic.naming import check_naming, expresses, label, relative_path

META_NAME = "synth_meta.jsonl"
SYNTH_VERSION = 1  # bump when the same config would render different pixels
_SPEECH = 1  # vocal channel: this generator writes the speech set only


def _codes(values: Sequence[int], allowed: Sequence[int], what: str) -> tuple[int, ...]:
    codes = tuple(sorted(set(int(v) for v in values)))
    if not codes or not set(codes) <= set(allowed):
        raise ValueError(f"{what} must be a non-empty subset of {tuple(allowed)}, got {tuple(values)}")
    return codes


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Code tuples use RAVDESS codes; they are sorted and deduplicated on creation."""

    actors: tuple[int, ...] = tuple(range(1, NUM_ACTORS + 1))
    width: int = 320
    height: int = 180
    fps: float = 30.0
    seconds: float = 3.5
    seed: int = 0
    emotions: tuple[int, ...] = tuple(range(1, len(EMOTIONS) + 1))
    statements: tuple[int, ...] = tuple(STATEMENTS)
    repetitions: tuple[int, ...] = (1, 2)
    intensities: tuple[int, ...] = tuple(INTENSITIES)
    modalities: tuple[int, ...] = (1, 2)
    limit: int | None = None  # at most this many performances per actor, spread over the emotions
    naming: str = "ravdess"  # or cremad, mead, folder: see emovid.synthetic.naming

    def __post_init__(self) -> None:
        checks = {
            "actors": range(1, NUM_ACTORS + 1),
            "emotions": range(1, len(EMOTIONS) + 1),
            "statements": tuple(STATEMENTS),
            "repetitions": (1, 2),
            "intensities": tuple(INTENSITIES),
            "modalities": (1, 2),  # audio-only (03) has no video to synthesize
        }
        for name, allowed in checks.items():
            object.__setattr__(self, name, _codes(getattr(self, name), allowed, name))
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            size = f"{self.width}x{self.height}"
            raise ValueError(f"frame size must be even and at least 16x16 (H.264 4:2:0), got {size}")
        if self.fps <= 0 or self.num_frames < 1:
            raise ValueError(
                f"need fps > 0 and at least one frame, got fps={self.fps}, seconds={self.seconds}"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        check_naming(self.naming)
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {self.limit}")

    @property
    def num_frames(self) -> int:
        return round(self.fps * self.seconds)

    @property
    def clip_format(self) -> ClipFormat:
        return ClipFormat(self.width, self.height, self.fps, self.num_frames)


@dataclass(frozen=True)
class SynthReport:
    """What a run did. In zip layout, counts are of the videos inside the archives."""

    written: int
    skipped: int  # already complete from an earlier run
    seconds: float
    meta: Path


def parse_actors(text: str) -> tuple[int, ...]:
    """``"24"`` means actors 1-24 (the first N); lists and ranges such as ``"1-4,9"`` mean those actors."""
    text = text.strip()
    return tuple(range(1, int(text) + 1)) if text.isdigit() else tuple(int(s) for s in parse_subjects(text))


def performances(config: SynthConfig) -> list[tuple[RavdessName, ...]]:
    """The performances to generate, each as its file names (one per modality), actor by actor.

    Within an actor, performances go round the emotions first (repetition, statement, intensity, then
    emotion vary slowest to fastest), so ``limit`` keeps the classes balanced.
    """
    result = []
    for actor in config.actors:
        takes = [
            (rep, st, inten, emo)
            for rep in config.repetitions
            for st in config.statements
            for inten in config.intensities
            for emo in config.emotions
            if not (emo == 1 and inten == 2)  # RAVDESS has no strong neutral
            and expresses(config.naming, emo)
        ]
        # Other datasets have no modality: one video-only file per performance.
        modalities = config.modalities if config.naming == "ravdess" else (2,)
        for rep, st, inten, emo in takes[: config.limit]:
            result.append(
                tuple(RavdessName(m, _SPEECH, emo, inten, st, rep, actor) for m in modalities)
            )
    return result


def clip_names(config: SynthConfig) -> list[RavdessName]:
    """Every file name the config produces."""
    return [name for take in performances(config) for name in take]


def actor_folder(actor: int) -> str:
    return f"Actor_{actor:02d}"


def actor_archive(actor: int) -> str:
    """The official archive name of an actor's speech videos."""
    return f"Video_Speech_Actor_{actor:02d}.zip"


def _member(name: RavdessName) -> str:
    return f"{actor_folder(name.actor)}/{name.filename()}"


def file_key(name: RavdessName, zip_archives: bool, naming: str = "ravdess") -> str:
    """How ``synth_meta.jsonl`` names a file: a path relative to OUT, or ``archive.zip:member``."""
    return f"{actor_archive(name.actor)}:{_member(name)}" if zip_archives else relative_path(name, naming)


@dataclass(frozen=True)
class _Job:
    take: tuple[RavdessName, ...]
    config: SynthConfig
    out: Path | None  # write the files below here; None: return their bytes (zip layout)
    render: bool  # in zip layout, False when the actor's archive is already complete


@dataclass
class _Done:
    take: tuple[RavdessName, ...]
    boxes: np.ndarray  # (T, 4)
    written: list[RavdessName] = field(default_factory=list)
    data: dict[RavdessName, bytes] = field(default_factory=dict)


def _run(job: _Job) -> _Done:
    """Render and encode one performance if any of its files is missing; always recompute its face boxes."""
    config = job.config
    plan = ClipPlan.build(config.seed, job.take[0], config.clip_format)
    done = _Done(job.take, plan.boxes())
    if job.out is None:
        missing = list(job.take) if job.render else []
    else:
        fmt = config.width, config.height, config.num_frames
        missing = [n for n in job.take if not is_complete(_path(job.out, n, config), *fmt, n.modality == 1)]
    if not missing:
        return done
    encode = encode_flv if config.naming == "cremad" else encode_video
    video = encode(plan.frames(), config.fps)
    for name in missing:
        data = add_audio(video, plan.audio()) if name.modality == 1 else video
        if job.out is None:
            done.data[name] = data
        else:
            write_bytes_atomic(_path(job.out, name, config), data)
        done.written.append(name)
    return done


def _path(out: Path, name: RavdessName, config: SynthConfig) -> Path:
    return out / relative_path(name, config.naming)


def _zip_complete(path: Path, members: list[str], config: SynthConfig) -> bool:
    fmt = config.width, config.height, config.num_frames
    try:
        with zipfile.ZipFile(path) as archive:
            if not set(members) <= set(archive.namelist()):
                return False
            return all(
                is_complete(io.BytesIO(archive.read(m)), *fmt, RavdessName.parse(m).modality == 1)
                for m in members
            )
    except (zipfile.BadZipFile, OSError):
        return False


def _write_zip(path: Path, files: dict[RavdessName, bytes]) -> None:
    def write(handle: IO[bytes]) -> None:
        # Stored, not deflated: H.264 does not compress further and readers can then seek straight into members.
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for name in sorted(files):
                archive.writestr(_member(name), files[name])

    write_atomic(path, write)


def _record(name: RavdessName, config: SynthConfig, boxes: np.ndarray, zip_archives: bool) -> dict[str, Any]:
    return {
        "file": file_key(name, zip_archives, config.naming),
        "label": label(name, config.naming),
        "stem": name.stem,
        "modality": name.modality,
        "emotion": name.emotion,
        "emotion_name": name.emotion_name,
        "intensity": name.intensity,
        "statement": name.statement,
        "repetition": name.repetition,
        "actor": name.actor,
        **_settings(config),
        "boxes": np.round(boxes, 2).tolist(),
    }


def _settings(config: SynthConfig) -> dict[str, Any]:
    """What makes the same file name hold different pixels; every record carries it."""
    return {
        "synth_version": SYNTH_VERSION,
        "naming": config.naming,
        "seed": config.seed,
        "width": config.width,
        "height": config.height,
        "fps": config.fps,
        "num_frames": config.num_frames,
    }


def _exists(out: Path, key: str, archives: dict[str, set[str]]) -> bool:
    archive, sep, member = key.partition(":")
    if not sep:
        return (out / key).is_file()
    if archive not in archives:
        try:
            with zipfile.ZipFile(out / archive) as zf:
                archives[archive] = set(zf.namelist())
        except (zipfile.BadZipFile, OSError):
            archives[archive] = set()
    return member in archives[archive]


def read_meta(out: Path) -> list[dict[str, Any]]:
    """The ground-truth records of a generated set (empty if there is none)."""
    path = out / META_NAME
    if not path.is_file():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _earlier_records(out: Path, config: SynthConfig) -> dict[str, dict[str, Any]]:
    """Records of files from earlier runs that are still there; refuses a folder made with other settings."""
    wanted = _settings(config)
    archives: dict[str, set[str]] = {}
    kept = {}
    for record in read_meta(out):
        if not _exists(out, record["file"], archives):
            continue
        found = {k: record.get(k, "ravdess" if k == "naming" else None) for k in wanted}  # older sets: RAVDESS
        if found != wanted:
            raise ValueError(
                f"{out} holds a synthetic set made with {found}, not {wanted}; use another folder"
            )
        kept[record["file"]] = record
    return kept


def _write_meta(out: Path, records: dict[str, dict[str, Any]]) -> Path:
    path = out / META_NAME
    write_jsonl_atomic(path, (records[key] for key in sorted(records)))
    return path


def _plan_jobs(out: Path, config: SynthConfig, zip_archives: bool) -> tuple[list[_Job], set[int]]:
    """The jobs, and in zip layout the actors whose archives need building; creates the actor folders."""
    takes = performances(config)
    remove_stale_temporaries(out)
    if zip_archives:
        members: dict[int, list[str]] = {}
        for take in takes:
            members.setdefault(take[0].actor, []).extend(_member(n) for n in take)
        rebuild = {a for a, m in members.items() if not _zip_complete(out / actor_archive(a), m, config)}
        return [_Job(t, config, None, t[0].actor in rebuild) for t in takes], rebuild
    folders = {_path(out, name, config).parent for take in takes for name in take}
    for folder in sorted(folders):
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)
    return [_Job(t, config, out, True) for t in takes], set()


class _ArchiveBuilder:
    """Zip layout: holds a rebuilt actor's videos until the last one arrives, then writes the archive."""

    def __init__(self, out: Path, jobs: list[_Job], rebuild: set[int]):
        self.out = out
        self.files: dict[int, dict[RavdessName, bytes]] = {a: {} for a in rebuild}
        self.records: dict[int, dict[str, dict[str, Any]]] = {a: {} for a in rebuild}
        self.remaining = Counter(j.take[0].actor for j in jobs if j.take[0].actor in rebuild)

    def add(self, done: _Done, new: dict[str, dict[str, Any]], records: dict[str, dict[str, Any]]) -> None:
        """Add ``new`` records to ``records`` once their videos are on disk."""
        actor = done.take[0].actor
        if actor not in self.files:  # the archive was complete already
            records.update(new)
            return
        self.files[actor].update(done.data)
        self.records[actor].update(new)
        self.remaining[actor] -= 1
        if self.remaining[actor] == 0:
            archive = actor_archive(actor)
            _write_zip(self.out / archive, self.files.pop(actor))
            for key in [k for k in records if k.startswith(f"{archive}:")]:  # the old archive is gone
                del records[key]
            records.update(self.records.pop(actor))


def _results(jobs: list[_Job], workers: int) -> Iterator[_Done]:
    if workers <= 1:
        yield from map(_run, jobs)
        return
    # spawn: no forked copies of the parent's threads (tqdm, OpenCV); one OpenCV thread per worker.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        yield from pool.imap_unordered(_run, jobs, chunksize=2)


def generate_dataset(
    out: str | Path,
    config: SynthConfig,
    *,
    zip_archives: bool = False,
    workers: int = 2,
    progress: bool = True,
) -> SynthReport:
    """Generate (or complete) a synthetic RAVDESS speech set in ``out``.

    Args:
        out: output folder; created if needed. A rerun into the same folder skips complete files (in zip
            layout, complete archives) and writes the rest; the folder must not hold a set made with another
            seed, size, frame rate or length.
        config: what to generate.
        zip_archives: write ``Video_Speech_Actor_XX.zip`` archives instead of ``Actor_XX/`` folders.
        workers: processes rendering performances in parallel (1: in this process). They are spawned, so a
            calling script needs the usual ``if __name__ == "__main__":`` guard.
        progress: show a progress bar.

    Returns:
        Counts of written and skipped files and the wall time. ``synth_meta.jsonl`` is rewritten even if the
        run fails half-way, so it always describes the files on disk.
    """
    if zip_archives and config.naming != "ravdess":
        raise ValueError(f"zip archives are RAVDESS's layout; the {config.naming} naming writes folders")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = _earlier_records(out, config)
    jobs, rebuild = _plan_jobs(out, config, zip_archives)
    archives = _ArchiveBuilder(out, jobs, rebuild)
    written = skipped = 0
    bar = progress_bar(total=sum(len(j.take) for j in jobs), unit="file", desc="synth", enabled=progress)
    try:
        for done in _results(jobs, workers):
            new = {file_key(n, zip_archives, config.naming): _record(n, config, done.boxes, zip_archives)
                   for n in done.take}
            if zip_archives:
                archives.add(done, new, records)
            else:
                records.update(new)
            written += len(done.written)
            skipped += len(done.take) - len(done.written)
            bar.update(len(done.take))
    finally:
        bar.close()
        meta = _write_meta(out, records)
    return SynthReport(written, skipped, time.perf_counter() - start, meta)
