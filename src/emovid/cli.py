"""The ``emovid`` command line: one sub-command per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

Runner = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """An error to show the user as one line, without a stack trace."""


def _int_list(text: str) -> tuple[int, ...]:
    from emovid.data.ravdess import parse_actor_list

    try:
        return parse_actor_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_data_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="folder of Actor_XX/ folders or official Video_Speech_Actor_XX.zip")
    p.add_argument("--modalities", type=_int_list, default=(1, 2),
                   help="modality codes to use: 1 full-AV, 2 video-only (default 1,2 as the study)")
    p.add_argument("--vocal-channels", type=_int_list, default=(1,),
                   help="vocal channel codes: 1 speech, 2 song (default 1)")


def _add_split_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("actor split (default: the study's, train 1-20, val 21-22, test 23-24)")
    g.add_argument("--train-actors", type=_int_list, help="e.g. 1-20")
    g.add_argument("--val-actors", type=_int_list, help="e.g. 21,22")
    g.add_argument("--test-actors", type=_int_list, help="e.g. 23-24")
    g.add_argument("--kfold", type=int, metavar="K", help="actor-independent K-fold cross-validation")
    g.add_argument("--fold", type=int, default=None, help="with --kfold, only this fold (0-based)")


def split_from_args(args: argparse.Namespace) -> dict[str, dict[str, tuple[int, ...]]]:
    """Named actor splits from the split options: ``{"study": {...}}`` or ``{"fold0": {...}, ...}``."""
    from emovid.data.ravdess import STUDY_SPLIT, kfold_splits

    custom = {k: getattr(args, f"{k}_actors") for k in ("train", "val", "test")}
    if args.kfold:
        if any(custom.values()):
            raise CliError("use either --kfold or --train/--val/--test-actors, not both")
        folds = kfold_splits(folds=args.kfold)
        chosen = range(len(folds)) if args.fold is None else [args.fold]
        if args.fold is not None and not 0 <= args.fold < len(folds):
            raise CliError(f"--fold must be in 0..{len(folds) - 1}")
        return {f"fold{i}": folds[i] for i in chosen}
    if any(custom.values()):
        return {"custom": {k: v or () for k, v in custom.items()}}
    return {"study": dict(STUDY_SPLIT)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emovid", description="Emotion recognition in videos from the face alone.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_index, _add_prepare):
        add(sub)
    return parser


def _add_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="count RAVDESS videos per split and emotion")
    _add_data_filters(p)
    _add_split_options(p)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(run=_run_index)


def _run_index(args: argparse.Namespace) -> int:
    from emovid.data.ravdess import EMOTIONS, count_table, scan

    if not args.data.exists():
        raise CliError(f"{args.data}: no such file or folder")
    index = scan(args.data, args.modalities, args.vocal_channels)
    tables = {name: count_table(index.split(split)) for name, split in split_from_args(args).items()}
    rejects = [{"file": r.file, "reason": r.reason} for r in index.rejects]
    if args.json:
        print(json.dumps({"videos": len(index.entries), "splits": tables, "rejects": rejects}, indent=2))
        return 0
    print(f"{len(index.entries)} videos in {args.data}")
    header = ["split", *EMOTIONS, "total"]
    widths = [max(7, len(h)) for h in header]
    for name, table in tables.items():
        print(f"\n{name}")
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for split_name, counts in table.items():
            row = [split_name, *(str(counts[e]) for e in EMOTIONS), str(counts["total"])]
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    for r in rejects:
        print(f"skipped {r['file']}: {r['reason']}", file=sys.stderr)
    return 0


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="decode every video once into a clip cache (resumable)")
    _add_data_filters(p)
    p.add_argument("--out", type=Path, required=True, help="cache folder")
    p.add_argument("--frames", type=int, default=16, help="frames per clip, spread uniformly (default 16)")
    p.add_argument("--resize", choices=("intelligent", "naive"), default="intelligent",
                   help="intelligent: short side, then centre crop; naive: squash (default intelligent)")
    p.add_argument("--size", type=int, default=224, help="output size in pixels (default 224)")
    p.add_argument("--short-side", type=int, default=None,
                   help="short side before the centre crop (default size*256/224)")
    p.add_argument("--storage", choices=("npy", "jpeg"), default="npy",
                   help="npy: raw uint8, memory-mapped (default); jpeg: about 10x smaller, slower to read")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from emovid.data.cache import CacheError, PrepareSettings, cpu_workers, prepare
    from emovid.data.video import Resize

    if not args.data.exists():
        raise CliError(f"{args.data}: no such file or folder")
    short_side = args.short_side or round(args.size * 256 / 224)
    try:
        settings = PrepareSettings(args.frames, Resize(args.resize, args.size, short_side), args.storage)
        report = prepare(args.data, args.out, settings, modalities=args.modalities,
                         vocal_channels=args.vocal_channels, workers=args.workers or cpu_workers())
    except (CacheError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"{report.written} clips written, {report.reused} already in the cache, "
          f"{len(report.rejects)} skipped, in {report.seconds:.1f}s -> {args.out}")
    if report.rejects:
        print(f"skipped videos are listed in {args.out / 'rejects.jsonl'}")
    return 0 if report.written + report.reused else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        return run(args)
    except CliError as exc:
        print(f"emovid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emovid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
