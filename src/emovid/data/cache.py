"""The clip cache: decode each video once into a fixed-size clip, store it, read it back cheaply.

Layout of a cache folder::

    cache.json        the settings that shaped the tensors (a cache made otherwise is refused)
    clips/KEY.npy     uint8 (T, C, H, W), or clips/KEY.jpg: the T frames stacked vertically
    clips/KEY.json    the clip's metadata, written last: its presence marks the clip complete
    manifest.jsonl    every complete clip's metadata, written at the end of a run
    rejects.jsonl     the videos that could not be used, with a one-line reason
    manifest.shard-K-of-N.jsonl, rejects.shard-K-of-N.jsonl
                      the same for shard K of N (``prepare(..., shard=)``), read as one manifest once all N
                      are there; :func:`merge_shards` joins them into the two files above

Every file is written atomically, so a run killed at any point resumes where it stopped and never
reads back a half-written clip.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emovid.data.atomic import (
    remove_stale_temporaries,
    write_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_jsonl_atomic,
)
from emovid.data.entry import DatasetIndex, Entry
from emovid.data.shard import Shard, ShardError, merge_files, read_merged_jsonl, shard_files
from emovid.data.source import Reject
from emovid.data.video import CROP_MODES, Resize, failure_reason, read_clip, set_decode_threads
from emovid.progress import progress as progress_bar

# Bump when preprocessing changes the stored tensors, so older caches are refused, not reused.
CACHE_FORMAT_VERSION = 3  # 2: frames sampled by presentation time; 3: generic entries (subject, class names)
STORAGE_FORMATS = ("npy", "jpeg")


class CacheError(Exception):
    """A cache that cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that changes the cached tensors."""

    frames: int = 16
    resize: Resize = field(default_factory=Resize)
    storage: str = "npy"
    jpeg_quality: int = 90
    crop: str = "center"  # or "face": the face, followed frame by frame, see emovid.faces

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"unknown crop {self.crop!r}; choose from {', '.join(CROP_MODES)}")
        if self.storage not in STORAGE_FORMATS:
            raise ValueError(f"unknown storage {self.storage!r}; choose from {', '.join(STORAGE_FORMATS)}")

    def as_dict(self) -> dict:
        return {"version": CACHE_FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> PrepareSettings:
        fields = {k: v for k, v in data.items() if k != "version"}
        return cls(**{**fields, "resize": Resize(**fields["resize"])})


@dataclass
class PrepareReport:
    """What a prepare run did."""

    written: int = 0
    reused: int = 0
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0


def _clip_path(clips_dir: Path, key: str, storage: str) -> Path:
    return clips_dir / f"{key}.{'npy' if storage == 'npy' else 'jpg'}"


def save_clip(path: Path, frames: np.ndarray, storage: str, jpeg_quality: int = 90) -> None:
    """Store uint8 (T, C, H, W) frames atomically as ``.npy`` or as one JPEG of the frames stacked."""
    if storage == "npy":
        write_atomic(path, lambda handle: np.save(handle, frames))
        return
    t, c, h, w = frames.shape
    # (T, C, H, W) -> (T*H, W, C) with frames stacked vertically; OpenCV wants BGR.
    strip = np.ascontiguousarray(frames.transpose(0, 2, 3, 1).reshape(t * h, w, c)[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise CacheError(f"{path}: JPEG encoding failed")
    write_bytes_atomic(path, encoded.tobytes())


def load_clip(path: Path, num_frames: int) -> np.ndarray:
    """Read a stored clip as uint8 (T, C, H, W); ``.npy`` files are memory-mapped."""
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r")
    strip = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if strip is None:
        raise CacheError(f"{path}: unreadable cached clip; delete it and run prepare again")
    h = strip.shape[0] // num_frames
    # (T*H, W, C) BGR -> (T, C, H, W) RGB
    return np.ascontiguousarray(strip[..., ::-1].reshape(num_frames, h, strip.shape[1], 3).transpose(0, 3, 1, 2))


def _prepare_one(job: tuple[Entry, int, PrepareSettings, Path]) -> tuple[str, dict | None, str | None]:
    entry, label, settings, clips_dir = job
    try:
        clip = read_clip(entry.source, settings.frames, settings.resize, settings.crop)
        meta = {"key": entry.key, "label": label, "emotion": entry.label, "subject": entry.subject, **entry.meta,
                **clip.meta}
        save_clip(_clip_path(clips_dir, entry.key, settings.storage), clip.frames, settings.storage,
                  settings.jpeg_quality)
        write_json_atomic(clips_dir / f"{entry.key}.json", meta)  # last: marks the clip complete
    except Exception as exc:  # whatever one file raises is its reject, not the end of the run
        return entry.source.display, None, failure_reason(exc, entry.source.display)
    return entry.source.display, meta, None


def _check_or_write_settings(out: Path, record: dict) -> None:
    path = out / "cache.json"
    if path.exists():
        existing = json.loads(path.read_text())
        if existing != record:
            diff = ", ".join(
                f"{k}: cache has {existing.get(k)!r}, asked {record.get(k)!r}"
                for k in sorted(set(existing) | set(record))
                if existing.get(k) != record.get(k)
            )
            raise CacheError(f"{out} was prepared with other settings ({diff}); choose another --out")
        return
    write_json_atomic(path, record)


def prepare(
    index: DatasetIndex,
    out: str | Path,
    settings: PrepareSettings,
    *,
    workers: int = 2,
    progress: bool = True,
    shard: Shard | None = None,
) -> PrepareReport:
    """Preprocess the videos of an index (see :mod:`emovid.datasets`) into a clip cache, resuming any earlier
    interrupted run.

    Unreadable videos and the index's rejects go into ``rejects.jsonl``; the run goes on without them. With
    ``shard``, only that shard's entries (and index rejects) are done, and the lists go to the shard's own
    ``manifest.shard-K-of-N.jsonl`` and ``rejects.shard-K-of-N.jsonl``, so shards may run at once into one
    folder (on machines sharing it) and each resumes on its own.

    Raises:
        CacheError: ``out`` holds a cache made with other settings or from other data.
    """
    start = time.perf_counter()
    out = Path(out)
    record = {
        "settings": settings.as_dict(),
        "dataset": index.dataset,
        "source": index.root,
        "filters": index.filters,
        "classes": list(index.classes),
        "splits": {name: list(subjects) for name, subjects in index.splits.items()},
    }
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    _check_or_write_settings(out, record)

    entries, index_rejects = index.entries, index.rejects
    if shard is not None:
        entries = shard.select(entries, key=lambda e: e.key)
        index_rejects = shard.select(index_rejects, key=lambda r: r.file)
        keys = {e.key for e in entries}  # other shards may be writing beside us: clear only our own leftovers
        remove_stale_temporaries(clips_dir, owned=lambda name: name.rsplit(".", 1)[0] in keys)
    else:
        remove_stale_temporaries(clips_dir)
    report = PrepareReport(rejects=list(index_rejects))
    metas: dict[str, dict] = {}
    todo = []
    for entry in entries:
        meta_path = clips_dir / f"{entry.key}.json"
        if meta_path.exists() and _clip_path(clips_dir, entry.key, settings.storage).exists():
            metas[entry.key] = json.loads(meta_path.read_text())
        else:
            todo.append((entry, index.classes.index(entry.label), settings, clips_dir))
    report.reused = len(metas)

    with progress_bar(total=len(todo), desc="prepare", unit="video", enabled=progress) as bar:
        for display, meta, reason in _map(_prepare_one, todo, workers):
            if meta is None:
                report.rejects.append(Reject(display, reason or "unknown error"))
                bar.write(f"skipped {display}: {reason}")
            else:
                metas[meta["key"]] = meta
                report.written += 1
            bar.update()

    manifest, rejects = out / "manifest.jsonl", out / "rejects.jsonl"
    if shard is not None:
        manifest, rejects = shard.path(manifest), shard.path(rejects)
    else:  # a whole run supersedes any shards' lists
        for stale in [*out.glob("manifest.shard-*.jsonl"), *out.glob("rejects.shard-*.jsonl")]:
            stale.unlink()
    write_jsonl_atomic(manifest, (metas[k] for k in sorted(metas)))
    write_jsonl_atomic(rejects, (asdict(r) for r in report.rejects))
    report.seconds = time.perf_counter() - start
    return report


def _map(fn, jobs: list, workers: int):
    """Yield ``fn(job)`` for every job, in worker processes when there is more than one."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    # Each worker decodes single-threaded: processes already use every core.
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=set_decode_threads,
                                                   initargs=(1,)) as pool:
        yield from pool.imap_unordered(fn, jobs, chunksize=1)


