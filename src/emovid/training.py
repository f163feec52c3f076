"""Training with Lightning: the LightningModule, the data loaders, and :func:`train`, which makes a run folder.

A run folder holds ``config.yaml``, ``checkpoints/`` (best and last), ``logs/`` (CSV, and TensorBoard's
with ``tensorboard: true``), ``training_curves.png`` and, per evaluated split, ``<split>/metrics.json`` with
its confusion matrix.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as L
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler
from torchmetrics.classification import MulticlassAccuracy

from emovid.checkpoint import InferenceSpec
from emovid.config import ConfigError, TrainConfig, load_config, save_config
from emovid.data.cache import ClipCache
from emovid.data.dataset import ClipDataset
from emovid.datasets.splits import check_parts
from emovid.inference import clip_probabilities
from emovid.models import create_model, model_args, model_input_spec, model_options
from emovid.progress import is_terminal, write_line
from emovid.transforms import EvalClipTransform, TrainClipTransform, normalize

RUN_DIR_ENV = "EMOVID_RUN_DIR"


class EmotionClassifier(L.LightningModule):
    """A clip model with its loss, optimiser, schedule and metrics. Takes uint8 clips (B, T, C, H, W)."""

    def __init__(self, model: nn.Module, spec: InferenceSpec, config: TrainConfig,
                 class_weights: list[float] | None = None) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self.config = config
        self.save_hyperparameters({"config": config.to_dict(), "spec": spec.to_dict()})
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.class_weights: torch.Tensor | None
        self.register_buffer("class_weights", weights, persistent=False)
        num_classes = len(spec.class_names)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) for uint8 clips (B, T, C, H, W); normalisation happens here, on the device."""
        return self.model(normalize(clips, self.spec.mean, self.spec.std))

    def _log(self, split: str, loss: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
             accuracy: MulticlassAccuracy) -> None:
        accuracy(scores, labels)
        on_step = split == "train"
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=split != "train",
                 batch_size=len(labels))
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(labels))

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        clips, labels, _ = batch
        logits = self(clips)
        loss = F.cross_entropy(logits, labels, weight=self.class_weights, label_smoothing=self.config.label_smoothing)
        self._log("train", loss, logits, labels, self.train_acc)
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        # The same probabilities (and flip TTA) as evaluate and predict; the loss is their cross-entropy.
        clips, labels, _ = batch
        probs = clip_probabilities(self.model, clips, self.spec.mean, self.spec.std, self.config.tta)
        loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels, weight=self.class_weights)
        self._log("val", loss, probs, labels, self.val_acc)

    def configure_optimizers(self) -> Any:  # Lightning's optimizer-and-scheduler dict
        config = self.config
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer: torch.optim.Optimizer
        if config.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True,
                                        weight_decay=config.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(total // 2, config.warmup_epochs * math.ceil(total / config.epochs))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            if config.schedule == "cosine":
                return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
            if config.schedule == "step":
                return 0.1 ** int(progress * 3)
            return 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["emovid"] = self.spec.to_dict()


class EpochLines(L.Callback):
    """Lightning's progress as one line per epoch, for logs (a live bar only redraws well on a terminal)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation: the figures are the bar's at the end of the epoch.
        figures = ", ".join(f"{name.removesuffix('_epoch')} {float(value):.4g}"
                            for name, value in sorted(trainer.progress_bar_metrics.items())
                            if not name.endswith("_step"))
        write_line(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {figures} "
                   f"({time.monotonic() - self.start:.1f} s)")


def resolve_frames(config: TrainConfig, cache: ClipCache) -> int:
    """The model's frame count; refuses a cache that cannot provide it at the asked size."""
    frames = config.frames or cache.settings.frames
    cache.check_compatible(frames, config.size)
    return frames


def build_model(config: TrainConfig, frames: int, pretrained: bool, num_classes: int) -> nn.Module:
    options = dict(config.model_options)
    if "num_frames" in model_options(config.model):
        options.setdefault("num_frames", frames)
    return create_model(config.model, num_classes=num_classes, pretrained=pretrained or bool(config.weights),
                        weights_path=config.weights if pretrained or config.weights else None, **options)


def build_spec(model: nn.Module, cache: ClipCache, frames: int) -> InferenceSpec:
    settings = cache.settings
    durations = [e["duration"] for e in cache.entries if e.get("duration")]
    return InferenceSpec(
        model_args=model_args(model),
        class_names=cache.classes,
        frames=frames,
        resize={"mode": settings.resize.mode, "size": settings.resize.size, "short_side": settings.resize.short_side},
        crop=settings.crop,
        mean=tuple(model_input_spec(model).mean),
        std=tuple(model_input_spec(model).std),
        clip_seconds=round(sum(durations) / len(durations), 3) if durations else 3.0,
    )


def class_weights_for(labels: list[int], num_classes: int) -> list[float]:
    """Inverse-frequency weights, normalised so a balanced set gets 1.0 for every class."""
    counts = Counter(labels)
    present = [c for c in range(num_classes) if counts[c]]
    return [len(labels) / (len(present) * counts[c]) if counts[c] else 0.0 for c in range(num_classes)]


def make_loaders(config: TrainConfig, cache: ClipCache, frames: int) -> tuple[DataLoader, DataLoader | None]:
    size = cache.settings.resize.size
    split = config.split(cache.splits)
    train_set = ClipDataset(cache, split["train"], TrainClipTransform(frames, size, config.augment))
    if len(train_set) == 0:
        raise ValueError(f"{cache.root} has no clips of the training subjects {list(split['train'])}")
    val_set = ClipDataset(cache, split["val"], EvalClipTransform(frames))
    common: dict[str, Any] = {
        "batch_size": config.batch_size,
        "num_workers": config.num_workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": config.num_workers > 0,
    }
    sampler = None
    if config.balance == "sampler":
        weights = class_weights_for(train_set.labels, len(cache.classes))
        sampler = WeightedRandomSampler([weights[y] for y in train_set.labels], len(train_set),
                                        generator=torch.Generator().manual_seed(config.seed))
    train_loader = DataLoader(train_set, shuffle=sampler is None, sampler=sampler, drop_last=len(train_set) >
                              config.batch_size, **common)
    val_loader = DataLoader(val_set, shuffle=False, **common) if len(val_set) else None
    return train_loader, val_loader


def new_run_dir(config: TrainConfig, frames: int) -> Path:
    """A fresh folder under ``runs_dir``: runs never overwrite each other.

    Processes that Lightning's DDP launcher starts (LOCAL_RANK > 0) join the folder of the process that
    started them instead of making their own.
    """
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and int(os.environ.get("LOCAL_RANK", "0")) > 0:
        return Path(inherited)
    augment = "aug" if config.augment else "noaug"
    stem = config.name or f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model}-t{frames}-{augment}-s{config.seed}"
    root = Path(config.runs_dir)
    candidate, n = root / stem, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stem}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def default_precision(accelerator: str) -> str:
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def check_loggers(config: TrainConfig) -> None:
    """Raise a one-line ConfigError when the config asks for TensorBoard logs and TensorBoard is not installed."""
    if config.tensorboard and not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
        raise ConfigError("tensorboard: true needs TensorBoard, which is not installed: "
                          "pip install 'emovid[tensorboard]' (or set tensorboard: false)")


