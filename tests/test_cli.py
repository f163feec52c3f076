"""The command line itself: help for every argument, the version, start-up imports, logs without a terminal, splits."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emovid import __version__
from emovid.cli import POOLINGS, PRECISIONS, build_parser, main

HEAVY = ("torch", "torchvision", "matplotlib", "pytorch_lightning")
# Tiny synthetic RAVDESS: actors 1, 21 and 23, so that the study's train, val and test splits each have one.
SYNTH = ["--actors", "1,21,23", "--limit", "2", "--size", "48x48", "--seconds", "0.3", "--modalities", "2",
         "--workers", "1"]


def subparsers(parser: argparse.ArgumentParser, path: str = "emovid"):
    """(path, parser) for the parser and every sub-command's, recursively."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subparsers(child, f"{path} {name}")


def test_every_argument_and_command_has_help():
    missing = []
    for path, parser in subparsers(build_parser()):
        for action in parser._actions:
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
    assert not missing


def test_top_level_help_says_predict_needs_no_training_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "`emovid predict VIDEO` needs no training: a zero-shot" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"emovid {__version__}\n"


def test_help_texts_match_the_code():
    from emovid.demo import DEMO_EPOCHS
    from emovid.inference import PRECISIONS as INFERENCE_PRECISIONS
    from emovid.zero_shot import DEFAULT_POOLING, ZERO_SHOT_MODELS
    from emovid.zero_shot import POOLINGS as ZERO_SHOT_POOLINGS

    helps = {(path, option): action.help for path, parser in subparsers(build_parser())
             for action in parser._actions for option in action.option_strings}
    assert f"default: {max(DEMO_EPOCHS.values())} to {min(DEMO_EPOCHS.values())}," in helps["emovid demo", "--epochs"]
    for command in ("emovid predict", "emovid score", "emovid serve"):
        assert all(name in helps[command, "--model"] for name in ZERO_SHOT_MODELS), command
    assert PRECISIONS == INFERENCE_PRECISIONS
    assert set(POOLINGS) == set(ZERO_SHOT_POOLINGS) and POOLINGS[0] == DEFAULT_POOLING


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m emovid.cli ARGS`` with standard error piped (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "emovid.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_building_the_parser_imports_no_heavy_library():
    # A fresh interpreter: the test session's own imports would hide the parser's.
    code = ("import sys, emovid.cli as cli; cli.build_parser(); "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == []


def imported(stderr: str) -> set[str]:
    """Top-level packages in ``-X importtime`` lines (of the process and of the workers it started)."""
    return {line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_light_commands_and_their_workers_import_no_torch(tmp_path):
    # PYTHONPROFILEIMPORTTIME is inherited by worker processes, so their imports are listed too.
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    commands = [
        ["synth", str(tmp_path / "data"), *SYNTH[:-1], "2"],
        ["index", str(tmp_path / "data")],
        *(["prepare", str(tmp_path / "data"), "--out", str(tmp_path / "cache"), "--frames", "4", "--size", "32",
           "--workers", "2", "--shard", shard] for shard in ("1/2", "2/2")),
        ["merge", str(tmp_path / "cache")],
        ["predict", "--help"],
    ]
    for command in commands:
        result = run_cli(*command, env=profile)
        assert result.returncode == 0, result.stderr[-2000:]
        modules = imported(result.stderr)
        assert "emovid" in modules and not modules & set(HEAVY), (command, modules & set(HEAVY))
    listed = run_cli("weights", "list", env=profile)  # exit 1: the test's weights folder is empty
    assert listed.returncode == 1 and "incomplete" in listed.stdout
    assert not imported(listed.stderr) & set(HEAVY)


def test_progress_in_a_log_is_one_line_per_stage(tmp_path):
    synth = run_cli("synth", str(tmp_path / "data"), *SYNTH)
    prepare = run_cli("prepare", str(tmp_path / "data"), "--out", str(tmp_path / "cache"), "--frames", "4", "--size",
                      "32", "--workers", "1")
    for result, stage in ((synth, "synth: 6/6 files in "), (prepare, "prepare: 6/6 videos in ")):
        assert result.returncode == 0, result.stderr
        assert "\r" not in result.stderr and len(result.stderr.splitlines()) <= 2, result.stderr
        assert stage in result.stderr


@pytest.fixture(scope="module")
def three_actors(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("three_actors")
    assert main(["synth", str(out), *SYNTH]) == 0
    return out


def test_index_warns_of_an_empty_split(three_actors, capsys):
    assert main(["index", str(three_actors)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["index", str(three_actors), "--train-subjects", "1", "--val-subjects", "22", "--test-subjects",
                 "23"]) == 0
    err = capsys.readouterr().err
    assert err == ("warning: custom: the val split is empty: subjects 22 have no videos (the data has subjects "
                   "1,21,23); set it with --val-subjects (or use --kfold K)\n")


@pytest.mark.parametrize("flags,message", [
    (["--val-subjects", "21", "--test-subjects", "21,23"], "subject 21 is in both the val and the test subjects"),
    (["--train-subjects", "1,23", "--test-subjects", "23"], "subject 23 is in both the train and the test subjects"),
    (["--kfold", "5"], "--kfold 5: this data has 3 subjects; pass --kfold K with 3 <= K <= 3"),
])
def test_index_split_mistakes_are_one_line(three_actors, capsys, flags, message):
    assert main(["index", str(three_actors), *flags, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err


def test_index_takes_unset_parts_from_the_dataset_and_warns_beside_json(three_actors, capsys):
    assert main(["index", str(three_actors), "--val-subjects", "22", "--json"]) == 0
    captured = capsys.readouterr()
    split = json.loads(captured.out)["splits"]["custom"]
    assert (split["train"]["total"], split["val"]["total"], split["test"]["total"]) == (2, 0, 2)
    assert captured.err.startswith("warning: custom: the val split is empty") and captured.err.count("\n") == 1


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a parser and of its sub-commands' parsers."""
    return {o for _, p in subparsers(parser) for action in p._actions for o in action.option_strings}


def test_the_command_reference_covers_every_command_with_real_options():
    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    sections = dict(re.findall(r"^### emovid (\S+)\n(.*?)(?=^##|\Z)", text, flags=re.M | re.S))
    commands = {path.split()[1]: parser for path, parser in subparsers(build_parser()) if path.count(" ") == 1}
    assert set(sections) == set(commands)
    for name, body in sections.items():
        spans = [span for span in re.findall(r"`([^`]+)`", body) if not span.startswith(("emovid", "predict",
                                                                                         "prepare"))]
        named = {option for span in spans for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", span)}
        assert named <= options_of(commands[name]), (name, named - options_of(commands[name]))
