"""Subject-independent splits: named groups of subjects, k-fold cross-validation, and counts per split."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from emovid.data.entry import Entry, subject_order

Split = dict[str, tuple[str, ...]]  # split name ("train", "val", "test") -> subjects
SPLIT_FLAGS = {"train": "--train-subjects", "val": "--val-subjects", "test": "--test-subjects"}

_RANGE_END = re.compile(r"^(\D*)(\d+)$")


def parse_subjects(text: str) -> tuple[str, ...]:
    """Subjects from text: ``"1-20"``, ``"21,22"``, ``"1001-1010"``, ``"M003,W011"`` or ``"M003-M007"``.

    Plain numbers lose leading zeros (``01`` is subject ``1``); a range of prefixed names keeps the prefix
    and the width of its digits.
    """
    subjects: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, dash, hi = part.partition("-")
        if not dash:
            subjects.append(normalise_subject(lo))
            continue
        start, end = _RANGE_END.match(lo.strip()), _RANGE_END.match(hi.strip())
        if not start or not end or start[1] != end[1] or int(start[2]) > int(end[2]):
            raise ValueError(f"bad subject range {part!r}: use ranges like 1-20 or M003-M007")
        prefix, width = start[1], len(start[2]) if start[1] else 0
        subjects.extend(f"{prefix}{n:0{width}d}" for n in range(int(start[2]), int(end[2]) + 1))
    if not subjects:
        raise ValueError(f"no subjects in {text!r}")
    return tuple(subjects)


def normalise_subject(subject: object) -> str:
    """A subject as the text entries carry: numbers without leading zeros, names stripped."""
    text = str(subject).strip()
    return str(int(text)) if text.isdigit() else text


def check_disjoint(split: Mapping[str, Sequence[str]]) -> None:
    """Raises ValueError when a subject is in two splits (that would leak identities)."""
    owner: dict[str, str] = {}
    for name, subjects in split.items():
        for subject in subjects:
            if subject in owner and owner[subject] != name:
                raise ValueError(f"subject {subject} is in both the {owner[subject]} and the {name} subjects: a "
                                 f"subject belongs to one split ({SPLIT_FLAGS.get(owner[subject], owner[subject])}, "
                                 f"{SPLIT_FLAGS.get(name, name)})")
            owner[subject] = name


def split_by_subjects(entries: Iterable[Entry], split: Mapping[str, Sequence[str]]) -> dict[str, list[Entry]]:
    """Group entries by the split their subject belongs to; subjects in no split are left out."""
    check_disjoint(split)
    owner = {subject: name for name, subjects in split.items() for subject in subjects}
    groups: dict[str, list[Entry]] = {name: [] for name in split}
    for entry in entries:
        if entry.subject in owner:
            groups[owner[entry.subject]].append(entry)
    return groups


def kfold_splits(subjects: Sequence[str], folds: int) -> list[Split]:
    """Subject-independent k-fold cross-validation.

    Subjects are cut, in natural order, into ``folds`` contiguous groups (for RAVDESS's 24 actors and 6
    folds: 1-4, 5-8, ..., two male and two female actors each). Fold i tests on group i, validates on group
    i+1 (wrapping) and trains on the rest.
    """
    ordered = sorted(set(subjects), key=subject_order)
    if len(ordered) < 3:
        raise ValueError(f"--kfold {folds}: k-fold needs 3 subjects or more (one to test, one to validate, one to "
                         f"train per fold) and this data has {len(ordered)}")
    if not 3 <= folds <= len(ordered):
        raise ValueError(f"--kfold {folds}: this data has {len(ordered)} subjects; pass --kfold K with "
                         f"3 <= K <= {len(ordered)}")
    bounds = [round(i * len(ordered) / folds) for i in range(folds + 1)]
    groups = [tuple(ordered[bounds[i] : bounds[i + 1]]) for i in range(folds)]
    result = []
    for i in range(folds):
        val, test = groups[(i + 1) % folds], groups[i]
        train = tuple(s for s in ordered if s not in val and s not in test)
        result.append({"train": train, "val": val, "test": test})
    return result


def named_splits(subjects: Sequence[str], default: Split, custom: Mapping[str, Sequence[str] | None] | None = None,
                 kfold: int | None = None, fold: int | None = None) -> dict[str, Split]:
    """The splits a user asked for, by name: ``{"study": default}``, ``{"custom": {...}}`` (the given train, val
    and test subjects, the others ``default``'s, as training takes them) or ``{"fold0": {...}, ...}`` (k folds
    over ``subjects``; only ``fold`` when given).

    Raises:
        ValueError: both custom subjects and k-fold, a fold out of range, or a subject in two parts.
    """
    chosen: Split = {k: tuple(v) for k, v in (custom or {}).items() if v}
    if kfold:
        if chosen:
            raise ValueError("use either --kfold or --train/--val/--test-subjects, not both")
        folds = kfold_splits(subjects, kfold)
        if fold is not None and not 0 <= fold < len(folds):
            raise ValueError(f"--fold must be in 0..{len(folds) - 1}")
        return {f"fold{i}": folds[i] for i in (range(len(folds)) if fold is None else [fold])}
    if chosen:
        custom_split = {k: chosen.get(k, tuple(default.get(k, ()))) for k in ("train", "val", "test")}
        check_disjoint(custom_split)
        return {"custom": custom_split}
    return {"study": dict(default)}


def format_subjects(subjects: Iterable[str], limit: int = 12) -> str:
    """Subjects as short text: numeric runs as ranges (``1-20,23``), at most ``limit`` items, ``none`` if empty."""
    items: list[str] = []
    run: list[int] = []
    for subject in sorted(set(subjects), key=subject_order):
        if subject.isdigit() and run and int(subject) == run[-1] + 1:
            run.append(int(subject))
            continue
        if run:
            items[-1] = f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0])
        run = [int(subject)] if subject.isdigit() else []
        items.append(subject)
    if run:
        items[-1] = f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ",".join(items[:limit]) + more if items else "none"


def empty_part_message(name: str, subjects: Sequence[str], available: Iterable[str]) -> str:
    """One line on a split part without videos: the subjects it asks for, the data's, and the flag that sets it."""
    available = set(available)
    asked = f"subjects {format_subjects(subjects)} have no videos" if subjects else "no subjects are given"
    have = f"the data has subjects {format_subjects(available)}"
    if len(available) < 3:
        return (f"the {name} split is empty: {asked} ({have}, and train, val and test need one each): use data "
                f"with 3 subjects or more")
    return f"the {name} split is empty: {asked} ({have}); set it with {SPLIT_FLAGS.get(name, name)} (or use --kfold K)"


