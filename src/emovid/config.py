"""The typed training configuration: the one place a training setting is declared.

Each field of :class:`TrainConfig` has its type (``Literal`` for choices), default, help and limits. Values
from a YAML file, a grid file or the command line (whose flags are generated from the fields) are coerced
to the field's type and checked; a wrong value is a :class:`ConfigError` of one line naming the field, the
value and what is allowed. The resolved configuration is saved in every run folder as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from emovid.datasets.splits import check_disjoint, normalise_subject, parse_subjects


class ConfigError(ValueError):
    """A configuration value that is missing, unknown or out of range; the message is one line."""


def setting(default: Any = None, help: str = "", *, low: float | None = None, above: float | None = None,
            flag: bool = True, metavar: str | None = None) -> Any:
    """A TrainConfig field: its default, its help, and its limits (``low`` <= value, ``above`` < value).

    ``flag=False`` keeps it off the command line (set it in the YAML file).
    """
    meta = {"help": help, "low": low, "above": above, "flag": flag, "metavar": metavar}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on."""

    cache: str = setting("", "a prepared clip cache (emovid prepare)")
    model: str = setting("late-fusion-resnet18", "model name (emovid train --list-models)")
    model_options: dict[str, Any] = setting({}, "model options as KEY=VALUE pairs (on the command line: --option)",
                                            flag=False)
    pretrained: bool = setting(False, "start from ImageNet/Kinetics weights (downloaded once, then cached)")
    weights: str | None = setting(None, "local backbone weights file, for machines without internet")
    frames: int | None = setting(None, "frames per clip (default: the cache's)", low=1)
    size: int | None = setting(None, "image size (default: the cache's); a cache of another size is refused", low=1)
    augment: bool = setting(True, "random crop, flip and colour jitter per training clip")
    epochs: int = setting(20, "training epochs", low=1)
    batch_size: int = setting(8, "clips per step", low=1)
    lr: float = setting(3e-4, "peak learning rate", above=0)
    optimizer: Literal["adamw", "sgd"] = setting("adamw", "optimiser")
    schedule: Literal["cosine", "step", "constant"] = setting("cosine", "learning-rate schedule after the warm-up")
    warmup_epochs: int = setting(1, "epochs of linear warm-up", low=0)
    weight_decay: float = setting(0.05, "weight decay", low=0)
    label_smoothing: float = setting(0.1, "label smoothing of the training loss", low=0)
    balance: Literal["none", "weights", "sampler"] = setting("weights", "class weighting or balanced sampling")
    grad_clip: float | None = setting(1.0, "gradient norm clipping (none: off)", above=0)
    early_stopping: int | None = setting(None, "patience in epochs on validation accuracy (none: off)", low=1,
                                         metavar="PATIENCE")
    train_subjects: tuple[str, ...] | None = setting(None, "training subjects, e.g. 1-20 (default: the dataset's "
                                                           "split, for RAVDESS the study's)", flag=False)
    val_subjects: tuple[str, ...] | None = setting(None, "validation subjects, e.g. 21,22", flag=False)
    test_subjects: tuple[str, ...] | None = setting(None, "test subjects, e.g. 23-24", flag=False)
    seed: int = setting(0, "random seed")
    accelerator: str = setting("auto", "auto, cpu, gpu")
    devices: str = setting("auto", "auto, N, or a list like 0,1")
    num_nodes: int = setting(1, "machines for DDP", low=1)
    strategy: str = setting("auto", "auto, ddp, ddp_spawn, fsdp, ...")
    precision: str | None = setting(None, "32-true, bf16-mixed, 16-mixed (default: mixed on GPU, 32-true on CPU, "
                                          "where bf16 speeds up 2-D models but makes 3-D ones like r3d18 train "
                                          "40x slower)")
    num_workers: int = setting(2, "data loader processes", low=0)
    runs_dir: str = setting("runs", "where run folders are made")
    name: str | None = setting(None, "run folder name (default: time, model, frames, augmentation, seed)")
    tta: Literal[1, 2] = setting(1, "2: average with the mirrored clip at evaluation")
    tensorboard: bool = setting(False, "TensorBoard logs in RUN/logs/tensorboard beside the CSV ones (needs pip "
                                       "install 'emovid[tensorboard]')")
    progress: bool = setting(True, "progress bars", flag=False)

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, coerce(f, hints[f.name], getattr(self, f.name)))
        parts = {"train": self.train_subjects, "val": self.val_subjects, "test": self.test_subjects}
        try:
            check_disjoint({name: subjects for name, subjects in parts.items() if subjects})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        _check_model(self.model, self.model_options)

    def split(self, default: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """Train, val and test subjects: this config's where it sets them, else ``default`` (the dataset's)."""
        return {name: chosen if chosen is not None else tuple(default.get(name, ()))
                for name, chosen in (("train", self.train_subjects), ("val", self.val_subjects),
                                     ("test", self.test_subjects))}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        # Configs written before datasets other than RAVDESS named subjects "actors".
        data = {_RENAMED.get(k, k): v for k, v in data.items()}
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown config keys: {', '.join(map(str, unknown))}{hint}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


_RENAMED = {f"{split}_actors": f"{split}_subjects" for split in ("train", "val", "test")}


def config_fields() -> list[tuple[dataclasses.Field, Any]]:
    """Every TrainConfig field with its type."""
    hints = get_type_hints(TrainConfig)
    return [(f, hints[f.name]) for f in dataclasses.fields(TrainConfig)]


def flag_fields() -> list[tuple[dataclasses.Field, Any]]:
    """The fields with a command-line flag, with their types."""
    return [(f, hint) for f, hint in config_fields() if f.metadata["flag"]]


def choices_of(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal`` type (possibly optional), else None."""
    literal = [a for a in _members(hint) if get_origin(a) is Literal]
    return get_args(literal[0]) if literal else None


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def coerce(f: dataclasses.Field, hint: Any, value: Any) -> Any:
    """``value`` (from YAML or a flag's text) as the field's type, within its limits; else a ConfigError."""
    members = _members(hint)
    optional = type(None) in members
    if optional and (value is None or isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    if value is None:
        raise ConfigError(f"{f.name}: a value is needed")
    kind = next(a for a in members if a is not type(None))
    try:
        result = _convert(kind, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{f.name}: {value!r} {exc}") from None
    limits = [(f.metadata.get("low"), ">=", lambda v, b: v >= b), (f.metadata.get("above"), ">", lambda v, b: v > b)]
    for bound, sign, ok in limits:
        if bound is not None and not ok(result, bound):
            raise ConfigError(f"{f.name}: {value!r} must be {sign} {bound:g}")
    return result


def _members(hint: Any) -> tuple[Any, ...]:
    return get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)


def _convert(kind: Any, value: Any) -> Any:
    """Raises TypeError or ValueError whose message completes "<value> ...", as in "must be an integer"."""
    if get_origin(kind) is Literal:
        allowed = get_args(kind)
        for choice in allowed:
            if value == choice or (isinstance(value, str) and value.strip() == str(choice)):
                return choice
        raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
    if kind is bool:
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("must be true or false (or yes/no, 1/0)")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        raise ValueError("must be an integer")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError("must be a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number, like 0.0003 or 3e-4") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if kind is str:
        if isinstance(value, (dict, list, tuple, bool)):
            raise TypeError("must be text")
        return str(value)
    if get_origin(kind) is tuple:
        return _subjects(value)
    if get_origin(kind) is dict:
        return _options(value)
    raise TypeError(f"has a type this config cannot read ({kind})")


def _subjects(value: Any) -> tuple[str, ...]:
    """Subjects from a list, one number or name, or text like ``1-20``, ``1-4,9`` or ``M003,W011``."""
    if isinstance(value, bool) or not isinstance(value, (int, str, list, tuple)):
        raise TypeError("must be subjects, like 1-20 or [21, 22]")
    if isinstance(value, str):
        try:
            return parse_subjects(value)
        except ValueError:
            raise ValueError("must be subjects, like 1-20, 21,22 or M003,W011") from None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, (int, str)) or not str(v).strip() for v in items):
        raise ValueError("must be subjects, like 1-20 or [21, 22]")
    return tuple(normalise_subject(v) for v in items)


def _options(value: Any) -> dict[str, Any]:
    """Model options from a mapping or from text like ``dropout=0.3,hidden_size=512`` (values read as YAML)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if not isinstance(value, str):
        raise TypeError("must be a mapping of model options, like {dropout: 0.3}")
    return dict(parse_option(pair) for pair in filter(None, (p.strip() for p in value.split(","))))


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as (key, value), the value read as YAML (``0.3`` a number, ``true`` a boolean)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError("must be KEY=VALUE pairs, like dropout=0.3,hidden_size=512")
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ValueError(f"has a value that is not valid YAML in {text!r}") from None


def _check_model(name: str, options: dict[str, Any]) -> None:
    from emovid.models import list_models, model_options

    known = list_models()
    if name not in known:
        raise ConfigError(f"model: {name!r} must be one of {', '.join(known)}")
    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:
        raise ConfigError(f"model_options: {name} has no option {', '.join(unknown)}; its options are "
                          f"{', '.join(model_options(name)) or 'none'}")


def read_yaml_mapping(path: str | Path, what: str = "config keys") -> dict[str, Any]:
    """A YAML file that must hold a mapping; one-line ConfigErrors for a missing file or bad YAML."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {' '.join(str(problem).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {what}, got a {type(data).__name__}")
    return data


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config (keys as in :class:`TrainConfig`)."""
    try:
        return TrainConfig.from_dict(read_yaml_mapping(path))
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(exc).startswith(f"{path}: ") else f"{path}: {exc}") from None


def save_config(config: TrainConfig, path: str | Path) -> None:
    from emovid.data.atomic import write_bytes_atomic

    write_bytes_atomic(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False).encode())


def resolve_config(path: str | Path | None, flags: dict[str, Any], options: list[str] | None = None,
                   subjects: dict[str, tuple[str, ...] | None] | None = None, kfold: int | None = None,
                   fold: int | None = None) -> TrainConfig:
    """A run's TrainConfig from its sources, later ones winning: defaults, the YAML file at ``path``, flag
    values (text, typed here), ``KEY=VALUE`` model options, and a subject split (custom subjects, or fold
    ``fold`` of ``kfold`` over the cache's subjects).

    Raises:
        ConfigError: a wrong value, in one line naming the field.
    """
    from emovid.datasets.splits import named_splits

    config = load_config(path) if path else TrainConfig()
    changes = dict(flags)
    if options:
        try:
            parsed = dict(parse_option(item) for item in options)
        except ValueError as exc:
            raise ConfigError(f"--option {exc}") from None
        changes["model_options"] = {**config.model_options, **parsed}
    if kfold or any((subjects or {}).values()):
        cache_subjects: list[str] = []
        if kfold:
            from emovid.data.cache import CacheError, ClipCache

            try:
                cache_subjects = [e["subject"] for e in ClipCache.open(changes.get("cache") or config.cache).entries]
            except CacheError as exc:
                raise ConfigError(f"--kfold folds the cache's subjects: {exc}") from None
        try:
            splits = named_splits(cache_subjects, {}, subjects, kfold, fold)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if len(splits) != 1:
            raise ConfigError("train runs one fold at a time: add --fold I (or use emovid experiment)")
        chosen = next(iter(splits.values()))
        changes.update({f"{k}_subjects": tuple(v) for k, v in chosen.items() if v})
    return config.replace(**changes)
