"""Output paths checked before any work: no command writes over its inputs, over a video, or under a wrong suffix.

An option put before the inputs (``emovid predict --json a.mp4 b.mp4``) swallows the first input as its
path; writing there would destroy the video. Every path a command will write is checked here first, and a
wrong one is an :class:`OutputError` of one line naming the option and the file, raised before anything is
read. The rules, by kind of output:

- a file (``json``, ``csv``, ``video``, ``onnx``): its suffix is the one its format implies (``.json``,
  ``.csv``, ``.mp4``/``.mkv``, ``.onnx``), it is not a folder, and it is not an existing video. One exception,
  for scripts: an existing **empty** file whose suffix names no format (what ``mktemp`` makes, ``tmp.x3Fq9A``)
  may be written, since nothing can be lost;
- a ``prefix`` (``PREFIX.csv``, ``.json`` and ``.png`` are written): it is not an existing file and does not
  end in a video suffix;
- a ``folder``: it is not an existing file and does not end in a video suffix;
- every one: it is none of the inputs (nor, for a prefix, are its files), and no two outputs are one path.

``-`` (standard output) is always a valid file output.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emovid.data.source import VIDEO_SUFFIXES

Kind = Literal["json", "csv", "video", "onnx", "prefix", "folder"]
SUFFIXES: dict[str, tuple[str, ...]] = {"json": (".json",), "csv": (".csv",), "video": (".mp4", ".mkv"),
                                        "onnx": (".onnx",)}
_NAMES = {"json": "JSON", "csv": "CSV", "video": "video", "onnx": "ONNX"}
_HINT = "the word after {} is its value: give the inputs first"
TIMELINE_SUFFIXES = (".csv", ".json", ".png")  # the files a timeline PREFIX stands for
STDOUT = "-"


class OutputError(ValueError):
    """An output path that would destroy a file or has the wrong suffix; the message is one line."""


@dataclass(frozen=True)
class Output:
    """A path a command will write, with the option that named it (for the message) and its kind."""

    option: str
    path: str | Path | None  # None: the option was not given, nothing to check
    kind: Kind

    def paths(self) -> list[Path]:
        """What this output writes: its file, a prefix's files, or a folder (itself); none for standard output."""
        if self.path is None or str(self.path) == STDOUT:
            return []
        return prefix_files(self.path) if self.kind == "prefix" else [Path(self.path)]


def prefix_files(prefix: str | Path) -> list[Path]:
    """``PREFIX.csv``, ``PREFIX.json`` and ``PREFIX.png``: what a timeline prefix writes."""
    return [Path(f"{prefix}{suffix}") for suffix in TIMELINE_SUFFIXES]


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path] = ()) -> None:
    """Check every output before a command reads anything (rules in the module docstring).

    Args:
        outputs: the paths the command will write (those with a None path are skipped).
        inputs: the paths it reads (files, folders or glob patterns, as the user typed them).

    Raises:
        OutputError: one line naming the option and the file, and what to do.
    """
    outputs = [o for o in outputs if o.path is not None]
    taken = _input_files(inputs)
    written: dict[str, Output] = {}
    for output in outputs:
        _check_kind(output)
        for file in output.paths():
            key = _identity(file)
            if key in taken:
                what = "is the input" if output.kind == "folder" else "would write over the input"
                raise OutputError(f"{output.option} {output.path}: {what} {taken[key]}; choose another output name")
            if key in written:
                raise OutputError(f"{output.option} {output.path} and {written[key].option} {written[key].path} "
                                  f"would both write {file}")
            written[key] = output


def _check_kind(output: Output) -> None:
    path = Path(str(output.path))
    where = f"{output.option} {output.path}"
    if output.kind in ("prefix", "folder"):
        what = "a timeline prefix (PREFIX.csv, .json and .png are written)" if output.kind == "prefix" else "a folder"
        if path.is_file():
            raise OutputError(f"{where}: an existing file, but this option takes {what}; choose another name")
        if _is_video_name(path):
            raise OutputError(f"{where}: a video name, but this option takes {what} ({_HINT.format(output.option)})")
        return
    if str(output.path) == STDOUT:
        return
    allowed = SUFFIXES[output.kind]
    if path.suffix.lower() not in allowed and not _is_blank_temporary(path):
        raise OutputError(f"{where}: a {_NAMES[output.kind]} output must end in {' or '.join(allowed)} "
                          f"({_HINT.format(output.option)})")
    if path.is_dir():
        raise OutputError(f"{where}: a folder; give a file name")
    if path.exists() and _is_video_name(path):
        raise OutputError(f"{where}: an existing video; emovid never writes over a video: remove it or choose "
                          f"another name")


def _is_blank_temporary(path: Path) -> bool:
    """An existing empty file whose suffix names no format: ``mktemp``'s, handed over by a script."""
    known = {*VIDEO_SUFFIXES, *(s for suffixes in SUFFIXES.values() for s in suffixes), *TIMELINE_SUFFIXES}
    return path.is_file() and path.stat().st_size == 0 and path.suffix.lower() not in known


def _is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _identity(path: str | Path) -> str:
    """What makes two paths one file: the resolved path (links followed)."""
    return os.path.realpath(path)


def _input_files(inputs: Iterable[str | Path]) -> dict[str, str]:
    """Resolved path -> the input as typed, for every input (glob patterns expanded)."""
    found: dict[str, str] = {}
    for text in map(str, inputs):
        matches: Sequence[str] = [text]
        if not os.path.exists(text) and glob.escape(text) != text:
            matches = glob.glob(text, recursive=True) or [text]
        for match in matches:
            found.setdefault(_identity(match), match)
    return found
