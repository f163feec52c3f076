"""Grids of training runs and the study's results table.

A grid file (YAML)::

    data: /path/to/RAVDESS          # a collection; a cache is prepared per frame count and resize
    dataset: ravdess                # the adapter that reads it (default ravdess; see emovid.datasets)
    out: experiments/study
    size: 224                       # crop size of the caches (short side: size * 256 / 224)
    crop: center                    # or face: a square around the detected face
    splits: study                   # the dataset's own split (RAVDESS: the study's), or {kfold: 6}
    base: {epochs: 30, batch_size: 16, lr: 0.0003}   # TrainConfig values shared by every run
    per_model:                      # optional: TrainConfig values for one model, over base
      r3d18: {lr: 0.0001}
    grid:
      model: [early-fusion-cnn, early-fusion-resnet18, late-fusion-resnet18, r3d18, cnn-lstm]
      frames: [6, 10, 16]
      augment: [true, false]
      resize: [intelligent]
      seed: [0]

Every run has a fixed folder under ``out/runs``; a finished run (``test/metrics.json`` present) is skipped
on the next call unless its training settings changed (then it is kept as ``<run>.stale-N`` and trained
again), an interrupted one resumes from its last checkpoint, and a run that fails is recorded and the grid
goes on.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import statistics
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emovid.config import ConfigError, TrainConfig, coerce, config_fields, load_config, read_yaml_mapping
from emovid.data.atomic import write_bytes_atomic
from emovid.data.cache import ClipCache, PrepareSettings, prepare
from emovid.data.video import RESIZE_MODES, Resize
from emovid.datasets import index_dataset
from emovid.datasets.splits import Split, kfold_splits

GRID_KEYS = ("model", "frames", "augment", "resize", "seed")
GRID_DEFAULTS: dict[str, list[Any]] = {"frames": [16], "augment": [True], "resize": ["intelligent"], "seed": [0]}


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid, for one split (the dataset's, or one fold)."""

    model: str
    frames: int
    augment: bool
    resize: str
    seed: int
    split: str  # "study" (the dataset's split) or "fold<i>"

    @property
    def name(self) -> str:
        aug = "aug" if self.augment else "noaug"
        return f"{self.model}-t{self.frames}-{aug}-{self.resize}-{self.split}-s{self.seed}"


