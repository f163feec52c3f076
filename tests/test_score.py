"""emovid score: a tiny labelled set, a label the model cannot output, labels from names and from a table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch import nn

from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.datasets.ravdess import VideoSource
from emovid.predict import Predictor
from emovid.score import ScoreError, score_videos, write_score_outputs
from test_predict import checkpoint  # noqa: F401  (a module-scoped fixture: a tiny trained checkpoint)
from videos import make_video

CLASSES = ("angry", "happy", "sad")
GREYS = {"angry": 40, "happy": 130, "sad": 220}  # each test video is one grey level; the model reads it


class GreyReader(nn.Module):
    """Says the class whose grey level is nearest the clip's mean brightness: a model whose answers we know."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        level = clips.mean(dim=(1, 2, 3, 4)) * 255  # (B,)
        targets = torch.tensor([float(GREYS[c]) for c in CLASSES])
        return -((level[:, None] - targets[None]) ** 2) / 100


def grey_video(path, grey: int):
    return VideoSource(make_video(path, num_frames=6, width=48, height=32, bframes=False,
                                  frame_fn=lambda i, w, h: np.full((h, w, 3), grey, np.uint8)))


@pytest.fixture
def grey_predictor() -> Predictor:
    spec = InferenceSpec(model_args={"name": "grey-reader"}, class_names=CLASSES, frames=3,
                         resize={"mode": "naive", "size": 16, "short_side": 16}, crop="center",
                         mean=(0, 0, 0), std=(1, 1, 1), clip_seconds=1.0)
    return Predictor(GreyReader(), spec)


def test_scores_against_a_table_and_leaves_out_what_the_model_cannot_say(tmp_path, grey_predictor):
    shown = {"a.mp4": "angry", "b.mp4": "happy", "c.mp4": "sad", "d.mp4": "sad", "e.mp4": "happy"}
    labelled = {"a.mp4": "angry", "b.mp4": "happy", "c.mp4": "sad", "d.mp4": "happy", "e.mp4": "happy",
                "f.mp4": "contempt"}  # d is wrong on purpose; f's label is not among the model's classes
    videos = [grey_video(tmp_path / name, GREYS[shown.get(name, "sad")]) for name in labelled]
    videos.append(grey_video(tmp_path / "unlabelled.mp4", 40))
    table = {name: {"label": label, "dataset": "X" if name < "c" else "Y"} for name, label in labelled.items()}
    report = score_videos(videos, grey_predictor, table, group_column="dataset")
    m = report.metrics
    assert m["num_samples"] == 5 and m["accuracy"] == pytest.approx(4 / 5)
    assert m["per_class_recall"] == pytest.approx({"angry": 1.0, "happy": 2 / 3, "sad": 1.0})
    assert m["balanced_accuracy"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert m["confusion_matrix"][1] == [0, 2, 1]  # happy: 2 right, 1 said sad
    assert m["unscorable"] == [{"file": str(tmp_path / "f.mp4"), "label": "contempt"}]
    assert m["unlabelled"] == 1 and m["accuracy_by_dataset"] == pytest.approx({"X": 1.0, "Y": 2 / 3})
    written = write_score_outputs(report, CLASSES, tmp_path / "out")
    assert [p.name for p in written] == ["metrics.json", "predictions.csv", "confusion_matrix.png"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert [(r["label"], r["prediction"], r["correct"]) for r in rows if r["file"].endswith("d.mp4")] == [
        ("happy", "sad", "False")]
    assert float(rows[0]["angry"]) + float(rows[0]["happy"]) + float(rows[0]["sad"]) == pytest.approx(1, abs=1e-5)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["accuracy"] == pytest.approx(0.8)


def test_labels_from_dataset_names(tmp_path, grey_predictor):
    videos = [grey_video(tmp_path / "1001_DFA_ANG_XX.flv", GREYS["angry"]),
              grey_video(tmp_path / "01-01-02-01-01-01-01.mp4", GREYS["happy"]),  # RAVDESS calm: not scorable
              grey_video(tmp_path / "M003_front_sad_level3_001.mp4", GREYS["happy"])]
    report = score_videos(videos, grey_predictor)
    assert report.metrics["num_samples"] == 2 and report.metrics["accuracy"] == 0.5
    assert [u["label"] for u in report.unscorable] == ["calm"]


def test_cli_score_with_a_checkpoint(tmp_path, checkpoint, capsys):  # noqa: F811
    videos = [grey_video(tmp_path / name, 128) for name in
              ("01-01-03-01-01-01-23.mp4", "01-01-05-01-01-01-23.mp4", "not-a-dataset-name.mp4")]
    (tmp_path / "01-01-04-01-01-01-24.mp4").write_bytes(b"not a video")  # labelled sad, but broken
    code = main(["score", str(tmp_path), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "score")])
    out, err = capsys.readouterr()
    assert code == 1 and "01-01-04-01-01-01-24.mp4" in err  # the broken file fails alone; the rest are scored
    assert "on 2 labelled clips" in out and "1 videos without a label" in out
    metrics = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert metrics["num_samples"] == 2 and (tmp_path / "score" / "confusion_matrix.png").stat().st_size > 0
    assert len(videos) == 3


def test_cli_score_bad_table_is_one_line(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("name,emotion\n")
    assert main(["score", str(tmp_path), "--labels", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs a header with a 'label' column" in err


@pytest.mark.parametrize("names,message", [
    ([], "nothing to score: no videos ({data}: no videos (.mp4, "),
    (["holiday.mp4", "talk.mkv"], "nothing to score: none of the 2 videos has a label"),
])
def test_cli_nothing_to_score_is_one_line_and_no_files(tmp_path, capsys, names, message):
    data = tmp_path / "clips"
    data.mkdir()
    for name in names:
        grey_video(data / name, 128)
    # Said before a model loads: no weights are needed to hear it.
    assert main(["score", str(data), "--out", str(tmp_path / "score")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"emovid score: error: {message.format(data=data)}" in err
    assert not (tmp_path / "score").exists()


def test_nothing_the_model_can_output_or_nothing_readable_writes_nothing(tmp_path, grey_predictor):
    calm = [grey_video(tmp_path / "01-01-02-01-01-01-01.mp4", 40)]  # RAVDESS calm: not among the model's classes
    with pytest.raises(ScoreError, match="the 1 labelled videos are labelled calm, which this model cannot output"):
        score_videos(calm, grey_predictor)
    broken = tmp_path / "1001_DFA_ANG_XX.flv"
    broken.write_bytes(b"not a video")
    report = score_videos([VideoSource(broken)], grey_predictor)
    assert len(report.failures) == 1
    with pytest.raises(ScoreError, match="none of the 1 labelled videos could be read"):
        write_score_outputs(report, CLASSES, tmp_path / "out")
    assert not (tmp_path / "out").exists()
