import csv

import pytest
import yaml

from emovid.cli import main
from emovid.config import ConfigError, load_config
from emovid.experiment import Experiment, results_table, run_experiment


def write_grid(path, data, out):
    path.write_text(yaml.safe_dump({
        "data": str(data), "out": str(out), "size": 32, "workers": 1,
        "base": {"epochs": 1, "batch_size": 16, "num_workers": 0, "progress": False},
        "grid": {"model": ["early-fusion-cnn", "cnn-lstm"], "frames": [2], "augment": [False]},
        "per_model": {"cnn-lstm": {"size": 64}},  # valid, but not for a cache of 32x32 clips: that run fails
    }))
    return path


def test_grid_runs_records_failures_skips_finished_and_writes_the_table(tiny_data, tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", tiny_data, tmp_path / "exp")
    logs: list[str] = []
    rows = run_experiment(Experiment.from_yaml(grid), progress=False, log=logs.append)
    assert [(r["model"], r["status"]) for r in rows] == [("early-fusion-cnn", "done"), ("cnn-lstm", "failed")]
    assert any("failed: CacheError" in line for line in logs)
    table = (tmp_path / "exp" / "results.md").read_text()
    assert "| early-fusion-cnn | [" in table and "](runs/early-fusion-cnn-t2-noaug-intelligent-study-s0)" in table
    assert "| cnn-lstm | failed |" in table
    with open(tmp_path / "exp" / "results.csv") as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["done", "failed"]

    logs.clear()
    run_experiment(Experiment.from_yaml(grid), progress=False, log=logs.append)
    assert "finished earlier, skipped" in logs[0]
    assert main(["experiment", str(grid)]) == 1  # exit code says a run failed


def test_a_finished_run_with_other_settings_is_kept_aside_and_trained_again(tiny_data, tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", tiny_data, tmp_path / "exp")
    experiment = Experiment.from_yaml(grid)
    experiment.grid["model"] = ["early-fusion-cnn"]
    run_experiment(experiment, progress=False, log=lambda _: None)
    experiment.base["epochs"] = 2
    logs: list[str] = []
    rows = run_experiment(experiment, progress=False, log=logs.append)
    assert "finished earlier with other settings (epochs 1 -> 2); kept as" in logs[0]
    run = tmp_path / "exp" / "runs" / "early-fusion-cnn-t2-noaug-intelligent-study-s0"
    assert run.with_name(run.name + ".stale-1").is_dir() and rows[0]["status"] == "done"
    assert load_config(run / "config.yaml").epochs == 2
    experiment.crop = "face"
    logs.clear()
    run_experiment(experiment, progress=False, log=logs.append)
    assert "(cache intelligent-center-t2-32 -> intelligent-face-t2-32)" in logs[0]


def test_study_grids_parse():
    study = Experiment.from_yaml("configs/study.yaml", data="d", out="o")
    runs = list(study.runs())
    assert len(runs) == 5 * 3 * 2 and {r.split for r in runs} == {"study"}
    kfold = Experiment.from_yaml("configs/study-kfold.yaml", data="d", out="o")
    assert len(list(kfold.runs())) == 5 * 3 * 2 * 6


def test_per_model_values_override_base_and_are_checked_before_any_run(tmp_path):
    grid = {"model": ["early-fusion-cnn", "r3d18"], "frames": [6]}
    experiment = Experiment(tmp_path, tmp_path, base={"epochs": 20, "lr": 0.003}, grid=grid,
                            per_model={"r3d18": {"epochs": 2}})
    configs = {run.model: experiment.config_for(run, tmp_path / "cache") for run in experiment.runs()}
    assert (configs["early-fusion-cnn"].epochs, configs["r3d18"].epochs) == (20, 2)
    assert configs["r3d18"].lr == 0.003
    with pytest.raises(ConfigError, match="not in the grid: cnn-lstm"):
        Experiment(tmp_path, tmp_path, grid=grid, per_model={"cnn-lstm": {"epochs": 1}})
    with pytest.raises(ConfigError, match="per_model.r3d18: unknown config keys: epoch"):
        Experiment(tmp_path, tmp_path, grid=grid, per_model={"r3d18": {"epoch": 1}})


def test_table_names_epochs_only_when_models_differ():
    row = {"frames": 6, "augment": True, "resize": "intelligent", "status": "done", "accuracy": 0.5, "run": "r"}
    same = results_table([{**row, "model": "a", "epochs": 3}, {**row, "model": "b", "epochs": 3}])
    assert "| a | [50.0](r) |" in same and "epochs" not in same
    differ = results_table([{**row, "model": "a", "epochs": 3}, {**row, "model": "b", "epochs": 1}])
    assert "| a (3 epochs) | [50.0](r) |" in differ and "| b (1 epoch) |" in differ
