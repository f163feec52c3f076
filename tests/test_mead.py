"""MEAD: the release tree and flat names, views, both sexes in every split, rejects, and scoring a model whose
classes MEAD's contempt does not meet."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from emovid.datasets import index_dataset, mead
from emovid.datasets.common import DatasetNameError
from emovid.datasets.mead import MeadName
from emovid.datasets.splits import count_table, split_by_subjects
from emovid.score import score_dataset
from emovid.synthetic import SynthConfig, generate_dataset
from test_score import GREYS, grey_predictor, grey_video  # noqa: F401  (a fixture: a model that reads grey levels)

ACTORS = [f"M{n:03d}" for n in range(1, 11)] + [f"W{n:03d}" for n in range(11, 21)]


def test_tree_and_flat_names():
    tree = MeadName.parse("/data/MEAD/M003/video/left_30/contempt/level_2/017.mp4")
    flat = MeadName.parse("W011_left_30_contempt_level_1_023.mp4")
    assert (tree.actor, tree.view, tree.emotion_name, tree.level, tree.clip) == ("M003", "left_30", "contempt", 2, 17)
    assert tree.stem == "M003_left_30_contempt_level2_017" and MeadName.parse(tree.stem + ".mp4") == tree
    assert (flat.actor, flat.level, flat.clip) == ("W011", 1, 23)
    assert MeadName.parse("M003_front_fear_level3_001.mp4").emotion_name == "fearful"


@pytest.mark.parametrize("name,reason", [
    ("M003/video/front/bored/level_1/001.mp4", "unknown MEAD emotion 'bored'"),
    ("M003/video/front/angry/level_4/001.mp4", "unknown MEAD level 4"),
    ("M003/video/sideways/angry/level_1/001.mp4", "not a MEAD name"),
    ("X003_front_angry_level3_001.mp4", "not a MEAD name"),
])
def test_malformed_names_are_not_guessed(name, reason):
    with pytest.raises(DatasetNameError, match=reason):
        MeadName.parse(name)


def make_tree(root: Path, views=("front", "left_30")) -> None:
    for actor in ACTORS:
        for view in views:
            for emotion in mead.EMOTION_NAMES:
                for level in (1,) if emotion == "neutral" else (1, 2, 3):
                    folder = root / actor / "video" / view / emotion / f"level_{level}"
                    folder.mkdir(parents=True, exist_ok=True)
                    for clip in (1, 2):
                        (folder / f"{clip:03d}.mp4").touch()


def test_counts_views_splits_and_rejects(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "M001" / "video" / "front" / "bored" / "level_1").mkdir(parents=True)
    (tmp_path / "M001" / "video" / "front" / "bored" / "level_1" / "001.mp4").touch()
    (tmp_path / "M001" / "readme.mp4").touch()
    index = index_dataset(tmp_path)
    assert index.dataset == "mead" and index.filters == {"views": ["front"]}
    assert index.splits["test"] == ("M010", "W020") and index.splits["val"] == ("M009", "W019")
    table = count_table(split_by_subjects(index.entries, index.splits), index.classes)
    assert table["train"] == {"neutral": 32, **{c: 96 for c in mead.EMOTIONS[1:]}, "total": 32 + 7 * 96}
    assert table["test"]["contempt"] == 12 and index.classes[-1] == "contempt"
    assert sorted(r.reason for r in index.rejects) == ["not a MEAD name (expected ACTOR/video/VIEW/EMOTION/level_N/"
                                                       "NNN.mp4 or ACTOR_VIEW_EMOTION_levelN_NNN, got "
                                                       f"'{tmp_path.name}/M001/readme.mp4')",
                                                       "unknown MEAD emotion 'bored'"]
    assert index.entries[0].meta == {"view": "front", "level": 1, "clip": 1}
    both = index_dataset(tmp_path, "mead", views=["all"])
    assert len(both.entries) == 2 * len(index.entries)
    with pytest.raises(ValueError, match="unknown MEAD views"):
        index_dataset(tmp_path, "mead", views=["back"])


def test_flat_names_and_a_zip_of_the_tree(tmp_path):
    (tmp_path / "flat").mkdir()
    names = ("M003_front_angry_level3_001.mp4", "W011_front_contempt_level_1_023.mp4", "M003_down_sad_level1_001.mp4")
    for name in names:
        (tmp_path / "flat" / name).touch()
    flat = index_dataset(tmp_path / "flat")
    assert [(e.subject, e.label) for e in flat.entries] == [("M003", "angry"), ("W011", "contempt")]
    with zipfile.ZipFile(tmp_path / "M005.zip", "w") as archive:  # an actor's archive holds video/...
        archive.writestr("video/front/happy/level_2/003.mp4", b"")
    zipped = index_dataset(tmp_path / "M005.zip", "mead")
    assert [(e.key, e.subject) for e in zipped.entries] == [("M005_front_happy_level2_003", "M005")]


def test_synthetic_mead_tree(tmp_path):
    config = SynthConfig(actors=(1, 2), width=48, height=48, seconds=0.3, emotions=(1, 2, 8), repetitions=(1,),
                         statements=(1,), intensities=(2,), naming="mead")
    generate_dataset(tmp_path, config, workers=1, progress=False)
    index = index_dataset(tmp_path)
    assert sorted((e.subject, e.label) for e in index.entries) == [("M001", "contempt"), ("M001", "surprised"),
                                                                    ("W002", "contempt"), ("W002", "surprised")]
    assert (tmp_path / "M001" / "video" / "front" / "contempt" / "level_3" / "001.mp4").is_file()


def test_score_a_model_on_mead_reports_the_class_that_does_not_meet(tmp_path, grey_predictor):  # noqa: F811
    # The model knows angry, happy and sad; MEAD's contempt and its neutral do not meet it.
    for actor, emotion, grey in (("M003", "angry", "angry"), ("M003", "happy", "sad"), ("W009", "sad", "sad"),
                                 ("W009", "contempt", "sad"), ("M003", "neutral", "happy")):
        folder = tmp_path / actor / "video" / "front" / emotion / "level_1"
        folder.mkdir(parents=True, exist_ok=True)
        grey_video(folder / "001.mp4", GREYS[grey])
    report, index = score_dataset(tmp_path, grey_predictor)
    m = report.metrics
    assert index.dataset == "mead" and m["num_samples"] == 3 and m["accuracy"] == pytest.approx(2 / 3)
    assert sorted(u["label"] for u in m["unscorable"]) == ["contempt", "neutral"]
    assert m["classes"]["shared"] == ["happy", "sad", "angry"]  # MEAD's declared classes, clips or not
    assert m["classes"]["data_only"] == ["neutral", "fearful", "disgust", "surprised", "contempt"]
    assert m["accuracy_by_subject"] == pytest.approx({"M003": 0.5, "W009": 1.0})
