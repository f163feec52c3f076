"""``emovid demo``: the whole study in miniature on built-in synthetic data, in a few minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

from emovid.data.synthetic import SynthConfig, generate_dataset
from emovid.experiment import Experiment, run_experiment

STUDY_MODELS = ("early-fusion-cnn", "early-fusion-resnet18", "late-fusion-resnet18", "r3d18", "cnn-lstm")

# Small enough for a laptop CPU: 24 actors x 30 performances, 6 frames of 64x64, a few epochs from scratch.
DEMO_SYNTH = SynthConfig(width=160, height=90, seconds=2.0, modalities=(2,), repetitions=(1,))
DEMO_TRAINING = {"epochs": 6, "batch_size": 16, "lr": 1e-3, "warmup_epochs": 1, "weight_decay": 0.01,
                 "pretrained": False, "num_workers": 2}


def run_demo(out: Path, models: tuple[str, ...] = STUDY_MODELS, epochs: int | None = None, crop: str = "face",
             workers: int = 2, progress: bool = True, log=print) -> str:
    """Generate synthetic data, prepare it, train and test the study's models; returns the results table."""
    log(f"1/3 synthetic RAVDESS-format videos -> {out / 'data'}")
    generate_dataset(out / "data", DEMO_SYNTH, workers=workers, progress=progress)
    base = {**DEMO_TRAINING, **({"epochs": epochs} if epochs else {})}
    experiment = Experiment(data=out / "data", out=out, size=64, workers=workers, crop=crop, base=base,
                            grid={"model": list(models), "frames": [6], "augment": [True],
                                  "resize": ["intelligent"], "seed": [0]})
    log("2/3 prepare clips, 3/3 train and test each model (actors 1-20 train, 21-22 val, 23-24 test)")
    run_experiment(experiment, progress=progress, log=log)
    return (out / "results.md").read_text()
