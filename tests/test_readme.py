"""The README stays true: every `emovid` line of its quick start, and its Python example, run as written.

They run in a folder holding the README's `clip.mp4` and `videos/` (a tiny video made here), with the tester's
weights folder (the quick start's models need pretrained files); without those files, the test skips and says so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import USER_WEIGHTS_DIR
from emovid.weights import CATALOGUE, WEIGHTS_DIR_ENV, is_intact
from videos import make_video

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> list[list[str]]:
    """The `emovid ...` commands between the quick-start markers, comments dropped."""
    text = README.read_text()
    block = text[text.index("<!-- quick-start") : text.index("<!-- /quick-start -->")]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("emovid ")]


def python_example() -> str:
    text = README.read_text()
    start = text.index("From Python:")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A folder with the README's files, and the tester's weights (or a skip saying they are missing)."""
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(USER_WEIGHTS_DIR))
    missing = [w.name for w in CATALOGUE if not is_intact(w)]
    if missing:
        pytest.skip(f"the quick start's models need {', '.join(missing)} in {USER_WEIGHTS_DIR} "
                    f"(`emovid weights download`)")
    make_video(tmp_path / "clip.mp4", num_frames=45, width=160, height=96)
    (tmp_path / "videos").mkdir()
    make_video(tmp_path / "videos" / "a.mp4", num_frames=30, width=160, height=96)
    return tmp_path


def test_the_quick_start_has_what_a_newcomer_needs():
    commands = [" ".join(c) for c in quick_start()]
    assert commands[0] == "emovid weights download" and "emovid predict clip.mp4" in commands
    assert any("--timeline" in c for c in commands) and any("--annotate" in c for c in commands)
    assert len(README.read_text().splitlines()) <= 170  # a first screen, not a manual: details live in docs/


def test_every_quick_start_line_runs(workdir):
    for command in quick_start():
        done = subprocess.run([sys.executable, "-m", "emovid.cli", *command[1:]], cwd=workdir, capture_output=True,
                              text=True, timeout=600, env=os.environ.copy())
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert {"clip.timeline.csv", "clip.timeline.json", "clip.timeline.png", "out.mp4", "preds.csv"} <= {
        p.name for p in workdir.iterdir()}


def test_the_python_example_runs(workdir):
    done = subprocess.run([sys.executable, "-c", python_example()], cwd=workdir, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("clip.mp4 ") or "clip.mp4" in done.stdout.split()[0]