def check_parts(split: Mapping[str, Sequence[str]], available: Iterable[str]) -> None:
    """Raises ValueError (see :func:`empty_part_message`) when a part of ``split`` holds none of the ``available``
    subjects, or when a subject is in two parts."""
    check_disjoint(split)
    present = set(available)
    for name, subjects in split.items():
        if not present.intersection(subjects):
            raise ValueError(empty_part_message(name, subjects, present))


def proportional_split(subjects: Sequence[str], val: float = 0.1, test: float = 0.1) -> Split:
    """Train, val and test subjects in natural order: the last ``test`` share tests, the ``val`` share before
    it validates (each at least one subject when there are three or more)."""
    ordered = sorted(set(subjects), key=subject_order)
    n = len(ordered)
    if n < 3:
        return {"train": tuple(ordered), "val": (), "test": ()}
    n_test, n_val = max(1, round(n * test)), max(1, round(n * val))
    return {
        "train": tuple(ordered[: n - n_val - n_test]),
        "val": tuple(ordered[n - n_val - n_test : n - n_test]),
        "test": tuple(ordered[n - n_test :]),
    }


def count_table(groups: Mapping[str, Sequence[Entry]], classes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts per split and class, with a ``total`` per split."""
    table: dict[str, dict[str, int]] = {}
    for name, entries in groups.items():
        counts = Counter(e.label for e in entries)
        table[name] = {c: counts.get(c, 0) for c in classes}
        table[name]["total"] = len(entries)
    return table
