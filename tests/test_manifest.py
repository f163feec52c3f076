"""A CSV/TSV manifest: paths, labels in any spelling, subjects or a loud split by file, rejected rows."""

from __future__ import annotations

import pytest

from emovid.datasets import index_dataset
from emovid.datasets.splits import count_table, split_by_subjects


def test_manifest_with_subjects(tmp_path):
    (tmp_path / "clips").mkdir()
    rows = ["path,label,subject,session"]
    for subject in range(1, 11):
        for label in ("Happiness", "fear", "boredom"):
            name = f"clips/s{subject}_{label}.mp4"
            (tmp_path / name).touch()
            rows.append(f"{name},{label},{subject:02d},A")
    rows += ["clips/missing.mp4,happy,1,A", "clips/s1_fear.mp4,fear,1,A", f"{tmp_path / 'abs.mp4'},sad,11,B"]
    (tmp_path / "abs.mp4").touch()
    manifest = tmp_path / "labels.csv"
    manifest.write_text("\n".join(rows) + "\n")
    index = index_dataset(manifest)
    assert index.dataset == "manifest" and index.detected.startswith("manifest (labels.csv is a CSV file)")
    assert index.classes == ("happy", "sad", "fearful", "boredom")
    assert index.note is None and index.splits["test"] == ("11",) and index.splits["val"] == ("10",)
    table = count_table(split_by_subjects(index.entries, index.splits), index.classes)
    assert table["train"] == {"happy": 9, "sad": 0, "fearful": 9, "boredom": 9, "total": 27}
    assert [(r.file.split(": ")[1], r.reason) for r in index.rejects] == [
        ("clips/missing.mp4", "no such file"), ("clips/s1_fear.mp4", "listed before, as clips/s1_fear.mp4")]
    assert index.rejects[0].file.startswith(f"{manifest}:32")  # names the line
    first = next(e for e in index.entries if e.key == "clips__s1_fear")
    assert (first.subject, first.label, first.meta) == ("1", "fearful", {"session": "A"})


def test_manifest_without_subjects_is_split_by_file_loudly(tmp_path):
    (tmp_path / "a.mp4").touch()
    (tmp_path / "b.mp4").touch()
    manifest = tmp_path / "m.tsv"
    manifest.write_text("file\tlabel\na.mp4\tANG\nb.mp4\tHAP\n")
    index = index_dataset(manifest)
    assert [(e.key, e.label) for e in index.entries] == [("a", "angry"), ("b", "happy")]
    assert "NO SUBJECTS" in index.note and {e.subject for e in index.entries} == {"a", "b"}


def test_a_subject_missing_on_some_rows_is_rejected(tmp_path):
    (tmp_path / "a.mp4").touch()
    (tmp_path / "b.mp4").touch()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,subject\na.mp4,sad,3\nb.mp4,sad,\n")
    index = index_dataset(manifest, "manifest")
    assert [e.key for e in index.entries] == ["a"]
    assert index.rejects[0].reason == "no subject, while other rows have one"


def test_a_manifest_without_a_label_column_is_one_line(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,emotion\na.mp4,sad\n")
    with pytest.raises(ValueError, match="m.csv: needs a header with a 'label' column"):
        index_dataset(manifest)
