"""A folder per class: classes from folder names in emovid's spelling, rejects, the loud split by file."""

from __future__ import annotations

import zipfile

import pytest

from emovid.cli import main
from emovid.datasets import index_dataset
from emovid.datasets.common import hash_split
from emovid.synthetic import SynthConfig, generate_dataset


def test_classes_from_folders_rejects_and_split_by_file(tmp_path):
    for folder, count in (("Happiness", 30), ("sad", 30), ("Surprise", 20), ("pain", 10)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            (tmp_path / folder / f"take {i}.mp4").touch()
    (tmp_path / "loose.mp4").touch()
    (tmp_path / "sad" / "take 0.mov").touch()  # same key as sad/take 0.mp4
    index = index_dataset(tmp_path, "folder")
    assert index.classes == ("happy", "sad", "surprised", "pain")  # known emotions first, emovid's order
    assert len(index.entries) == 90 and index.entries[0].key == "Happiness__take_0"
    assert {r.reason for r in index.rejects} == {"not in a class folder (expected CLASS/video.mp4)",
                                                 f"duplicate of {tmp_path / 'sad' / 'take 0.mov'}"}
    assert "NO SUBJECTS" in index.note and all(e.subject == e.key for e in index.entries)
    assert sorted(k for keys in index.splits.values() for k in keys) == sorted(e.key for e in index.entries)
    assert 60 <= len(index.splits["train"]) <= 82  # about 80%


def test_split_by_file_is_stable_whatever_else_is_there():
    alone = hash_split(["a", "b", "c"])
    more = hash_split(["a", "b", "c", *map(str, range(100))])
    owner = {k: name for name, keys in alone.items() for k in keys}
    assert all(k in more[owner[k]] for k in ("a", "b", "c"))


def test_detected_from_emotion_folders_and_zips_count_as_folders(tmp_path):
    with zipfile.ZipFile(tmp_path / "clips.zip", "w") as archive:
        for name in ("angry/a.mp4", "angry/b.mp4", "neutral/c.mp4"):
            archive.writestr(name, b"")
    index = index_dataset(tmp_path)
    assert index.dataset == "folder" and index.detected.startswith("folder (videos sit in folders named after")
    assert [(e.key, e.label) for e in index.entries] == [("angry__a", "angry"), ("angry__b", "angry"),
                                                         ("neutral__c", "neutral")]


def test_undetectable_collection_is_one_line(tmp_path, capsys):
    (tmp_path / "holiday.mp4").touch()
    assert main(["index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the format from the names of 1 videos; choose one with --dataset" in err


@pytest.mark.parametrize("workers", [1])
def test_synthetic_folder_per_class_and_the_cli_note(tmp_path, capsys, workers):
    config = SynthConfig(actors=(1, 2), width=48, height=48, seconds=0.3, emotions=(1, 3, 5), repetitions=(1,),
                         statements=(1,), naming="folder")
    generate_dataset(tmp_path, config, workers=workers, progress=False)
    assert (tmp_path / "angry" / "actor01_s1_r1_i2.mp4").is_file()
    assert main(["index", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "10 folder videos" in out and "note:" in err and "NO SUBJECTS" in err
