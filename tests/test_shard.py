"""Shards: every input in exactly one shard, shards writing one cache at once, resuming alone, and merging."""

from __future__ import annotations

import json
import random

import pytest

from conftest import TINY_PREPARE
from emovid.cli import main
from emovid.data.cache import CacheError, ClipCache, merge_shards, prepare
from emovid.data.shard import Shard, ShardError, merge_files
from emovid.datasets import index_dataset
from emovid.predict import find_videos
from emovid.synthetic import SynthConfig, generate_dataset


def test_parse():
    assert Shard.parse("2/4") == Shard(2, 4) and Shard(2, 4).tag == "shard-2-of-4"
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(ShardError):
            Shard.parse(bad)
    assert Shard(1, 3).path("out/preds.json").as_posix() == "out/preds.shard-1-of-3.json"


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_every_input_exactly_once_whatever_the_order(count):
    keys = [f"clip{i:04d}" for i in range(100)]
    shuffled = random.Random(count).sample(keys, len(keys))
    parts = [Shard(k, count).select(shuffled, key=str) for k in range(1, count + 1)]
    assert sorted(k for part in parts for k in part) == keys
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [Shard(k, count).select(keys, key=str) for k in range(1, count + 1)]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("shard_set")
    generate_dataset(out, SynthConfig(actors=(1, 2, 3), width=48, height=48, seconds=0.3, repetitions=(1,),
                                      statements=(1,), intensities=(1,), naming="cremad"), workers=2, progress=False)
    (out / "1001_DFA_XYZ_XX.flv").touch()  # an index reject: one shard reports it
    (out / "1002_DFA_ANG_XX.flv").write_bytes(b"not a video")  # a decoding reject
    return out


def test_shards_write_one_cache_resume_alone_and_merge(tiny_set, tmp_path):
    index = index_dataset(tiny_set)
    out = tmp_path / "cache"
    reports = {}
    (out / "clips").mkdir(parents=True)
    other = Shard(2, 3).select(index.entries, key=lambda e: e.key)[0].key
    in_progress = out / "clips" / f".{other}.npy.4242.part"  # shard 2 writing on another machine
    in_progress.write_bytes(b"half")
    for k in (1, 3):
        reports[k] = prepare(index, out, TINY_PREPARE, workers=1, progress=False, shard=Shard(k, 3))
    with pytest.raises(CacheError, match="shard 2 of 3 has not finished"):
        ClipCache.open(out)
    assert in_progress.exists()  # shards 1 and 3 left shard 2's file in progress alone
    reports[2] = prepare(index, out, TINY_PREPARE, workers=1, progress=False, shard=Shard(2, 3))
    manifests = [[json.loads(line)["key"] for line in (out / f"manifest.shard-{k}-of-3.jsonl").read_text().splitlines()]
                 for k in (1, 2, 3)]
    good = sorted(e.key for e in index.entries if e.key != "1002_DFA_ANG_XX")
    assert sorted(k for keys in manifests for k in keys) == good  # each clip in one shard's list
    rejects = [r for k in (1, 2, 3) for r in reports[k].rejects]
    assert sorted(r.file.rsplit("/", 1)[1] for r in rejects) == ["1001_DFA_XYZ_XX.flv", "1002_DFA_ANG_XX.flv"]
    assert [e["key"] for e in ClipCache.open(out).entries] == good  # the shards read as one cache

    # Shard 2 resumes alone: a lost clip is made again, the rest reused, the other shards' files untouched.
    lost = manifests[1][0]
    (out / "clips" / f"{lost}.json").unlink()
    before = {k: (out / f"manifest.shard-{k}-of-3.jsonl").stat().st_mtime_ns for k in (1, 3)}
    again = prepare(index, out, TINY_PREPARE, workers=1, progress=False, shard=Shard(2, 3))
    assert (again.written, again.reused) == (1, len(manifests[1]) - 1)
    assert {k: (out / f"manifest.shard-{k}-of-3.jsonl").stat().st_mtime_ns for k in (1, 3)} == before

    assert merge_shards(out) == (len(good), 2)
    assert not list(out.glob("*.shard-*")) and [e["key"] for e in ClipCache.open(out).entries] == good
    with pytest.raises(CacheError, match="no shard files"):
        merge_shards(out)


def test_a_whole_run_supersedes_shard_lists(tiny_set, tmp_path, capsys):
    out = tmp_path / "cache"
    args = ["prepare", str(tiny_set), "--out", str(out), "--frames", "4", "--size", "32", "--workers", "1"]
    assert main([*args, "--shard", "1/2"]) == 1  # a reject in this shard
    assert "rejects.shard-1-of-2.jsonl" in capsys.readouterr().out
    assert main(args) == 1
    assert not list(out.glob("*.shard-*")) and len(ClipCache.open(out).entries) == 18


def test_predict_shards_and_merged_results(tiny_set, tmp_path, capsys):
    parts = [find_videos([str(tiny_set)], shard=Shard(k, 4))[0] for k in range(1, 5)]
    assert sorted(str(v) for part in parts for v in part) == sorted(str(v) for v in find_videos([str(tiny_set)])[0])
    out = tmp_path / "preds.json"
    for k, part in enumerate(parts, start=1):
        records = [{"file": str(v), "emotion": "sad"} for v in part]
        Shard(k, 4).path(out).write_text(json.dumps(records))
        header = "file,error,sad\n" if k == 2 else "file,sad\n"  # a shard with a failure has an error column
        Shard(k, 4).path(out.with_suffix(".csv")).write_text(header + "".join(f"{v},0.5\n" for v in part))
    assert main(["merge", str(out), str(out.with_suffix(".csv"))]) == 0
    merged = json.loads(out.read_text())
    assert [r["file"] for r in merged] == sorted(str(v) for v in find_videos([str(tiny_set)])[0])
    lines = out.with_suffix(".csv").read_text().splitlines()
    assert lines[0] == "file,error,sad" and len(lines) == 1 + len(merged)
    Shard(1, 2).path(out).write_text("[]")
    with pytest.raises(ShardError, match="shard 2 of 2 has not finished"):
        merge_files(out)
