import pytest

from emovid.data.entry import Entry
from emovid.data.source import VideoSource
from emovid.datasets.splits import (
    count_table,
    kfold_splits,
    normalise_subject,
    parse_subjects,
    proportional_split,
    split_by_subjects,
)


def entry(key: str, label: str, subject: str) -> Entry:
    return Entry(VideoSource(__import__("pathlib").Path(f"{key}.mp4")), key, label, subject)


@pytest.mark.parametrize("text,expected", [
    ("1-3, 7,23-24", ("1", "2", "3", "7", "23", "24")),
    ("01,002", ("1", "2")),
    ("1001-1003", ("1001", "1002", "1003")),
    ("M003-M005,W011", ("M003", "M004", "M005", "W011")),
    ("M009-M011", ("M009", "M010", "M011")),
])
def test_parse_subjects(text, expected):
    assert parse_subjects(text) == expected


@pytest.mark.parametrize("text", ["3-1", "M003-W005", "1-M3", "", ","])
def test_parse_subjects_refuses(text):
    with pytest.raises(ValueError):
        parse_subjects(text)


def test_normalise_subject():
    assert [normalise_subject(v) for v in (7, "07", " M003 ")] == ["7", "7", "M003"]


def test_kfold_over_named_subjects_in_natural_order():
    subjects = ["10", "2", "1", "3", "11", "4"]
    folds = kfold_splits(subjects, 3)
    assert [f["test"] for f in folds] == [("1", "2"), ("3", "4"), ("10", "11")]
    assert folds[2]["val"] == ("1", "2")  # wraps
    for fold in folds:
        assert sorted(sum(fold.values(), ())) == sorted(subjects)
    with pytest.raises(ValueError, match="folds"):
        kfold_splits(subjects, 7)


def test_proportional_split_is_disjoint_and_complete():
    subjects = [str(s) for s in range(1001, 1092)]  # CREMA-D's 91 actors
    split = proportional_split(subjects)
    assert [len(split[k]) for k in ("train", "val", "test")] == [73, 9, 9]
    assert sorted(sum(split.values(), ())) == sorted(subjects)
    assert proportional_split(["a", "b"]) == {"train": ("a", "b"), "val": (), "test": ()}


def test_split_and_count():
    entries = [entry("a", "happy", "1"), entry("b", "sad", "1"), entry("c", "happy", "2"), entry("d", "sad", "3")]
    groups = split_by_subjects(entries, {"train": ("1",), "test": ("2",)})
    assert [e.key for e in groups["train"]] == ["a", "b"] and [e.key for e in groups["test"]] == ["c"]
    table = count_table(groups, ("happy", "sad", "angry"))
    assert table["train"] == {"happy": 1, "sad": 1, "angry": 0, "total": 2}
    assert table["test"] == {"happy": 1, "sad": 0, "angry": 0, "total": 1}
