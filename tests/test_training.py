import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from conftest import TINY_SPLIT
from emovid.checkpoint import load_checkpoint
from emovid.cli import main
from emovid.config import ConfigError, TrainConfig, load_config, save_config
from emovid.data.cache import CacheError
from emovid.training import train

FAST = dict(model="early-fusion-cnn", epochs=3, batch_size=16, lr=3e-3, warmup_epochs=0, num_workers=0,
            progress=False, **TINY_SPLIT)


def tiny_config(cache, tmp_path, **changes):
    return TrainConfig(cache=str(cache), runs_dir=str(tmp_path / "runs"), **{**FAST, **changes})


def read_losses(run_dir):
    import csv

    rows = list(csv.DictReader(open(next((run_dir / "logs").glob("version_*/metrics.csv")))))
    return [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]


@pytest.fixture(scope="module")
def trained_run(easy_cache, tmp_path_factory):
    return train(tiny_config(easy_cache, tmp_path_factory.mktemp("trained"), epochs=6, augment=False))


def test_tiny_run_learns_and_writes_everything(trained_run):
    losses = read_losses(trained_run)
    assert len(losses) == 6 and losses[-1] < losses[0]
    metrics = json.loads((trained_run / "test" / "metrics.json").read_text())
    assert metrics["num_samples"] == 15 and metrics["subjects"] == ["23"]
    assert metrics["accuracy"] >= 0.5  # chance is 12.5%; actor 23 was never seen in training
    assert set(metrics["per_class"]) == {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                         "surprised"}
    assert list(metrics["per_subject_accuracy"]) == ["23"]
    for picture in ("test/confusion_matrix.png", "val/confusion_matrix.png", "training_curves.png"):
        assert (trained_run / picture).read_bytes()[:4] == b"\x89PNG"
    assert (trained_run / "test" / "predictions.csv").read_text().count("\n") == 16
    assert load_config(trained_run / "config.yaml").epochs == 6
    assert [p.name for p in (trained_run / "logs").iterdir()] == ["version_0"]  # CSV only: TensorBoard is opt-in


def test_checkpoint_is_self_contained(trained_run):
    model, spec = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    assert spec.model_args["name"] == "early-fusion-cnn" and spec.frames == 4
    assert spec.resize == {"mode": "intelligent", "size": 32, "short_side": 36}
    assert len(spec.class_names) == 8 and len(spec.mean) == 3 and spec.clip_seconds == pytest.approx(1.0, abs=0.05)
    assert model(torch.zeros(1, 4, 3, 32, 32)).shape == (1, 8)


def test_evaluate_cli_with_tta(trained_run, capsys):
    assert main(["evaluate", str(trained_run), "--split", "val", "--tta", "2", "--num-workers", "0"]) == 0
    assert "val: accuracy" in capsys.readouterr().out
    assert json.loads((trained_run / "val" / "metrics.json").read_text())["tta"] == 2


def test_same_seed_same_metrics(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, tmp_path, epochs=1, num_workers=2)
    a, b = train(config), train(config)
    assert a != b  # runs never overwrite each other
    ma, mb = (json.loads((r / "test" / "metrics.json").read_text()) for r in (a, b))
    assert ma["confusion_matrix"] == mb["confusion_matrix"] and read_losses(a) == read_losses(b)


