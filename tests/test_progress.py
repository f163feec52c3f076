"""Progress without a terminal: one line per stage with the bar's figures, no carriage returns."""

from __future__ import annotations

import emovid.progress
from emovid.progress import LineProgress, progress


def test_a_stage_is_one_line_when_standard_error_is_not_a_terminal(capsys):
    bar = progress(total=3, desc="prepare", unit="video")  # pytest's captured stderr is no terminal
    assert isinstance(bar, LineProgress)
    with bar:
        bar.update()
        bar.write("skipped x.mp4: not a video")
        bar.update(2)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 2 and lines[0] == "skipped x.mp4: not a video"
    assert lines[1].startswith("prepare: 3/3 videos in ") and lines[1].endswith(" videos/s")


def test_iterating_counts_and_closes_once(capsys):
    assert list(progress(range(4), desc="evaluate", unit="batch")) == [0, 1, 2, 3]
    assert capsys.readouterr().err.startswith("evaluate: 4/4 batches in ")


def test_a_long_stage_writes_a_line_a_minute(capsys, monkeypatch):
    monkeypatch.setattr(emovid.progress, "LOG_INTERVAL", 0.0)
    with progress(total=2, desc="synth", unit="file") as bar:
        bar.update()
        bar.update()
    lines = capsys.readouterr().err.splitlines()
    starts = ["synth: 1/2 files so far, ", "synth: 2/2 files so far, ", "synth: 2/2 files in "]
    assert len(lines) == 3 and all(line.startswith(start) for line, start in zip(lines, starts, strict=True))


def test_disabled_is_silent(capsys):
    with progress(total=2, desc="synth", unit="file", enabled=False) as bar:
        bar.update(2)
        bar.write("not shown")
    assert capsys.readouterr().err == ""
