import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from emovid.cli import main
from emovid.data.cache import CacheError, ClipCache, PrepareSettings, load_clip, prepare, save_clip
from emovid.data.dataset import ClipDataset
from emovid.data.video import Resize
from emovid.datasets.ravdess import scan, speech_set_names
from test_video import bad_inputs
from videos import make_video, mixed_collection

SETTINGS = PrepareSettings(frames=4, resize=Resize("intelligent", size=48, short_side=56))


def make_tree(root, actors=(1, 2, 23), per_actor=4, num_frames=20):
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name in speech_set_names([actor], modalities=(2,))[:per_actor]:
            make_video(folder / name.filename(), num_frames=num_frames, width=96, height=64, bframes=False)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("data"))


def test_prepare_writes_every_clip(tree, tmp_path):
    report = prepare(scan(tree), tmp_path / "c", SETTINGS, workers=2, progress=False)
    assert (report.written, report.reused, report.rejects) == (12, 0, [])
    cache = ClipCache.open(tmp_path / "c")
    assert len(cache.entries) == 12 and cache.settings == SETTINGS
    clip = cache.load(cache.entries[0]["key"])
    assert clip.shape == (4, 3, 48, 48) and clip.dtype == np.uint8
    again = prepare(scan(tree), tmp_path / "c", SETTINGS, workers=1, progress=False)
    assert (again.written, again.reused) == (0, 12)


def test_other_settings_are_refused(tree, tmp_path):
    prepare(scan(tree), tmp_path / "c", SETTINGS, workers=1, progress=False)
    other = PrepareSettings(frames=6, resize=SETTINGS.resize)
    with pytest.raises(CacheError, match="frames"):
        prepare(scan(tree), tmp_path / "c", other, workers=1, progress=False)
    cache = ClipCache.open(tmp_path / "c")
    cache.check_compatible(4, 48)
    cache.check_compatible(2)  # a uniform subset of the cached frames
    with pytest.raises(CacheError, match="4 frames at 48x48, but 10 frames at 48x48"):
        cache.check_compatible(10, 48)
    with pytest.raises(CacheError, match="but 4 frames at 64x64"):
        cache.check_compatible(4, 64)


def test_half_written_clips_are_never_read_back(tree, tmp_path):
    out = tmp_path / "c"
    prepare(scan(tree), out, SETTINGS, workers=1, progress=False)
    clips = out / "clips"
    key = sorted(p.stem for p in clips.glob("*.json"))[0]
    original = np.load(clips / f"{key}.npy")
    # A kill between the array and its metadata leaves an array with no .json; a kill mid-write a temp file.
    (clips / f"{key}.json").unlink()
    (clips / f"{key}.npy").write_bytes(b"\x93NUMPY half")
    (clips / ".x.npy.999.part").write_bytes(b"partial")
    report = prepare(scan(tree), out, SETTINGS, workers=1, progress=False)
    assert (report.written, report.reused) == (1, 11)
    assert not list(clips.glob("*.part"))
    np.testing.assert_array_equal(np.load(clips / f"{key}.npy"), original)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    data = make_tree(tmp_path / "data", actors=(1, 2, 3, 4), per_actor=12, num_frames=60)
    cmd = [sys.executable, "-m", "emovid.cli", "prepare", str(data), "--out", str(tmp_path / "killed"),
           "--frames", "4", "--size", "48", "--short-side", "56", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clips = tmp_path / "killed" / "clips"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(clips.glob("*.json"))) < 3:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(clips.glob("*.json")))
    assert 3 <= done_at_kill < 48, "the run should have been killed midway"
    assert not (tmp_path / "killed" / "manifest.jsonl").exists()
    with pytest.raises(CacheError, match="did not finish"):
        ClipCache.open(tmp_path / "killed")

    resumed = prepare(scan(data), tmp_path / "killed", SETTINGS, workers=2, progress=False)
    assert resumed.reused >= done_at_kill and resumed.written + resumed.reused == 48
    prepare(scan(data), tmp_path / "whole", SETTINGS, workers=2, progress=False)
    a, b = ClipCache.open(tmp_path / "killed"), ClipCache.open(tmp_path / "whole")
    assert a.entries == b.entries
    for entry in a.entries:
        np.testing.assert_array_equal(a.load(entry["key"]), b.load(entry["key"]))


