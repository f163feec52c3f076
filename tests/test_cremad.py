"""CREMA-D: names, counts per split and class, rejects, detection; and prepare, train, evaluate, experiment and
cross-dataset scoring end to end on tiny synthetic CREMA-D."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from emovid.cli import main
from emovid.data.cache import ClipCache
from emovid.datasets import cremad, index_dataset
from emovid.datasets.common import DatasetNameError
from emovid.datasets.cremad import CremadName
from emovid.datasets.splits import count_table, split_by_subjects
from emovid.experiment import Experiment, run_experiment
from emovid.synthetic import SynthConfig, generate_dataset

# 6 actors (1001-1006), the 6 CREMA-D emotions once each: train 1001-1004, val 1005, test 1006.
TINY = SynthConfig(actors=tuple(range(1, 7)), width=48, height=48, seconds=0.5, repetitions=(1,), statements=(1,),
                   intensities=(1,), naming="cremad")


def test_parse_names():
    name = CremadName.parse("VideoFlash/1091_TIE_NEU_LO.flv")
    assert (name.actor, name.sentence, name.emotion, name.level, name.emotion_name) == (1091, "TIE", "NEU", "LO",
                                                                                      "neutral")
    assert name.filename() == "1091_TIE_NEU_LO.flv"
    assert CremadName.find("copy_of_1001_DFA_ANG_XX.mp4").emotion_name == "angry"


@pytest.mark.parametrize("name,reason", [
    ("1001_DFA_XYZ_XX.flv", "unknown CREMA-D emotion code XYZ"),
    ("0999_DFA_ANG_XX.flv", "unknown CREMA-D actor 999"),
    ("1001_ABC_ANG_XX.flv", "unknown CREMA-D sentence ABC"),
    ("1001_DFA_ANG_ZZ.flv", "unknown CREMA-D level ZZ"),
    ("1001_DFA_ANG.flv", "not a CREMA-D name"),
    ("1001_DFA_ANG_XX_copy.flv", "not a CREMA-D name"),
])
def test_malformed_names_are_not_guessed(name, reason):
    with pytest.raises(DatasetNameError, match=reason):
        CremadName.parse(name)
    assert cremad.label_of(name) is None or name.endswith("_copy.flv")  # a longer name holding one still labels


def test_counts_per_split_and_class_and_rejects(tmp_path):
    for name in cremad.corpus_names():  # the index reads names only: empty files do
        (tmp_path / name).touch()
    for bad in ("1001_DFA_XYZ_XX.flv", "notes.mp4", "1092_DFA_ANG_XX.flv"):
        (tmp_path / bad).touch()
    index = index_dataset(tmp_path)
    assert index.dataset == "cremad" and index.detected.startswith("cremad (")
    assert index.splits == {"train": tuple(str(a) for a in range(1001, 1074)),
                            "val": tuple(str(a) for a in range(1074, 1083)),
                            "test": tuple(str(a) for a in range(1083, 1092))}
    table = count_table(split_by_subjects(index.entries, index.splits), index.classes)
    per_actor = {"neutral": 12, **{c: 14 for c in ("happy", "sad", "angry", "fearful", "disgust")}}
    assert table["test"] == {**{c: 9 * n for c, n in per_actor.items()}, "total": 9 * 82}
    assert sum(t["total"] for t in table.values()) == 91 * 82 == len(index.entries)
    reasons = {Path(r.file).name: r.reason for r in index.rejects}
    assert reasons == {"1001_DFA_XYZ_XX.flv": "unknown CREMA-D emotion code XYZ",
                       "notes.mp4": "not a CREMA-D name (expected ActorID_Sentence_Emotion_Level, got 'notes')",
                       "1092_DFA_ANG_XX.flv": "unknown CREMA-D actor 1092"}
    high = index_dataset(tmp_path, "cremad", levels=["HI"])
    assert len(high.entries) == 91 * 5 and high.filters == {"levels": ["HI"]}
    with pytest.raises(ValueError, match="--views do not apply to cremad"):
        index_dataset(tmp_path, "cremad", views=["front"])


def test_index_cli_prints_counts_and_rejects(tmp_path, capsys):
    for name in ("1001_DFA_ANG_XX.flv", "1002_DFA_SAD_XX.flv", "1003_DFA_HAP_XX.flv", "1001_DFA_XYZ_XX.flv"):
        (tmp_path / name).touch()
    assert main(["index", str(tmp_path), "--dataset", "cremad", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["study"]["test"]["happy"] == 1 and report["splits"]["study"]["train"]["angry"] == 1
    assert report["rejects"] == [{"file": str(tmp_path / "1001_DFA_XYZ_XX.flv"),
                                  "reason": "unknown CREMA-D emotion code XYZ"}]
    assert main(["index", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "3 cremad videos" in out and "format detected: cremad" in out and "1001_DFA_XYZ_XX.flv" in err


def test_kfold_over_actors():
    folds = cremad.kfold(7)
    assert len(folds) == 7 and all(len(f["test"]) == 13 for f in folds)
    assert sorted(a for f in folds for a in f["test"]) == sorted(str(a) for a in cremad.ACTORS)


@pytest.fixture(scope="module")
def tiny_cremad(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cremad")
    generate_dataset(out, TINY, workers=2, progress=False)
    return out


def test_synthetic_cremad_is_flv_named_the_cremad_way(tiny_cremad):
    files = sorted(p.name for p in tiny_cremad.glob("*.flv"))
    assert len(files) == 36 and files[0] == "1001_IEO_ANG_XX.flv"
    meta = [json.loads(line) for line in (tiny_cremad / "synth_meta.jsonl").read_text().splitlines()]
    assert {m["label"] for m in meta} == set(cremad.EMOTIONS)


def test_prepare_train_evaluate_experiment_and_cross_dataset(tiny_cremad, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["prepare", str(tiny_cremad), "--out", str(cache), "--frames", "4", "--size", "32", "--workers",
                 "2"]) == 0
    opened = ClipCache.open(cache)
    assert (opened.dataset, opened.classes, len(opened.entries)) == ("cremad", cremad.EMOTIONS, 36)
    assert opened.splits["test"] == ("1006",) and opened.entries[0]["level"] == "XX"

    runs = tmp_path / "runs"
    assert main(["train", "--cache", str(cache), "--model", "early-fusion-cnn", "--epochs", "1", "--batch-size", "8",
                 "--num-workers", "0", "--runs-dir", str(runs), "--name", "cremad"]) == 0
    metrics = json.loads((runs / "cremad" / "test" / "metrics.json").read_text())
    assert metrics["num_samples"] == 6 and metrics["subjects"] == ["1006"]
    assert main(["evaluate", str(runs / "cremad"), "--split", "val", "--num-workers", "0"]) == 0

    # The CREMA-D model on synthetic MEAD: contempt and surprised are not its classes.
    mead = tmp_path / "mead"
    generate_dataset(mead, SynthConfig(actors=(1, 2, 3), width=48, height=48, seconds=0.5, repetitions=(1,),
                                       statements=(1,), intensities=(1,), naming="mead"), workers=2, progress=False)
    capsys.readouterr()
    code = main(["evaluate", str(runs / "cremad"), "--data", str(mead), "--dataset", "mead"])
    out = capsys.readouterr().out
    assert code == 0 and "on 18 labelled clips" in out
    assert "left out: 6 clips labelled contempt, surprised, which this model cannot output" in out
    scored = json.loads((runs / "cremad" / "on-mead" / "metrics.json").read_text())
    assert scored["classes"]["data_only"] == ["surprised", "contempt"] and scored["classes"]["model_only"] == []
    assert len(scored["unscorable"]) == 6 and set(scored["accuracy_by_subject"]) == {"M001", "W002", "M003"}

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "data": str(tiny_cremad), "dataset": "cremad", "out": str(tmp_path / "exp"), "size": 32, "workers": 1,
        "base": {"epochs": 1, "batch_size": 8, "num_workers": 0, "progress": False},
        "grid": {"model": ["early-fusion-cnn"], "frames": [2], "augment": [False]},
    }))
    rows = run_experiment(Experiment.from_yaml(grid), progress=False, log=lambda line: None)
    assert [r["status"] for r in rows] == ["done"]


def test_transfer_config_is_valid():
    from emovid.config import load_config

    config = load_config(Path(__file__).parent.parent / "configs" / "cremad-fer-transfer.yaml")
    assert config.model == "late-fusion-fer" and config.cache == "caches/cremad-face64" and config.pretrained
