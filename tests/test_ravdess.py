import json
import zipfile

import pytest

from emovid.cli import main
from emovid.datasets.ravdess import (
    EMOTIONS,
    STUDY_SPLIT,
    RavdessName,
    RavdessNameError,
    kfold,
    scan,
    speech_set_names,
)
from emovid.datasets.splits import count_table, parse_subjects, split_by_subjects


def test_parse_every_field():
    name = RavdessName.parse("Actor_07/02-01-06-02-01-02-07.mp4")
    assert name.fields == (2, 1, 6, 2, 1, 2, 7)
    assert (name.emotion_name, name.label, name.sex) == ("fearful", 5, "male")
    assert RavdessName.parse("01-01-01-01-02-01-24.mp4").sex == "female"
    assert name.filename() == "02-01-06-02-01-02-07.mp4"


@pytest.mark.parametrize("code,emotion", list(enumerate(EMOTIONS, start=1)))
def test_every_emotion_code(code, emotion):
    intensity = 1 if code == 1 else 2
    assert RavdessName.parse(f"01-01-{code:02d}-{intensity:02d}-01-01-01.mp4").emotion_name == emotion


@pytest.mark.parametrize(
    "name,message",
    [
        ("01-01-03-01-01-01.mp4", "7 two-digit fields"),
        ("01-01-03-01-01-01-01-01.mp4", "7 two-digit fields"),
        ("1-01-03-01-01-01-01.mp4", "7 two-digit fields"),
        ("clip.mp4", "7 two-digit fields"),
        ("01-01-09-01-01-01-01.mp4", "unknown emotion code 09"),
        ("04-01-03-01-01-01-01.mp4", "unknown modality code 04"),
        ("01-03-03-01-01-01-01.mp4", "unknown vocal channel code 03"),
        ("01-01-03-03-01-01-01.mp4", "unknown intensity code 03"),
        ("01-01-03-01-03-01-01.mp4", "unknown statement code 03"),
        ("01-01-03-01-01-03-01.mp4", "unknown repetition code 03"),
        ("01-01-03-01-01-01-25.mp4", "unknown actor code 25"),
        ("01-01-03-01-01-01-00.mp4", "unknown actor code 00"),
        ("01-01-01-02-01-01-01.mp4", "neutral has no strong intensity"),
    ],
)
def test_name_errors_name_the_file(name, message):
    with pytest.raises(RavdessNameError, match=message) as info:
        RavdessName.parse(name)
    assert str(info.value).startswith(name)


def test_speech_set_has_60_performances_per_actor_and_modality():
    names = speech_set_names()
    assert len(names) == 2880 and len(set(names)) == 2880
    assert len(speech_set_names([3], modalities=(2,))) == 60


@pytest.fixture(scope="module")
def official_tree(tmp_path_factory):
    """Empty placeholders for all 2880 speech videos, plus songs and audio files that must be filtered out."""
    root = tmp_path_factory.mktemp("ravdess")
    for name in speech_set_names():
        folder = root / f"Actor_{name.actor:02d}"
        folder.mkdir(exist_ok=True)
        (folder / name.filename()).touch()
    (root / "Actor_01" / "01-02-03-01-01-01-01.mp4").touch()  # song
    (root / "Actor_01" / "03-01-03-01-01-01-01.wav").touch()  # audio-only
    return root


def test_study_split_counts(official_tree):
    index = scan(official_tree)
    table = count_table(split_by_subjects(index.entries, index.splits), EMOTIONS)
    assert table["train"]["total"] == 2400 and table["val"]["total"] == 240 and table["test"]["total"] == 240
    for emotion in EMOTIONS:
        expected = 160 if emotion == "neutral" else 320
        assert table["train"][emotion] == expected
        assert table["test"][emotion] == expected // 10
        assert table["val"][emotion] == expected // 10


def test_filters(official_tree):
    assert len(scan(official_tree, modalities=(2,)).entries) == 1440
    assert len(scan(official_tree, vocal_channels=(1, 2)).entries) == 2881
    assert len(scan(official_tree, modalities=(3,)).entries) == 0  # audio-only has no video file