def test_sigkill_then_resume_ends_with_the_same_steps(tiny_cache, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "emovid.cli", "train", "--cache", str(tiny_cache), "--model", "early-fusion-cnn",
           "--epochs", "6", "--batch-size", "8", "--num-workers", "0", "--runs-dir", str(runs), "--name", "killed",
           "--train-actors", "1-6", "--val-actors", "21", "--test-actors", "23"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = runs / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not last.exists():
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    steps_at_kill = torch.load(last, weights_only=True)["global_step"]
    assert not (runs / "killed" / "test" / "metrics.json").exists()
    assert main(["train", "--resume", str(runs / "killed")]) == 0
    final = torch.load(last, weights_only=True)
    steps_per_epoch = 180 // 8  # 180 training clips, batches of 8, the last partial batch dropped
    assert steps_at_kill < 6 * steps_per_epoch
    assert final["global_step"] == 6 * steps_per_epoch and final["epoch"] == 5
    assert (runs / "killed" / "test" / "metrics.json").exists()


def test_sigterm_stops_with_a_message_and_an_error_status(tiny_cache, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "emovid.cli", "train", "--cache", str(tiny_cache), "--model", "early-fusion-cnn",
           "--epochs", "100", "--batch-size", "8", "--num-workers", "0", "--runs-dir", str(runs), "--name", "term",
           "--train-actors", "1-6", "--val-actors", "21", "--test-actors", "23"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (runs / "term" / "checkpoints" / "last.ckpt").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1  # Lightning alone would exit 0, and a grid would count the run as done
    assert f"{runs / 'term'}: stopped by SIGTERM; continue with: emovid train --resume" in stderr
    assert not (runs / "term" / "test" / "metrics.json").exists()


def test_ddp_two_cpu_processes(tiny_cache, tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "emovid.cli", "train", "--cache", str(tiny_cache), "--model", "early-fusion-cnn",
           "--epochs", "2", "--batch-size", "8", "--num-workers", "0", "--runs-dir", str(runs), "--name", "ddp",
           "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--train-actors", "1-6",
           "--val-actors", "21", "--test-actors", "23", "--no-augment"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in runs.iterdir()) == ["ddp"]  # one run folder, not one per process
    metrics = json.loads((runs / "ddp" / "test" / "metrics.json").read_text())
    assert metrics["num_samples"] == 30
    model, _ = load_checkpoint(runs / "ddp" / "checkpoints" / "last.ckpt")
    steps = torch.load(runs / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert steps == 2 * (90 // 8)  # each process sees half of the 180 clips per epoch


def test_cache_of_another_shape_is_refused(tiny_cache, tmp_path):
    with pytest.raises(CacheError, match="4 frames at 32x32, but 8 frames"):
        train(tiny_config(tiny_cache, tmp_path, frames=8))
    with pytest.raises(CacheError, match="but 4 frames at 64x64"):
        train(tiny_config(tiny_cache, tmp_path, size=64))
    assert main(["train", "--cache", str(tiny_cache), "--frames", "8", "--runs-dir", str(tmp_path)]) == 2


@pytest.mark.parametrize("split,message", [
    ({"train_subjects": ("7", "8")}, "the train split is empty: subjects 7-8 have no videos"),
    ({"val_subjects": ("22",)}, "the val split is empty: subjects 22 .* set it with --val-subjects"),
])
def test_a_run_that_cannot_start_leaves_no_folder(tiny_cache, tmp_path, split, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(tiny_cache, tmp_path, **split))
    assert not (tmp_path / "runs").exists()


def test_tensorboard_without_tensorboard_is_one_line_before_any_folder(tiny_cache, tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("tensorboard") else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"^tensorboard: true needs TensorBoard.*pip install 'emovid\[tensorboard\]'"):
        train(tiny_config(tiny_cache, tmp_path, tensorboard=True))
    assert main(["train", "--cache", str(tiny_cache), "--tensorboard", "--runs-dir", str(tmp_path / "runs")]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "pip install 'emovid[tensorboard]'" in message
    assert not (tmp_path / "runs").exists()


def test_config_round_trips_through_yaml(tmp_path):
    config = TrainConfig(cache="c", model="cnn-lstm", model_options={"hidden_size": 64},
                         train_subjects=("1", "2"), val_subjects=("3",), test_subjects=("4",), precision="bf16-mixed",
                         early_stopping=3)
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"epochs": 2, "learning_rate": 0.1}))
    with pytest.raises(ConfigError, match="unknown config keys: learning_rate"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="subject 2 is in both the train and the test subjects"):
        TrainConfig(train_subjects=(1, 2), test_subjects=("2",))
    with pytest.raises(ConfigError, match="--val-subjects, --test-subjects"):
        TrainConfig(val_subjects=("21",), test_subjects=("21", "22"))


def test_cli_flags_override_yaml(tmp_path, tiny_cache):
    from emovid.cli import build_parser, train_config_from_args

    save_config(TrainConfig(cache=str(tiny_cache), epochs=5, lr=0.1), tmp_path / "c.yaml")
    args = build_parser().parse_args(["train", "--config", str(tmp_path / "c.yaml"), "--epochs", "7",
                                      "--model", "cnn-lstm", "--option", "hidden_size=32", "--no-augment",
                                      "--kfold", "3", "--fold", "0"])
    config = train_config_from_args(args)
    assert (config.epochs, config.lr, config.augment, config.model_options) == (7, 0.1, False, {"hidden_size": 32})
    # folds over the cache's subjects 1-6, 21, 23
    assert config.test_subjects == ("1", "2", "3") and config.val_subjects == ("4", "5")
    assert config.train_subjects == ("6", "21", "23")


def test_the_small_path_with_two_actors_is_one_line_and_no_run_folder(tmp_path, capsys):
    # synth --actors 2, prepare, train: the study split's val (21-22) and test (23-24) subjects are not there.
    assert main(["synth", str(tmp_path / "syn"), "--actors", "2", "--limit", "2", "--size", "48x48", "--seconds",
                 "0.3", "--modalities", "2", "--workers", "1"]) == 0
    assert main(["prepare", str(tmp_path / "syn"), "--out", str(tmp_path / "cache"), "--frames", "4", "--size", "32",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--cache", str(tmp_path / "cache"), "--epochs", "1", "--runs-dir",
                 str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emovid train: error: ")
    assert "the val split is empty: subjects 21-22 have no videos (the data has subjects 1-2" in err
    assert not (tmp_path / "runs").exists()


def test_progress_in_a_log_is_one_line_per_epoch(easy_cache, tmp_path, capsys):
    run = train(tiny_config(easy_cache, tmp_path, epochs=2, progress=True))
    err = capsys.readouterr().err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert "\r" not in err and len(err.splitlines()) < 20, err
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    for name in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert f"{name} " in epochs[-1]
    assert (run / "checkpoints" / "best.ckpt").exists()