@dataclass
class Experiment:
    """A parsed grid file."""

    data: Path
    out: Path
    size: int = 224
    storage: str = "npy"
    workers: int = 2
    crop: str = "center"  # or "face": every cache crops a square around the face
    kfold: int | None = None  # None: the dataset's split; K: subject-independent K-fold cross-validation
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: str = "ravdess"

    def __post_init__(self) -> None:
        if self.kfold is not None and self.kfold < 3:
            raise ConfigError(f"splits: kfold must be at least 3, got {self.kfold}")
        unknown = set(self.grid) - set(GRID_KEYS)
        if unknown or not self.grid.get("model"):
            raise ConfigError(f"grid needs 'model' and takes only {', '.join(GRID_KEYS)}")
        self.grid = {key: _grid_values(key, self.grid.get(key) or GRID_DEFAULTS.get(key, [])) for key in GRID_KEYS}
        strays = set(self.per_model) - set(self.grid.get("model", []))
        if strays:
            raise ConfigError(f"per_model names models not in the grid: {', '.join(sorted(strays))}")
        for model in [None, *self.grid["model"]]:
            try:  # fail before the first run, not in the middle of the grid
                self.settings_for(model)
            except ConfigError as exc:
                where = "base" if model is None else f"per_model.{model}" if model in self.per_model else "grid.model"
                raise ConfigError(f"{where}: {exc}") from None

    def settings_for(self, model: str | None) -> TrainConfig:
        """The training settings shared by every run of ``model``: base, then its per_model values."""
        chosen = {"model": model} if model else {}
        return TrainConfig.from_dict({**self.base, **self.per_model.get(model or "", {}), **chosen})

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> Experiment:
        raw = read_yaml_mapping(path, "grid keys")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("data", "out"):
            if key not in raw:
                raise ConfigError(f"{path}: missing {key!r}")
        for key in ("base", "per_model", "grid"):
            if not isinstance(raw.get(key) or {}, dict):
                raise ConfigError(f"{path}: {key} must be a mapping, got a {type(raw[key]).__name__}")
        grid = raw.get("grid") or {}
        splits = raw.get("splits", "study")
        try:
            if isinstance(splits, dict) and "kfold" in splits:
                kfold = int(splits["kfold"])
            elif splits == "study":
                kfold = None
            else:
                raise ConfigError("splits must be 'study' or {kfold: K}")
            per_model = {str(model): dict(values or {}) for model, values in (raw.get("per_model") or {}).items()}
            return cls(Path(raw["data"]), Path(raw["out"]), int(raw.get("size", 224)), raw.get("storage", "npy"),
                       int(raw.get("workers", 2)), raw.get("crop", "center"), kfold, dict(raw.get("base") or {}),
                       dict(grid), per_model, str(raw.get("dataset", "ravdess")))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # a list where a mapping belongs, text for a number
            raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None

    @property
    def split_names(self) -> list[str]:
        return ["study"] if self.kfold is None else [f"fold{i}" for i in range(self.kfold)]

    def runs(self) -> Iterator[RunSpec]:
        for model, frames, augment, resize, seed in itertools.product(*(self.grid[k] for k in GRID_KEYS)):
            for split in self.split_names:
                yield RunSpec(model, frames, augment, resize, seed, split)

    def subjects_for(self, run: RunSpec, cache: ClipCache) -> Split:
        """The run's train, val and test subjects: the dataset's split, or fold i of the cache's subjects."""
        if self.kfold is None:
            return {name: cache.splits.get(name, ()) for name in ("train", "val", "test")}
        return kfold_splits([e["subject"] for e in cache.entries], self.kfold)[int(run.split.removeprefix("fold"))]

    def cache_dir(self, frames: int, resize: str) -> Path:
        return self.out / "caches" / f"{resize}-{self.crop}-t{frames}-{self.size}"

    def ensure_cache(self, frames: int, resize: str, progress: bool = True) -> Path:
        """Prepare (or finish preparing) the cache a run needs; cheap when it is complete."""
        folder = self.cache_dir(frames, resize)
        if not (folder / "manifest.jsonl").exists():
            short_side = round(self.size * 256 / 224)
            settings = PrepareSettings(frames, Resize(resize, self.size, short_side), self.storage, crop=self.crop)
            prepare(index_dataset(self.data, self.dataset), folder, settings, workers=self.workers, progress=progress)
        return folder

    def config_for(self, run: RunSpec, cache: Path) -> TrainConfig:
        """The run's TrainConfig; its subjects stay unset (None) while ``cache`` is not prepared yet."""
        subjects = self.subjects_for(run, ClipCache.open(cache)) if (cache / "manifest.jsonl").exists() else {}
        values = {
            **self.base,
            **self.per_model.get(run.model, {}),
            "cache": str(cache),
            "model": run.model,
            "frames": run.frames,
            "augment": run.augment,
            "seed": run.seed,
            "train_subjects": subjects.get("train"),
            "val_subjects": subjects.get("val"),
            "test_subjects": subjects.get("test"),
            "runs_dir": str(self.out / "runs"),
            "name": run.name,
        }
        return TrainConfig.from_dict(values)


def _grid_values(key: str, values: Any) -> list[Any]:
    """A grid axis as a list of values typed as TrainConfig types them ("no" is False, "6" is 6)."""
    values = values if isinstance(values, list) else [values]
    if key == "resize":
        bad = [v for v in values if v not in RESIZE_MODES]
        if bad:
            raise ConfigError(f"grid.resize: {bad[0]!r} must be one of {', '.join(RESIZE_MODES)}")
        return values
    typed = {f.name: (f, hint) for f, hint in config_fields()}
    try:
        return [coerce(*typed[key], value) for value in values]
    except ConfigError as exc:
        raise ConfigError(f"grid.{exc}") from None


def run_experiment(experiment: Experiment, progress: bool = True, log=print) -> list[dict]:
    """Run every grid cell not yet finished, then write ``results.csv`` and ``results.md``; returns the rows."""
    from emovid.training import train

    runs = list(experiment.runs())
    for number, run in enumerate(runs, start=1):
        run_dir = experiment.out / "runs" / run.name
        if (run_dir / "test" / "metrics.json").exists():
            changed = changed_settings(experiment, run, run_dir)
            if not changed:
                log(f"[{number}/{len(runs)}] {run.name}: finished earlier, skipped")
                continue
            aside = _set_aside(run_dir, "stale")
            log(f"[{number}/{len(runs)}] {run.name}: finished earlier with other settings ({changed}); "
                f"kept as {aside.name}, training again")
        log(f"[{number}/{len(runs)}] {run.name}")
        try:
            cache = experiment.ensure_cache(run.frames, run.resize, progress)
            config = experiment.config_for(run, cache).replace(progress=progress)
            resume = run_dir if (run_dir / "checkpoints" / "last.ckpt").exists() else None
            if run_dir.exists() and resume is None:
                _set_aside(run_dir, "incomplete")
            train(config, resume=resume)
        except Exception as exc:  # one failed run must not stop the grid; it is recorded and reported
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(traceback.format_exc())
            log(f"    failed: {type(exc).__name__}: {exc} (details in {run_dir / 'error.txt'})")
    rows = collect_results(experiment, runs)
    write_results(experiment.out, rows)
    return rows


