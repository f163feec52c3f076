"""How much one server accepts and does at once: the one place these settings are declared and checked."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


def _limit(default: float | None, help: str, *, low: float, above: bool = False, metavar: str = "N") -> Any:
    """A field of :class:`Limits`: its default, help, and its lower bound (``above``: the bound itself is out)."""
    return field(default=default, metadata={"help": help, "low": low, "above": above, "metavar": metavar})


@dataclass(frozen=True)
class Limits:
    """Sizes, times and counts that bound a server; a value out of range is a one-line ValueError naming its flag.

    Uploads are received apart from predictions: a slow client holds one of the ``max_uploads`` receiving places
    (``uploads_per_client`` per address) and never a worker; an upload joins the ``workers`` + ``queue``
    places only once its body is complete on disk. Live connections score on threads of their own, one frame at a
    time each, ``live_connections`` at most.
    """

    max_mb: float = _limit(100.0, "largest upload in MiB", low=0, above=True, metavar="MIB")
    max_seconds: float = _limit(120.0, "longest video in seconds", low=0, above=True, metavar="SECONDS")
    workers: int | None = _limit(None, "videos predicted at a time (default: one per core)", low=1)
    queue: int | None = _limit(None, "complete uploads waiting for a worker, beyond those (default: 2x workers)",
                               low=0)
    max_uploads: int = _limit(16, "uploads received at once, from all clients", low=1)
    uploads_per_client: int = _limit(4, "uploads received at once from one client address", low=1)
    upload_timeout: float = _limit(120.0, "seconds for a whole upload", low=0, above=True, metavar="SECONDS")
    upload_idle: float = _limit(5.0, "seconds an upload may go without sending a byte", low=0, above=True,
                                metavar="SECONDS")
    live_connections: int = _limit(4, "live camera connections at once (/v1/live)", low=1)
    live_fps: float = _limit(15.0, "frames a second one live connection may send; beyond, frames are dropped unread",
                             low=0, above=True)
    live_max_kb: float = _limit(512.0, "largest live frame (a JPEG image) in KiB", low=0, above=True, metavar="KIB")
    live_idle: float = _limit(10.0, "seconds a live connection may go without sending a frame", low=0, above=True,
                              metavar="SECONDS")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            low, above = f.metadata["low"], f.metadata["above"]
            if not math.isfinite(value) or value < low or (above and value == low):
                rule = f"> {low:g}" if above else f">= {low:g}"
                raise ValueError(f"{flag(f.name)} must be a number {rule}, got {value:g}")
            if f.type in ("int", "int | None") and value != int(value):
                raise ValueError(f"{flag(f.name)} must be a whole number, got {value:g}")

    @property
    def max_bytes(self) -> int:
        return round(self.max_mb * 2**20)

    @property
    def live_max_bytes(self) -> int:
        return round(self.live_max_kb * 2**10)

    @property
    def worker_count(self) -> int:
        from emovid.data.cache import cpu_workers

        return self.workers or cpu_workers()

    @property
    def queue_length(self) -> int:
        return 2 * self.worker_count if self.queue is None else self.queue


def flag(name: str) -> str:
    """The command-line flag of a :class:`Limits` field."""
    return "--" + name.replace("_", "-")


def limit_fields() -> list[dataclasses.Field]:
    """The fields of :class:`Limits`, in order, for generating command-line flags."""
    return list(dataclasses.fields(Limits))