@dataclass(frozen=True)
class ClipCache:
    """A prepared cache, opened for reading."""

    root: Path
    settings: PrepareSettings
    entries: list[dict]
    dataset: str
    classes: tuple[str, ...]
    splits: dict[str, tuple[str, ...]]  # the dataset's default split: name -> subjects

    @classmethod
    def open(cls, root: str | Path) -> ClipCache:
        root = Path(root)
        if not (root / "cache.json").exists():
            raise CacheError(f"{root}: not a clip cache (no cache.json); make one with `emovid prepare`")
        try:
            sharded = bool(shard_files(root / "manifest.jsonl"))
        except ShardError as exc:
            raise CacheError(f"{exc}; run it (`emovid prepare ... --shard K/N`) to finish the cache") from None
        if not sharded and not (root / "manifest.jsonl").exists():
            raise CacheError(f"{root}: prepare did not finish; run the same `emovid prepare` again to resume")
        record = json.loads((root / "cache.json").read_text())
        version = record["settings"].get("version")
        if version != CACHE_FORMAT_VERSION:
            raise CacheError(
                f"{root}: cache format {version} is not this emovid's {CACHE_FORMAT_VERSION}; prepare it again"
            )
        splits = {name: tuple(subjects) for name, subjects in record["splits"].items()}
        entries = read_merged_jsonl(root / "manifest.jsonl", "key")  # the shards' lists while there are any
        return cls(root, PrepareSettings.from_dict(record["settings"]), entries, record["dataset"],
                   tuple(record["classes"]), splits)

    def clip_path(self, key: str) -> Path:
        return _clip_path(self.root / "clips", key, self.settings.storage)

    def load(self, key: str) -> np.ndarray:
        """uint8 (T, C, H, W) frames of one clip."""
        return load_clip(self.clip_path(key), self.settings.frames)

    def check_compatible(self, frames: int, size: int | None = None) -> None:
        """Refuse, with a clear message, a cache that cannot give clips of ``frames`` frames at ``size``.

        A cache with more frames than asked is fine: a uniform subset of them is used.
        """
        have_frames, have_size = self.settings.frames, self.settings.resize.size
        if frames > have_frames or (size is not None and size != have_size):
            raise CacheError(
                f"{self.root} holds clips of {have_frames} frames at {have_size}x{have_size}, but {frames} frames "
                f"at {size or have_size}x{size or have_size} were asked for; run `emovid prepare --frames {frames} "
                f"--size {size or have_size}` into another folder"
            )


def merge_shards(root: str | Path) -> tuple[int, int]:
    """Join the shards' ``manifest.shard-K-of-N.jsonl`` and ``rejects...`` into ``manifest.jsonl`` and
    ``rejects.jsonl`` (the files one whole run writes) and delete them; returns (clips, rejects).

    Raises:
        CacheError: not a cache, no shard lists, or a shard that has not finished.
    """
    root = Path(root)
    if not (root / "cache.json").exists():
        raise CacheError(f"{root}: not a clip cache (no cache.json)")
    try:
        clips = merge_files(root / "manifest.jsonl", sort_key="key")
        rejects = merge_files(root / "rejects.jsonl", sort_key="file")
    except ShardError as exc:
        raise CacheError(str(exc)) from None
    return clips, rejects


def cpu_workers() -> int:
    """A sensible default number of worker processes."""
    return max(1, min(8, os.cpu_count() or 1))
