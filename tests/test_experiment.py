import csv

import yaml

from emovid.cli import main
from emovid.experiment import Experiment, run_experiment


def write_grid(path, data, out):
    path.write_text(yaml.safe_dump({
        "data": str(data), "out": str(out), "size": 32, "workers": 1,
        "base": {"epochs": 1, "batch_size": 16, "num_workers": 0, "progress": False},
        "grid": {"model": ["early-fusion-cnn", "no-such-model"], "frames": [2], "augment": [False]},
    }))
    return path


def test_grid_runs_records_failures_skips_finished_and_writes_the_table(tiny_data, tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", tiny_data, tmp_path / "exp")
    logs: list[str] = []
    rows = run_experiment(Experiment.from_yaml(grid), progress=False, log=logs.append)
    assert [(r["model"], r["status"]) for r in rows] == [("early-fusion-cnn", "done"), ("no-such-model", "failed")]
    assert any("failed: ValueError" in line for line in logs)
    table = (tmp_path / "exp" / "results.md").read_text()
    assert "| early-fusion-cnn | [" in table and "](runs/early-fusion-cnn-t2-noaug-intelligent-study-s0)" in table
    assert "| no-such-model | failed |" in table
    with open(tmp_path / "exp" / "results.csv") as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["done", "failed"]

    logs.clear()
    run_experiment(Experiment.from_yaml(grid), progress=False, log=logs.append)
    assert "finished earlier, skipped" in logs[0]
    assert main(["experiment", str(grid)]) == 1  # exit code says a run failed


def test_study_grids_parse():
    study = Experiment.from_yaml("configs/study.yaml", data="d", out="o")
    runs = list(study.runs())
    assert len(runs) == 5 * 3 * 2 and {r.split for r in runs} == {"study"}
    kfold = Experiment.from_yaml("configs/study-kfold.yaml", data="d", out="o")
    assert len(list(kfold.runs())) == 5 * 3 * 2 * 6
