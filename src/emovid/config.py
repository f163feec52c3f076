"""The typed training configuration: a YAML file sets values, command-line flags override them.

The resolved configuration is saved in every run folder as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from emovid.data.ravdess import STUDY_SPLIT


class ConfigError(ValueError):
    """A configuration value that is missing, unknown or out of range."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on."""

    cache: str = ""
    model: str = "late-fusion-resnet18"
    model_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    weights: str | None = None
    frames: int | None = None  # default: all the cache's frames
    size: int | None = None  # default: the cache's; a cache of another size is refused
    augment: bool = True
    epochs: int = 20
    batch_size: int = 8
    lr: float = 3e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup_epochs: int = 1
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    balance: str = "weights"
    grad_clip: float | None = 1.0
    early_stopping: int | None = None  # patience in epochs on validation accuracy
    train_actors: tuple[int, ...] = STUDY_SPLIT["train"]
    val_actors: tuple[int, ...] = STUDY_SPLIT["val"]
    test_actors: tuple[int, ...] = STUDY_SPLIT["test"]
    seed: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None  # default: bf16/16 mixed on GPU, 32 on CPU
    num_workers: int = 2
    runs_dir: str = "runs"
    name: str | None = None
    tta: int = 1  # test-time views averaged at evaluation: 1 (none) or 2 (with horizontal flip)
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {
            "optimizer": ("adamw", "sgd"),
            "schedule": ("cosine", "step", "constant"),
            "balance": ("none", "weights", "sampler"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        positive = ("epochs", "batch_size", "num_nodes")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.tta not in (1, 2):
            raise ConfigError(f"tta must be 1 or 2, got {self.tta}")
        if set(self.train_actors) & (set(self.val_actors) | set(self.test_actors)):
            raise ConfigError("training actors overlap validation or test actors")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        hints = get_type_hints(cls)
        values = {}
        for key, value in data.items():
            if value is not None and "tuple" in str(hints[key]):
                value = tuple(value)
            values[key] = value
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config (keys as in :class:`TrainConfig`)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return TrainConfig.from_dict(data)


def save_config(config: TrainConfig, path: str | Path) -> None:
    from emovid.data.atomic import write_bytes_atomic

    write_bytes_atomic(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False).encode())
