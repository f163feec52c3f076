"""Work split across machines: shard K of N takes every N-th input of the sorted list, and writes its own files.

A SLURM array or a Kubernetes indexed job runs one shard per task into the same cache or output folder; no
two shards write the same file (clips are per input, and lists carry the shard's tag, as in
``manifest.shard-2-of-4.jsonl``), and :func:`merge_files` joins the lists into the one file a single run
would have written.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from emovid.data.atomic import write_bytes_atomic

T = TypeVar("T")

_TAG = re.compile(r"\.shard-(\d+)-of-(\d+)$")


class ShardError(ValueError):
    """A shard that cannot be used or merged; the message is one line naming the file."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ShardError(f"shard {self.index}/{self.count}: need 1 <= K <= N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"``: the second of four shards."""
        k, slash, n = text.partition("/")
        if not slash or not k.strip().isdigit() or not n.strip().isdigit():
            raise ShardError(f"shard {text!r}: use K/N, e.g. 2/4 (K from 1 to N)")
        return cls(int(k), int(n))

    @property
    def tag(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def select(self, items: Iterable[T], key: Callable[[T], str]) -> list[T]:
        """This shard's items: the i-th of the items sorted by ``key`` belongs to shard ``i % N + 1``, so the
        shards of one list are disjoint, cover it, and stay the same on every machine."""
        ordered = sorted(items, key=key)
        return [item for i, item in enumerate(ordered) if i % self.count == self.index - 1]

    def path(self, path: str | Path) -> Path:
        """``out/preds.json`` -> ``out/preds.shard-2-of-4.json``: the file this shard writes instead."""
        path = Path(path)
        return path.with_name(f"{path.stem}.{self.tag}{path.suffix}")


def shard_files(path: str | Path) -> list[Path]:
    """The shard files of ``path`` (``x.shard-K-of-N.ext`` beside ``x.ext``), in shard order.

    Raises:
        ShardError: files of different shard counts, or a shard missing (it has not finished).
    """
    path = Path(path)
    found: dict[tuple[int, int], Path] = {}
    for candidate in path.parent.glob(f"{path.stem}.shard-*-of-*{path.suffix}"):
        match = _TAG.search(candidate.name.removesuffix(path.suffix))
        if match:
            found[int(match[1]), int(match[2])] = candidate
    if not found:
        return []
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise ShardError(f"{path}: shard files of {' and '.join(map(str, counts))} shards; delete one set")
    missing = [k for k in range(1, counts[0] + 1) if (k, counts[0]) not in found]
    if missing:
        raise ShardError(f"{path}: shard {', '.join(map(str, missing))} of {counts[0]} has not finished (no "
                         f"{Shard(missing[0], counts[0]).path(path).name})")
    return [found[k, counts[0]] for k in range(1, counts[0] + 1)]


def read_merged_jsonl(path: str | Path, sort_key: str | None = None) -> list[dict]:
    """The records of a JSON-lines file, or of its shard files joined when there are any."""
    files = shard_files(path) or [Path(path)]
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    return sorted(records, key=lambda r: r[sort_key]) if sort_key else records


def merge_files(path: str | Path, sort_key: str = "file") -> int:
    """Join the shard files of ``path`` (JSON lines, a JSON list, or CSV with one header) into ``path``, sorted by
    ``sort_key``, then delete them; returns the number of records.

    Raises:
        ShardError: no shard files, a shard missing, or CSV headers that differ.
    """
    path = Path(path)
    files = shard_files(path)
    if not files:
        raise ShardError(f"{path}: no shard files ({path.stem}.shard-K-of-N{path.suffix}) to merge")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        count, data = _merge_csv(files, sort_key)
    elif suffix == ".json":
        records = sorted((r for f in files for r in json.loads(f.read_text())), key=lambda r: str(r.get(sort_key)))
        count, data = len(records), json.dumps(records, indent=2) + "\n"
    else:
        records = read_merged_jsonl(path)
        records.sort(key=lambda r: str(r.get(sort_key)))
        count, data = len(records), "".join(json.dumps(r) + "\n" for r in records)
    write_bytes_atomic(path, data.encode())
    for f in files:
        f.unlink()
    return count


def _merge_csv(files: Sequence[Path], sort_key: str) -> tuple[int, str]:
    """One CSV of the shards' rows; a column only some shards have (``error``, say) goes before the columns every
    shard ends with (the class probabilities)."""
    headers: list[list[str]] = []
    rows: list[dict[str, str]] = []
    for f in files:
        reader = csv.DictReader(io.StringIO(f.read_text()))
        if reader.fieldnames:
            headers.append(list(reader.fieldnames))
            rows.extend(reader)
    if not headers:
        return 0, ""
    tail = 0
    while tail < min(map(len, headers)) and len({tuple(h[len(h) - tail - 1:]) for h in headers}) == 1:
        tail += 1
    suffix = headers[0][len(headers[0]) - tail:] if tail else []
    columns = [c for c in dict.fromkeys(c for h in headers for c in h) if c not in suffix] + suffix
    rows.sort(key=lambda r: r.get(sort_key) or "")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows), buffer.getvalue()
