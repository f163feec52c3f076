"""Atomic file writes: write to a temporary name in the same folder, then rename over the target.

A reader never sees a half-written file, and an interrupted writer leaves only hidden ``.*.part`` files,
which :func:`remove_stale_temporaries` clears. The temporary keeps neither the target's suffix nor its
visibility, so a glob for ``*.json`` or ``*.mp4`` never picks one up as a finished file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".part"


def write_atomic(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write`` on a temporary binary file, flush it to disk, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    write_bytes_atomic(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode())


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def remove_stale_temporaries(folder: Path, owned: Callable[[str], bool] | None = None) -> int:
    """Delete temporaries left by interrupted writers; returns how many.

    ``owned``, given a temporary's target file name, says whether it is this writer's to delete: writers that
    share a folder (shards of one cache) must leave each other's files in progress alone.
    """
    stale = list(folder.glob(f".*{TMP_SUFFIX}")) if folder.is_dir() else []
    if owned is not None:
        stale = [p for p in stale if owned(p.name[1:].rsplit(".", 2)[0])]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
