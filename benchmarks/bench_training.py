"""Training throughput: ``emovid train``'s Lightning loop against a bare PyTorch loop, and the loader alone.

Same model, data, batch size and augmentation in both loops; the first steps (warm-up) are not timed.

    python benchmarks/bench_training.py [--steps 12] [--models early-fusion-cnn,late-fusion-resnet18]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pytorch_lightning as L
import torch
import torch.nn.functional as F

from emovid.config import TrainConfig
from emovid.data.cache import ClipCache, PrepareSettings, prepare
from emovid.data.video import Resize
from emovid.datasets.ravdess import scan
from emovid.demo import STUDY_MODELS
from emovid.synthetic import SynthConfig, generate_dataset
from emovid.training import EmotionClassifier, build_model, build_spec, make_loaders

WARMUP = 2


class StepTimer(L.Callback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def __init__(self) -> None:
        self.start = 0.0
        self.timed_steps = 0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, *args: object) -> None:
        self.timed_steps = trainer.global_step - WARMUP
        self.seconds = time.perf_counter() - self.start


def lightning_rate(config: TrainConfig, cache: ClipCache, steps: int) -> float:
    model = build_model(config, config.frames, pretrained=False)
    module = EmotionClassifier(model, build_spec(model, cache, config.frames), config)
    train_loader, _ = make_loaders(config, cache, config.frames)
    timer = StepTimer()
    trainer = L.Trainer(max_steps=steps + WARMUP, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        gradient_clip_val=config.grad_clip, limit_val_batches=0)
    trainer.fit(module, train_loader)
    return timer.timed_steps * config.batch_size / timer.seconds


def bare_rate(config: TrainConfig, cache: ClipCache, steps: int) -> float:
    model = build_model(config, config.frames, pretrained=False)
    module = EmotionClassifier(model, build_spec(model, cache, config.frames), config)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    train_loader, _ = make_loaders(config, cache, config.frames)
    module.train()
    done, start = 0, 0.0
    while done < steps + WARMUP:
        for clips, labels, _ in train_loader:
            if done == WARMUP:
                start = time.perf_counter()
            loss = F.cross_entropy(module(clips), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            optimizer.step()
            done += 1
            if done == steps + WARMUP:
                break
    return steps * config.batch_size / (time.perf_counter() - start)


def loader_rate(config: TrainConfig, cache: ClipCache, batches: int = 30) -> float:
    train_loader, _ = make_loaders(config, cache, config.frames)
    count, start = 0, time.perf_counter()
    while count < batches:
        for _batch in train_loader:
            count += 1
            if count == batches:
                break
    return batches * config.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--models", default=",".join(STUDY_MODELS))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "emovid_bench_training")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data, cache_dir = args.work / "data", args.work / "cache-t10-112"
    generate_dataset(data, SynthConfig(actors=(1, 2, 3, 4), width=160, height=120, seconds=2.0, modalities=(2,)),
                     progress=False)
    if not (cache_dir / "manifest.jsonl").exists():
        prepare(scan(data), cache_dir, PrepareSettings(10, Resize("intelligent", 112, 128)), progress=False)
    cache = ClipCache.open(cache_dir)
    base = TrainConfig(cache=str(cache_dir), frames=10, batch_size=8, num_workers=2, train_actors=(1, 2, 3, 4),
                       val_actors=(), test_actors=(), augment=True, progress=False)
    print(f"T=10, 112x112, batch 8, augmentation on, 2 loader workers, {args.steps} timed steps, CPU")
    print(f"\ndata loader alone: {loader_rate(base, cache):.0f} clips/s\n")
    print("| model | bare PyTorch loop (clips/s) | emovid train / Lightning (clips/s) | overhead |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        config = base.replace(model=name)
        bare = bare_rate(config, cache, args.steps)
        ours = lightning_rate(config, cache, args.steps)
        print(f"| {name} | {bare:.1f} | {ours:.1f} | {100 * (bare / ours - 1):+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