def test_bad_videos_are_reported_and_the_run_goes_on(tmp_path):
    data = make_tree(tmp_path / "data", actors=(1,), per_actor=2)
    (tmp_path / "bad").mkdir()
    bad = bad_inputs(tmp_path / "bad")
    (data / "Actor_05").mkdir()
    names = iter(speech_set_names([5], modalities=(2,)))
    for source, _ in bad.values():
        target = data / "Video_Speech_Actor_01.zip" if source.member else data / "Actor_05" / next(names).filename()
        source.path.rename(target)
    (data / "Actor_05" / "01-01-09-01-01-01-05.mp4").write_bytes(b"")
    report = prepare(scan(data), tmp_path / "c", SETTINGS, workers=2, progress=False)
    assert report.written == 2
    reasons = sorted(r.reason.split(" (")[0] for r in report.rejects)
    assert reasons == [
        "broken zip member",
        "empty file",
        "no video stream",
        "not a readable video, or truncated",
        "not a readable video, or truncated",
        "unknown emotion code 09",
    ]
    rejects = [json.loads(line) for line in (tmp_path / "c" / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["reason"].split(" (")[0] for r in rejects) == reasons


def test_cremad_flv_and_a_corrupt_zip_member_end_in_the_cache_and_the_rejects(tmp_path, capsys):
    good, bad = mixed_collection(tmp_path / "data")
    out = tmp_path / "c"
    assert main(["prepare", str(tmp_path / "data"), "--out", str(out), "--frames", "4", "--size", "32"]) == 1
    assert "3 clips written" in capsys.readouterr().out
    assert sorted(e["source"] for e in ClipCache.open(out).entries) == sorted(good)
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["file"] for r in rejects] == bad and rejects[0]["reason"].startswith("broken zip member")


def test_an_unexpected_error_is_that_files_reject(tree, tmp_path, monkeypatch):
    from emovid.data import cache

    def read_clip(source, *args):
        if source.path.name.startswith("02-01-01-01-01-01"):
            raise RuntimeError("the decoder's\nsurprise")
        return real(source, *args)

    real = cache.read_clip
    monkeypatch.setattr(cache, "read_clip", read_clip)
    report = prepare(scan(tree), tmp_path / "c", SETTINGS, workers=1, progress=False)
    assert report.written == 9 and len(report.rejects) == 3
    assert {r.reason for r in report.rejects} == {"RuntimeError: the decoder's surprise"}
    assert len((tmp_path / "c" / "rejects.jsonl").read_text().splitlines()) == 3


def test_jpeg_storage_round_trip(tmp_path):
    ramp = np.linspace(0, 255, 48)
    smooth = np.stack([np.stack([np.add.outer(ramp, ramp * c / 3) / 2 for c in range(3)]) for _ in range(4)])
    smooth = smooth.astype(np.uint8)  # (T, C, H, W)
    save_clip(tmp_path / "a.jpg", smooth, "jpeg", jpeg_quality=95)
    back = load_clip(tmp_path / "a.jpg", 4)
    assert back.shape == smooth.shape and np.abs(back.astype(int) - smooth).mean() < 4
    save_clip(tmp_path / "a.npy", smooth, "npy")
    np.testing.assert_array_equal(load_clip(tmp_path / "a.npy", 4), smooth)


def test_dataset_items_and_split(tree, tmp_path):
    prepare(scan(tree), tmp_path / "c", SETTINGS, workers=1, progress=False)
    seen = []
    dataset = ClipDataset(tmp_path / "c", subjects=("1", "2"), transform=lambda x: seen.append(x.shape) or x.flip(0))
    assert len(dataset) == 8 and set(dataset.labels) <= set(range(8))
    frames, label, meta = dataset[0]
    assert frames.dtype == torch.uint8 and frames.shape == (4, 3, 48, 48)
    assert seen == [(4, 3, 48, 48)]
    raw = torch.from_numpy(np.array(dataset.cache.load(meta["key"])))
    torch.testing.assert_close(frames, raw.flip(0))
    assert dataset.cache.classes[label] == dataset.entries[0]["emotion"] and meta["subject"] in ("1", "2")
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch[0].shape == (4, 4, 3, 48, 48) and len(batch[2]["key"]) == 4
    assert len(ClipDataset(tmp_path / "c", subjects=("23",))) == 4


def test_prepare_cli(tree, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["prepare", str(tree), "--out", str(out), "--frames", "6", "--size", "32", "--workers", "2"]) == 0
    assert "12 clips written" in capsys.readouterr().out
    assert ClipCache.open(out).load(ClipCache.open(out).entries[0]["key"]).shape == (6, 3, 32, 32)
    assert main(["prepare", str(tree), "--out", str(out), "--frames", "8", "--size", "32"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_a_cache_of_an_older_format_is_refused(tree, tmp_path):
    prepare(scan(tree), tmp_path / "c", SETTINGS, workers=1, progress=False)
    opened = ClipCache.open(tmp_path / "c")
    assert (opened.dataset, opened.classes[:2], opened.splits["test"]) == ("ravdess", ("neutral", "calm"), ("23", "24"))
    record = json.loads((tmp_path / "c" / "cache.json").read_text())
    record["settings"]["version"] = 2
    (tmp_path / "c" / "cache.json").write_text(json.dumps(record))
    with pytest.raises(CacheError, match="cache format 2 is not this emovid's 3; prepare it again"):
        ClipCache.open(tmp_path / "c")
