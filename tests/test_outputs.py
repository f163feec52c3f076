"""Output paths: no option writes over an input or a video, or under the wrong suffix; refused before any reading."""

from __future__ import annotations

import os

import pytest

from emovid.cli import main
from emovid.outputs import Output, OutputError, check_outputs, prefix_files


@pytest.fixture
def clips(tmp_path):
    """Two "videos": the check never reads them, so any bytes do, and they must come back unchanged."""
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(os.urandom(4096))
    b.write_bytes(os.urandom(2048))
    return a, b


def refused(argv, capsys, *option_and_files):
    """Run the CLI; assert exit 2 with one line naming the option and the file."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"emovid {argv[0]}: error: ")
    for text in option_and_files:
        assert str(text) in err, err
    return err


@pytest.mark.parametrize("option", ["--json", "--csv", "--annotate", "--timeline-out"])
def test_predict_option_before_the_videos_leaves_them_intact(clips, tmp_path, capsys, option):
    a, b = clips
    before = {p: p.read_bytes() for p in clips}
    refused(["predict", option, a, b], capsys, option, a)
    assert {p: p.read_bytes() for p in clips} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]  # nothing written


@pytest.mark.parametrize("option,name,reason", [
    ("--json", "out.csv", "must end in .json"),
    ("--csv", "out.json", "must end in .csv"),
    ("--annotate", "out.avi", "must end in .mp4 or .mkv"),
    ("--annotate", "old.mkv", "an existing video"),
    ("--timeline-out", "tl.mp4", "a video name"),
])
def test_predict_outputs_need_their_suffix_and_spare_videos(clips, tmp_path, capsys, option, name, reason):
    (tmp_path / "old.mkv").write_bytes(b"video")
    err = refused(["predict", clips[1], option, tmp_path / name], capsys, option, name)
    assert reason in err
    assert (tmp_path / "old.mkv").read_bytes() == b"video"


def test_predict_json_over_the_checkpoint_or_over_a_glob_match_is_refused(clips, tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text("{}")
    refused(["predict", clips[1], "--checkpoint", model, "--json", model], capsys, "--json", "input")
    table = tmp_path / "t.csv"
    table.write_text("file,label\n")
    refused(["predict", tmp_path / "*.csv", "--csv", table], capsys, "--csv", "input")
    assert model.read_text() == "{}" and table.read_text() == "file,label\n"


def test_score_out_over_a_video(clips, capsys):
    a, b = clips
    before = a.read_bytes()
    refused(["score", "--out", a, b], capsys, "--out", a, "an existing file")
    assert a.read_bytes() == before


def test_export_onnx_over_a_video_or_the_checkpoint(clips, tmp_path, capsys):
    a, _ = clips
    before = a.read_bytes()
    refused(["export", tmp_path / "best.ckpt", "--onnx", a], capsys, "--onnx", "must end in .onnx")
    assert a.read_bytes() == before
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    refused(["export", model], capsys, "--onnx", "would write over the input")
    assert model.read_bytes() == b"onnx"


@pytest.mark.parametrize("argv", [
    ["prepare", "{b}", "--out", "{a}"],
    ["synth", "{a}"],
    ["demo", "--out", "{a}"],
    ["experiment", "grid.yaml", "--out", "{a}"],
    ["train", "--cache", "{b}", "--runs-dir", "{a}"],
])
def test_folder_outputs_are_not_files(clips, capsys, argv):
    a, b = clips
    before = a.read_bytes()
    refused([arg.format(a=a, b=b) for arg in argv], capsys, a, "an existing file")
    assert a.read_bytes() == before


def test_a_folder_output_is_not_the_input_folder(clips, tmp_path, capsys):
    refused(["prepare", tmp_path, "--out", tmp_path], capsys, "--out", "is the input")
    refused(["score", tmp_path, "--out", tmp_path], capsys, "--out", "is the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_rules(tmp_path):
    check_outputs([Output("--json", "-", "json"), Output("--csv", None, "csv"), Output("--out", tmp_path, "folder"),
                   Output("--timeline-out", tmp_path / "tl", "prefix")], [tmp_path / "a.mp4"])
    with pytest.raises(OutputError, match="would both write"):
        check_outputs([Output("--json", tmp_path / "tl.json", "json"), Output("--timeline-out", tmp_path / "tl",
                                                                              "prefix")])
    (tmp_path / "d.json").mkdir()
    with pytest.raises(OutputError, match="a folder"):
        check_outputs([Output("--json", tmp_path / "d.json", "json")])
    source = tmp_path / "clip.csv"
    source.write_text("x")
    (tmp_path / "link.csv").symlink_to(source)
    with pytest.raises(OutputError, match="over the input"):
        check_outputs([Output("--csv", tmp_path / "link.csv", "csv")], [source])
    assert [p.name for p in prefix_files(tmp_path / "x")] == ["x.csv", "x.json", "x.png"]



def test_an_empty_temporary_file_may_be_written_but_nothing_else_without_the_suffix(tmp_path):
    """A script's ``--json "$(mktemp)"``: an empty file named by no format loses nothing when written."""
    blank = tmp_path / "tmp.x3Fq9A"
    blank.touch()
    check_outputs([Output("--json", blank, "json")], [tmp_path / "a.mp4"])
    blank.write_text("someone's notes")
    with pytest.raises(OutputError, match="must end in .json"):
        check_outputs([Output("--json", blank, "json")])
    for name in ("empty.mp4", "empty.csv", "new.x3Fq9A"):  # an empty video or CSV, or a file not there yet
        if name.startswith("empty"):
            (tmp_path / name).touch()
        with pytest.raises(OutputError, match="must end in .json"):
            check_outputs([Output("--json", tmp_path / name, "json")])