def test_index_cli_json(official_tree, capsys):
    assert main(["index", str(official_tree), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["videos"] == 2880
    assert out["splits"]["study"]["test"]["neutral"] == 16


def test_index_cli_kfold(official_tree, capsys):
    assert main(["index", str(official_tree), "--kfold", "6", "--json"]) == 0
    splits = json.loads(capsys.readouterr().out)["splits"]
    assert list(splits) == [f"fold{i}" for i in range(6)]
    assert all(s["test"]["total"] == 480 and s["train"]["total"] == 1920 for s in splits.values())


def test_zips_read_without_extracting(tmp_path):
    for actor in (1, 23):
        with zipfile.ZipFile(tmp_path / f"Video_Speech_Actor_{actor:02d}.zip", "w") as zf:
            for name in speech_set_names([actor]):
                zf.writestr(f"Actor_{actor:02d}/{name.filename()}", b"")
    (tmp_path / "Video_Speech_Actor_05.zip").write_bytes(b"not a zip")
    index = scan(tmp_path)
    assert len(index.entries) == 240
    assert index.entries[0].source.member.startswith("Actor_01/")
    assert [r.reason.split(" (")[0] for r in index.rejects] == ["unreadable zip archive"]
    assert list(tmp_path.glob("Actor_*")) == []  # nothing extracted
    groups = split_by_subjects(index.entries, index.splits)
    assert (len(groups["train"]), len(groups["test"])) == (120, 120)
    entry = index.entries[0]
    assert (entry.key, entry.label, entry.subject) == ("01-01-01-01-01-01-01", "neutral", "1")
    assert entry.meta["intensity"] == 1 and entry.meta["actor"] == 1


def test_wrong_names_are_rejects_not_crashes(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    for name in ("01-01-03-01-01-01-01.mp4", "01-01-09-01-01-01-01.mp4", "holiday.mp4", "01-01-03.mp4"):
        (tmp_path / "Actor_01" / name).touch()
    index = scan(tmp_path)
    assert len(index.entries) == 1
    assert sorted(r.reason.split(" (")[0] for r in index.rejects) == [
        "not a RAVDESS name",
        "not a RAVDESS name",
        "unknown emotion code 09",
    ]


def test_duplicate_in_folder_and_zip_is_kept_once(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "01-01-03-01-01-01-01.mp4").touch()
    with zipfile.ZipFile(tmp_path / "Video_Speech_Actor_01.zip", "w") as zf:
        zf.writestr("Actor_01/01-01-03-01-01-01-01.mp4", b"")
    index = scan(tmp_path)
    assert len(index.entries) == 1 and "duplicate of" in index.rejects[0].reason


def test_custom_split_and_overlap_error(official_tree):
    entries = scan(official_tree).entries
    groups = split_by_subjects(entries, {"train": parse_subjects("1-3,5"), "test": ("24",)})
    assert (len(groups["train"]), len(groups["test"])) == (480, 120)
    with pytest.raises(ValueError, match="subject 2 is in both"):
        split_by_subjects(entries, {"train": ("1", "2"), "test": ("2",)})


def test_kfold_is_actor_independent_and_covers_everyone():
    folds = kfold(6)
    assert len(folds) == 6
    assert sorted(int(a) for f in folds for a in f["test"]) == list(range(1, 25))
    for fold in folds:
        parts = [set(fold[k]) for k in ("train", "val", "test")]
        assert sum(len(p) for p in parts) == 24 and len(set().union(*parts)) == 24
        assert len(fold["test"]) == 4 and {int(a) % 2 for a in fold["test"]} == {0, 1}
    assert folds[0]["test"] == ("1", "2", "3", "4") and folds[0]["val"] == ("5", "6", "7", "8")
    with pytest.raises(ValueError):
        kfold(2)


def test_study_split_is_the_papers():
    assert STUDY_SPLIT == {"train": tuple(str(a) for a in range(1, 21)), "val": ("21", "22"), "test": ("23", "24")}