def make_loggers(config: TrainConfig, run_dir: Path) -> list[Logger]:
    """CSV logs always (the training curves are drawn from them); TensorBoard's beside them when asked for."""
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version=None)]
    if config.tensorboard:
        check_loggers(config)
        loggers.append(TensorBoardLogger(run_dir, name="logs/tensorboard"))
    return loggers


def train(config: TrainConfig, resume: str | Path | None = None) -> Path:
    """Train a model on a prepared cache, then evaluate it on the validation and test subjects.

    Args:
        config: the run's configuration.
        resume: a run folder or a checkpoint to continue from (its run folder is reused).

    Returns:
        The run folder.
    """
    from emovid.evaluate import evaluate_run, write_training_curves

    check_loggers(config)
    L.seed_everything(config.seed, workers=True, verbose=False)
    cache = ClipCache.open(config.cache)
    split = config.split(cache.splits)
    # An empty part is refused here, before a run folder exists: the run could not be validated or tested.
    try:
        check_parts(split, {e["subject"] for e in cache.entries})
    except ValueError as exc:
        raise ConfigError(f"{cache.root}: {exc}") from None
    config = config.replace(train_subjects=split["train"], val_subjects=split["val"], test_subjects=split["test"])
    frames = resolve_frames(config, cache)
    ckpt_path = _resume_checkpoint(resume)
    model = build_model(config, frames, pretrained=config.pretrained and ckpt_path is None,
                        num_classes=len(cache.classes))
    train_loader, val_loader = make_loaders(config, cache, frames)
    train_labels = [e["label"] for e in ClipDataset(cache, split["train"]).entries]
    weights = class_weights_for(train_labels, len(cache.classes)) if config.balance == "weights" else None
    module = EmotionClassifier(model, build_spec(model, cache, frames), config, weights)
    # Only now, with everything built that a wrong setting could break, is the run folder made.
    run_dir = ckpt_path.parent.parent if ckpt_path else new_run_dir(config, frames)
    if not ckpt_path and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        save_config(config, run_dir / "config.yaml")

    checkpoint_dir = run_dir / "checkpoints"
    # Two callbacks: Lightning writes "last" only alongside a top-k save, and we want it after every epoch.
    best = ModelCheckpoint(dirpath=checkpoint_dir, filename="best", save_top_k=1, enable_version_counter=False,
                           monitor="val/acc", mode="max")
    last = ModelCheckpoint(dirpath=checkpoint_dir, filename="last", save_top_k=1, monitor=None,
                           enable_version_counter=False)
    callbacks: list[L.Callback] = [best, last]
    if config.early_stopping:
        callbacks.append(EarlyStopping(patience=config.early_stopping, monitor="val/acc", mode="max"))
    bar = config.progress and is_terminal()
    if config.progress and not bar:
        callbacks.append(EpochLines())
    trainer = L.Trainer(
        default_root_dir=run_dir,
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=_devices(config.devices),
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision or default_precision(config.accelerator),  # type: ignore[arg-type]
        gradient_clip_val=config.grad_clip,
        deterministic=not torch.cuda.is_available(),
        callbacks=callbacks,
        logger=make_loggers(config, run_dir),
        enable_progress_bar=bar,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, len(train_loader) // 2)),
        num_sanity_val_steps=0,
    )
    os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by DDP worker processes
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=ckpt_path)
    except SIGTERMException:
        pass  # Lightning's exit with status 0; reported below, as is a SIGTERM that arrives as fit returns
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
    if trainer.received_sigterm:
        # Fail with a message, so that a grid stops here instead of counting the run as done.
        raise SystemExit(f"{run_dir}: stopped by SIGTERM; continue with: emovid train --resume {run_dir}")
    if trainer.is_global_zero:
        write_training_curves(run_dir)
        for name in ("val", "test"):
            evaluate_run(run_dir, name, num_workers=config.num_workers)
    return run_dir


def _devices(text: str) -> int | str | list[int]:
    if text.isdigit():
        return int(text)
    if "," in text:
        return [int(d) for d in text.split(",") if d]
    return text


def resume_config(resume: str | Path) -> TrainConfig:
    """The config of the run that ``resume`` (a run folder or one of its checkpoints) continues.

    Raises:
        ConfigError: the run folder has no readable ``config.yaml``.
    """
    path = Path(resume)
    run_dir = path if path.is_dir() else path.parent.parent
    return load_config(run_dir / "config.yaml")


def _resume_checkpoint(resume: str | Path | None) -> Path | None:
    if resume is None:
        return None
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    return path
