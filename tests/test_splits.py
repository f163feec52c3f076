import pytest

from emovid.data.entry import Entry
from emovid.data.source import VideoSource
from emovid.datasets.splits import (
    check_parts,
    count_table,
    empty_part_message,
    format_subjects,
    kfold_splits,
    named_splits,
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
    with pytest.raises(ValueError, match=r"--kfold 7: this data has 6 subjects; pass --kfold K with 3 <= K <= 6"):
        kfold_splits(subjects, 7)
    with pytest.raises(ValueError, match="k-fold needs 3 subjects or more .* this data has 2"):
        kfold_splits(["1", "2"], 3)


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


@pytest.mark.parametrize("subjects,text", [
    (["3", "1", "2", "5", "10", "11"], "1-3,5,10-11"),
    (["M003", "W011", "M004"], "M003,M004,W011"),
    ([], "none"),
    ([str(s) for s in range(1, 40, 2)], "1,3,5,7,9,11,13,15,17,19,21,23 and 8 more"),
])
def test_format_subjects(subjects, text):
    assert format_subjects(subjects) == text


def test_an_empty_part_names_its_subjects_the_datas_and_the_flag():
    split = {"train": ("1", "2"), "val": ("21", "22"), "test": ("3",)}
    with pytest.raises(ValueError) as error:
        check_parts(split, ["1", "2", "3", "4"])
    assert str(error.value) == ("the val split is empty: subjects 21-22 have no videos (the data has subjects 1-4); "
                                "set it with --val-subjects (or use --kfold K)")
    assert "train, val and test need one each): use data with 3 subjects or more" in empty_part_message(
        "test", (), ["1", "2"])
    with pytest.raises(ValueError, match="subject 3 is in both the train and the test subjects"):
        check_parts({"train": ("1", "3"), "val": ("2",), "test": ("3",)}, ["1", "2", "3"])
    check_parts({"train": ("1", "9"), "val": ("2",), "test": ("3",)}, ["1", "2", "3"])


def test_custom_subjects_fill_the_other_parts_from_the_default_and_must_not_overlap():
    default = {"train": ("1", "2"), "val": ("3",), "test": ("4",)}
    assert named_splits([], default, {"val": ("5",)}) == {"custom": {"train": ("1", "2"), "val": ("5",),
                                                                     "test": ("4",)}}
    with pytest.raises(ValueError, match="subject 4 is in both the val and the test subjects"):
        named_splits([], default, {"val": ("4",)})
