"""Progress for people and for logs: a live bar on a terminal, plain lines when standard error is a file or pipe.

A log should hold what the bar showed, not thousands of carriage-return redraws. When standard error is not a
terminal, :func:`progress` counts quietly and prints one line when the stage ends (``prepare: 96/96 videos in
12.3 s, 7.8 videos/s``), and one line a minute while a long stage runs; training prints one line per epoch
through :func:`write_line` (see :class:`emovid.training.EpochLines`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

LOG_INTERVAL = 60.0  # seconds between the lines of a long stage when standard error is not a terminal


def is_terminal() -> bool:
    """Whether standard error is a terminal, where a live bar redraws in place."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def write_line(text: str) -> None:
    """One line of progress on standard error."""
    print(text, file=sys.stderr, flush=True)


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str, unit: str,
             enabled: bool = True, leave: bool = True) -> Any:
    """A tqdm bar on a terminal, else a :class:`LineProgress`; silent when not ``enabled``.

    Use it as tqdm: iterate over it, or call ``update``/``write``/``close`` (or use it in a ``with``). ``leave``
    says whether a terminal bar stays on screen when done; the line of a log is always written.
    """
    if enabled and is_terminal():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, silent=not enabled)


class LineProgress:
    """Counts like a progress bar, writes plain lines: one when done, and one every :data:`LOG_INTERVAL` seconds."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str, unit: str,
                 silent: bool = False) -> None:
        self.iterable = iterable
        self.total = total if total is not None or iterable is None else _length(iterable)
        self.desc, self.unit, self.silent = desc, unit, silent
        self.n = 0
        self.start = self.last_line = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last_line >= LOG_INTERVAL:
            self.last_line = now
            self._line(now)

    def write(self, text: str) -> None:
        if not self.silent:
            write_line(text)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line(time.monotonic(), done=True)

    def _line(self, now: float, done: bool = False) -> None:
        if self.silent:
            return
        seconds = now - self.start
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        units = self.unit + ("es" if self.unit.endswith(("s", "x", "ch", "sh")) else "s")
        rate = f", {self.n / seconds:.1f} {units}/s" if seconds > 0 and self.n else ""
        write_line(f"{self.desc}: {count} {units} {'in' if done else 'so far,'} {seconds:.1f} s{rate}")


def _length(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
