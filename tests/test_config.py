"""TrainConfig as the one schema: typed values from YAML, flags and grid files, one-line errors, exit code 2."""

from __future__ import annotations

import pytest
import yaml

from emovid.cli import build_parser, main, train_config_from_args
from emovid.config import ConfigError, TrainConfig, load_config
from emovid.experiment import Experiment


def test_yaml_values_are_typed(tmp_path):
    text = "lr: 3e-4\naugment: \"no\"\ntrain_actors: 1-20\nval_actors: 21,22\ntest_actors: [23, 24]\n" \
           "model: cnn-lstm\nmodel_options: hidden_size=64,bidirectional=true\ntta: '2'\nepochs: '5'\n" \
           "early_stopping: none\n"
    (tmp_path / "c.yaml").write_text(text)
    config = load_config(tmp_path / "c.yaml")
    assert config.lr == 3e-4 and isinstance(config.lr, float)
    assert config.augment is False and config.tta == 2 and config.epochs == 5 and config.early_stopping is None
    # train_actors is the old name of train_subjects, still read
    assert config.train_subjects == tuple(str(a) for a in range(1, 21)) and config.val_subjects == ("21", "22")
    assert config.test_subjects == ("23", "24") and config.model_options == {"hidden_size": 64, "bidirectional": True}


@pytest.mark.parametrize(
    "field,value,allowed",
    [
        ("augment", "maybe", "must be true or false"),
        ("augment", 2, "must be true or false"),
        ("epochs", "ten", "must be an integer"),
        ("epochs", 2.5, "must be an integer"),
        ("epochs", 0, "must be >= 1"),
        ("lr", "-1", "must be > 0"),
        ("lr", "fast", "must be a number"),
        ("optimizer", "adam", "must be one of adamw, sgd"),
        ("tta", 3, "must be one of 1, 2"),
        ("train_subjects", "1-x", "must be subjects"),
        ("model", "nope", "must be one of"),
        ("model_options", "dropout", "must be KEY=VALUE pairs"),
        ("cache", ["a"], "must be text"),
    ],
)
def test_a_wrong_value_names_the_field_the_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({field: value})
    assert str(info.value).startswith(f"{field}: {value!r} ") and allowed in str(info.value)


BAD_FILES = {
    "unknown key": ("epochs: 2\nlearning_rate: 0.1\n", "unknown config keys: learning_rate"),
    "wrong type": ("epochs: [1, 2]\n", "epochs: [1, 2] must be an integer"),
    "negative lr": ("lr: -1\n", "lr: -1 must be > 0"),
    "tabs": ("epochs: 2\n\tlr: 0.1\n", "not valid YAML at line 2"),
    "syntax": ("epochs: [2\n", "not valid YAML"),
    "top-level list": ("- epochs: 2\n", "expected a mapping of config keys, got a list"),
    "unknown option": ("model: cnn-lstm\nmodel_options: {depth: 3}\n", "cnn-lstm has no option depth"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_malformed_config_file_is_one_line_and_exit_code_2(kind, tmp_path, capsys):
    text, message = BAD_FILES[kind]
    (tmp_path / "c.yaml").write_text(text)
    runs = tmp_path / "runs"
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--cache", "c", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emovid train: error: config: {tmp_path / 'c.yaml'}: ") and err.count("\n") == 1, err
    assert message in err and not runs.exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--lr", "-1"], "config: lr: '-1' must be > 0"),
        (["--model", "nope"], "config: model: 'nope' must be one of"),
        (["--epochs", "3.5"], "config: epochs: '3.5' must be an integer"),
        (["--option", "dropout"], "config: --option must be KEY=VALUE"),
        (["--config", "missing.yaml"], "config: missing.yaml: No such file or directory"),
        ([], "--cache is required"),
    ],
)
def test_a_wrong_flag_is_one_line_and_exit_code_2(flags, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    cache = [] if not flags else ["--cache", "c"]
    assert main(["train", *cache, "--runs-dir", str(runs), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"emovid train: error: {message}") and err.count("\n") == 1, err
    assert not runs.exists()


def test_flags_come_from_the_fields_with_their_help():
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--lr", "--batch-size", "--optimizer {adamw,sgd}", "--early-stopping PATIENCE", "--no-augment",
                 "--tta {1,2}", "--grad-clip", "--precision"):
        assert flag in help_text
    assert "peak learning rate (default 0.0003)" in " ".join(help_text.split())
    args = build_parser().parse_args(["train", "--lr", "3e-4", "--augment", "--grad-clip", "none", "--tta", "2"])
    config = train_config_from_args(args)
    assert (config.lr, config.augment, config.grad_clip, config.tta) == (3e-4, True, None, 2)


def test_grid_files_go_through_the_same_checks(tmp_path):
    grid = {"data": "d", "out": "o", "base": {"lr": "3e-4", "augment": "no", "epochs": 2},
            "per_model": {"r3d18": {"lr": "1e-4"}},
            "grid": {"model": ["early-fusion-cnn", "r3d18"], "frames": ["6"], "augment": ["no", "yes"]}}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(grid))
    experiment = Experiment.from_yaml(tmp_path / "g.yaml")
    assert [r.augment for r in experiment.runs()][:2] == [False, True]
    assert {r.frames for r in experiment.runs()} == {6}
    assert experiment.settings_for("r3d18").lr == 1e-4 and experiment.settings_for(None).augment is False
    for change, message in [
        ({"base": {"lr": "fast"}}, "base: lr: 'fast' must be a number"),
        ({"per_model": {"r3d18": {"epochs": 0}}}, "per_model.r3d18: epochs: 0 must be >= 1"),
        ({"grid": {"model": ["nope"]}, "per_model": {}}, "grid.model: model: 'nope' must be one of"),
        ({"grid": {"model": ["r3d18"], "augment": ["sometimes"]}}, "grid.augment: 'sometimes' must be true"),
        ({"per_model": ["r3d18"]}, "g.yaml: per_model must be a mapping, got a list"),
    ]:
        (tmp_path / "g.yaml").write_text(yaml.safe_dump({**grid, **change}))
        with pytest.raises(ConfigError, match=message):
            Experiment.from_yaml(tmp_path / "g.yaml")
    (tmp_path / "g.yaml").write_text("data: d\n\tout: o\n")
    assert main(["experiment", str(tmp_path / "g.yaml")]) == 2
