"""Labels of real videos: one spelling per emotion, tables and dataset file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from emovid.datasets import label_from_name
from emovid.labels import LabelError, canonical_emotion, read_label_table


@pytest.mark.parametrize("text,expected", [
    ("Surprise", "surprised"), ("FEA", "fearful"), ("sadness", "sad"), (" angry ", "angry"), ("disgusted", "disgust"),
    ("contempt", "contempt"), ("calm", "calm"), ("bored", None),
])
def test_every_spelling_meets_emovids_name(text, expected):
    assert canonical_emotion(text) == expected


@pytest.mark.parametrize("name,expected", [
    ("Actor_01/01-01-07-02-02-01-01.mp4", "disgust"),
    ("RAVDESS_A01_disgust_02-01-03-01-01-01-12.mp4", "happy"),  # the RAVDESS code wins over other words
    ("1001_DFA_ANG_XX.flv", "angry"),
    ("1091_TIE_NEU_LO.mp4", "neutral"),
    ("M003_front_angry_level3_001.mp4", "angry"),
    ("W011_left_30_contempt_level_1_023.mp4", "contempt"),
    ("MEAD/M003/video/front/surprised/level_3/001.mp4", "surprised"),
    ("holiday.mp4", None),
    ("1001_DFA_XYZ_XX.flv", None),  # an unknown CREMA-D code is not guessed
])
def test_labels_from_dataset_names(name, expected):
    assert label_from_name(Path(name)) == expected


def test_table_with_tabs_or_commas(tmp_path):
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("file\tdataset\tlabel\nclips/a.mp4\tMEAD\tsurprise\nb.mp4\tDFEW\tContempt\nc.mp4\tX\tbored\n")
    rows = read_label_table(tsv)
    assert {k: v["label"] for k, v in rows.items()} == {"a.mp4": "surprised", "b.mp4": "contempt", "c.mp4": "bored"}
    assert rows["a.mp4"]["dataset"] == "MEAD"
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\nx/y.mp4,HAP\n")
    assert read_label_table(csv_file)["y.mp4"]["label"] == "happy"


def test_bad_tables_are_one_line(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(LabelError, match="none.csv: cannot read"):
        read_label_table(missing)
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("file,emotion\na.mp4,happy\n")
    with pytest.raises(LabelError, match="needs a header with a 'label' column"):
        read_label_table(no_label)
    twice = tmp_path / "twice.csv"
    twice.write_text("file,label\na.mp4,happy\nother/a.mp4,sad\n")
    with pytest.raises(LabelError, match="a.mp4 is listed twice"):
        read_label_table(twice)