def _set_aside(run_dir: Path, why: str) -> Path:
    """Rename a run folder to ``<name>.<why>-N``, so the run starts clean in its fixed folder; returns the new path."""
    n = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.{why}-{n}")).exists():
        n += 1
    run_dir.rename(aside)
    return aside


# Where things are and how they are shown, not what is trained: a run that differs only here is the same run.
# Of the cache, only its folder name counts (it encodes resize, crop, frames and size), so a moved OUT still is.
_NOT_SETTINGS = {"runs_dir", "name", "progress", "num_workers"}


def changed_settings(experiment: Experiment, run: RunSpec, run_dir: Path) -> str:
    """How the grid's settings for ``run`` differ from those its finished folder was trained with ('' if not)."""
    try:
        before = load_config(run_dir / "config.yaml").to_dict()
    except (OSError, ConfigError, TypeError, ValueError):
        return ""  # no readable record of the settings: trust the finished run
    now = experiment.config_for(run, experiment.cache_dir(run.frames, run.resize)).to_dict()
    before["cache"], now["cache"] = Path(before.get("cache") or "").name, Path(now["cache"]).name
    return ", ".join(f"{key} {before.get(key)} -> {now[key]}" for key in now
                     if key not in _NOT_SETTINGS and before.get(key) != now[key]
                     and not (key.endswith("_subjects") and now[key] is None))  # a cache not prepared yet


def collect_results(experiment: Experiment, runs: list[RunSpec]) -> list[dict]:
    rows = []
    for run in runs:
        run_dir = experiment.out / "runs" / run.name
        metrics_path = run_dir / "test" / "metrics.json"
        row: dict[str, Any] = {
            "model": run.model, "frames": run.frames, "augment": run.augment, "resize": run.resize,
            "split": run.split, "seed": run.seed, "epochs": experiment.settings_for(run.model).epochs,
            "run": str(run_dir.relative_to(experiment.out)),
        }
        if metrics_path.exists():
            metrics = json.loads(metrics_path.read_text())
            val_path = run_dir / "val" / "metrics.json"
            val = json.loads(val_path.read_text())["accuracy"] if val_path.exists() else None
            row.update(status="done", accuracy=metrics["accuracy"], balanced_accuracy=metrics["balanced_accuracy"],
                       macro_f1=metrics["macro_f1"], val_accuracy=val)
        else:
            row.update(status="failed" if (run_dir / "error.txt").exists() else "missing")
        rows.append(row)
    return rows


def write_results(out: Path, rows: list[dict]) -> None:
    """``results.csv`` (one row per run) and ``results.md`` (the study's table: mean and std over seeds/folds)."""
    columns = ["model", "frames", "augment", "resize", "split", "seed", "epochs", "status", "accuracy",
               "balanced_accuracy", "macro_f1", "val_accuracy", "run"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(out / "results.csv", buffer.getvalue().encode())
    write_bytes_atomic(out / "results.md", results_table(rows).encode())


def _cell(rows: list[dict]) -> str:
    done = [r for r in rows if r["status"] == "done"]
    if not done:
        return "failed" if any(r["status"] == "failed" for r in rows) else "-"
    accs = [100 * r["accuracy"] for r in done]
    text = f"{accs[0]:.1f}" if len(accs) == 1 else f"{statistics.mean(accs):.1f} ± {statistics.stdev(accs):.1f}"
    return f"[{text}]({done[0]['run']})" if len(done) == 1 else f"{text} (n={len(done)})"


def results_table(rows: list[dict]) -> str:
    """Test accuracy (%) per model (rows) and frames x augmentation x resize (columns).

    When models trained for different numbers of epochs, each row says how many.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    epochs = {r["model"]: r["epochs"] for r in rows}
    show_epochs = len(set(epochs.values())) > 1
    columns = list(dict.fromkeys((r["frames"], r["augment"], r["resize"]) for r in rows))
    show_resize = len({c[2] for c in columns}) > 1
    header = [f"{f} frames{', aug' if a else ''}{f', {z}' if show_resize else ''}" for f, a, z in columns]
    lines = ["| model | " + " | ".join(header) + " |", "|---|" + "---|" * len(columns)]
    for model in models:
        cells = [_cell([r for r in rows if r["model"] == model and (r["frames"], r["augment"], r["resize"]) == c])
                 for c in columns]
        count = epochs[model]
        label = f"{model} ({count} epoch{'' if count == 1 else 's'})" if show_epochs else model
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    note = "Test accuracy (%). Mean ± std over seeds and folds where there are several; a single run links to it."
    return note + "\n\n" + "\n".join(lines) + "\n"
