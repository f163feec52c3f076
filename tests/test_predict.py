"""emovid predict: any container and size through a tiny trained checkpoint, timelines, annotation, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_SPLIT
from emovid.annotate import annotate_video, current_window, segments
from emovid.cli import main
from emovid.config import TrainConfig
from emovid.data.source import VideoSource
from emovid.data.video import clip_geometry, finish_clip, open_video, read_clip
from emovid.predict import (
    Failure,
    Prediction,
    Predictor,
    PredictorError,
    TimelineRequest,
    find_videos,
    load_predictor,
    predict_timeline,
    predict_videos,
    sliding_windows,
    timeline_paths,
)
from emovid.training import train
from emovid.transforms import normalize
from test_video import bad_inputs
from videos import make_video, mixed_collection

CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.fixture(scope="module")
def checkpoint(tiny_cache, tmp_path_factory) -> Path:
    """A checkpoint of the smallest model after one epoch on the tiny cache (4 frames at 32x32)."""
    runs = tmp_path_factory.mktemp("predict_runs")
    run = train(TrainConfig(cache=str(tiny_cache), model="early-fusion-cnn", epochs=1, batch_size=16, num_workers=0,
                            progress=False, runs_dir=str(runs), **TINY_SPLIT))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    return Predictor.from_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    """Videos of several containers, codecs, sizes, rotations and lengths."""
    folder = tmp_path_factory.mktemp("videos")
    return [
        make_video(folder / "a.mp4", num_frames=30, width=160, height=96),
        make_video(folder / "b.mkv", num_frames=24, width=96, height=160, fps=24),
        make_video(folder / "c.webm", num_frames=20, width=128, height=72, codec="libvpx-vp9"),
        make_video(folder / "d.avi", num_frames=25, width=200, height=120, fps=25, codec="mpeg4"),
        make_video(folder / "e.mov", num_frames=18, width=250, height=140, rotation=90),
        make_video(folder / "f.flv", num_frames=15, width=176, height=144, codec="flv"),
        make_video(folder / "g.mkv", num_frames=16, width=63, height=47, pix_fmt="yuv444p"),
        make_video(folder / "one-frame.mp4", num_frames=1, width=64, height=48),
    ]


def direct_probabilities(predictor: Predictor, path: Path) -> np.ndarray:
    """What the model says about the clip read_clip makes, without predict's batching."""
    spec = predictor.spec
    clip = read_clip(path, spec.frames, predictor.resize, spec.crop)
    with torch.no_grad():
        logits = predictor.model(normalize(torch.from_numpy(clip.frames[None]), spec.mean, spec.std))
    return logits.softmax(-1)[0].numpy()


def test_any_container_and_size_gives_the_models_answer(predictor, videos):
    calls = []
    model = predictor.model

    class Recording(torch.nn.Module):
        def forward(self, clips):
            calls.append(tuple(clips.shape))
            return model(clips)

    results = list(predict_videos(videos, Predictor(Recording(), predictor.spec), batch_size=3))
    assert [r.source for r in results] == [str(v) for v in videos]
    assert [c[0] for c in calls] == [3, 3, 2] and calls[0][1:] == (4, 3, 32, 32)
    for video, result in zip(videos, results, strict=True):
        assert isinstance(result, Prediction), result
        assert result.probabilities.shape == (8,) and abs(result.probabilities.sum() - 1) < 1e-5
        np.testing.assert_allclose(result.probabilities, direct_probabilities(predictor, video), atol=1e-5)
    assert results[-1].meta["repeated_frames"] is True


@pytest.mark.parametrize(
    "num_frames,fps,window,stride,starts,length",
    [
        (75, 25, 1.0, 0.44, [0, 11, 22, 33, 44, 50], 25),  # the last window is moved to end with the video
        (75, 25, 1.0, 0.4, [0, 10, 20, 30, 40, 50], 25),  # windows that fit exactly
        (26, 25, 1.0, 0.5, [0, 1], 25),
        (25, 25, 1.0, 0.5, [0], 25),
        (20, 25, 1.0, 0.5, [0], 20),  # shorter than a window: one window over all of it
        (1, 30, 3.7, 1.85, [0], 1),
    ],
)
def test_sliding_windows(num_frames, fps, window, stride, starts, length):
    windows = sliding_windows(num_frames, fps, 4, window, stride)
    assert [w.start for w in windows] == starts
    assert all(w.end - w.start == length for w in windows) and windows[-1].end == num_frames
    for w in windows:
        assert len(w.indices) == 4 and w.start <= w.indices.min() and w.indices.max() < w.end
        assert np.all(np.diff(w.indices) >= 0)
    with pytest.raises(ValueError):
        sliding_windows(10, 25, 4, 0, 1)


def test_timeline_windows_cover_the_video_with_the_right_times(predictor, tmp_path):
    path = make_video(tmp_path / "t.mp4", num_frames=75, width=96, height=64, fps=25)
    timeline = predict_timeline(path, predictor, window=1.0, stride=0.44, batch_size=4)
    np.testing.assert_allclose(timeline.starts, np.array([0, 11, 22, 33, 44, 50]) / 25)
    np.testing.assert_allclose(timeline.ends, timeline.starts + 1.0)
    assert timeline.starts[0] == 0 and abs(timeline.ends[-1] - timeline.video["duration"]) < 1 / 25
    assert np.all(np.diff(timeline.starts)[:-1] == pytest.approx(0.44)) and np.diff(timeline.starts)[-1] <= 0.44
    assert timeline.note is None and np.allclose(timeline.probabilities.sum(axis=1), 1, atol=1e-5)
    # Streaming gives each window the frames random access gives.
    spec = predictor.spec
    with open_video(path) as reader:
        for window, probs in zip(sliding_windows(75, 25, spec.frames, 1.0, 0.44), timeline.probabilities,
                                 strict=True):
            frames = reader.frames_at(window.indices, clip_geometry(predictor.resize, spec.crop, 96, 64))
            clip, _ = finish_clip(frames, predictor.resize, spec.crop)
            np.testing.assert_allclose(probs, predictor.probabilities(clip[None])[0], atol=1e-5)


def test_timeline_defaults_and_short_videos(predictor, tmp_path):
    spec = predictor.spec
    path = make_video(tmp_path / "long.mp4", num_frames=90, width=64, height=48, fps=30)
    timeline = predict_timeline(path, predictor)
    window = spec.clip_seconds
    assert timeline.ends[0] - timeline.starts[0] == pytest.approx(window, abs=1 / 30)
    assert timeline.starts[1] == pytest.approx(window / 2, abs=1 / 30)
    short = predict_timeline(make_video(tmp_path / "short.mp4", num_frames=6, width=64, height=48), predictor)
    assert len(short.starts) == 1 and (short.starts[0], short.ends[0]) == (0, pytest.approx(6 / 30))
    assert "shorter than one window" in short.note


def test_annotated_copy_keeps_frames_size_and_rate(predictor, tmp_path):
    for name, options in [("even.mp4", dict(width=96, height=64, fps=24)),
                          ("odd.mkv", dict(width=63, height=47, fps=30, pix_fmt="yuv444p"))]:
        path = make_video(tmp_path / name, num_frames=40, **options)
        timeline = predict_timeline(path, predictor, window=0.5)
        out = tmp_path / f"annotated-{name}.mp4"
        assert annotate_video(path, out, timeline) == 40
        with open_video(out) as reader, open_video(path) as original:
            assert reader.info.num_frames == 40
            assert (reader.info.width, reader.info.height) == (original.info.width, original.info.height)
            assert reader.info.fps == pytest.approx(original.info.fps, rel=1e-3)
            band = reader.frames_at([0])[0][:8, :20]
        assert band.min() < 40 and band.max() > 200  # white text on a dark band


def test_current_window_is_the_nearest_centre(predictor, tmp_path):
    path = make_video(tmp_path / "w.mp4", num_frames=75, width=64, height=48, fps=25)
    timeline = predict_timeline(path, predictor, window=1.0, stride=0.5)
    edges = segments(timeline)
    assert edges[0] == 0 and edges[-1] == pytest.approx(3.0) and np.all(np.diff(edges) > 0)
    centres = (timeline.starts + timeline.ends) / 2
    for t in np.linspace(0, 2.99, 40):
        assert current_window(edges, t) == int(np.argmin(np.abs(centres - t)))


def test_cli_table_json_and_csv(checkpoint, videos, tmp_path, capsys):
    folder = videos[0].parent
    assert main(["predict", str(folder), "--checkpoint", str(checkpoint), "--csv", str(tmp_path / "p.csv")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["file", "emotion", "probability"] and len(table) == 1 + len(videos)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["file"] for r in rows] == sorted(str(v) for v in videos)
    assert abs(sum(float(rows[0][c]) for c in CLASSES) - 1) < 1e-4
    assert main(["predict", str(folder / "*.mkv"), "--checkpoint", str(checkpoint), "--json", "-",
                 "--crop", "face"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [Path(r["file"]).name for r in records] == ["b.mkv", "g.mkv"]
    assert set(records[0]["probabilities"]) == set(CLASSES) and records[0]["face_found"] is False


def test_cli_timeline_outputs(checkpoint, videos, tmp_path, capsys):
    video = videos[0]
    args = ["predict", str(video), "--checkpoint", str(checkpoint), "--window", "0.4", "--stride", "0.2"]
    assert main([*args, "--timeline", "--json", str(tmp_path / "all.json")]) == 0
    out = capsys.readouterr().out
    assert "start" in out and "emotion" in out
    windows = json.loads((tmp_path / "all.json").read_text())[0]["windows"]
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(1.0)
    assert main([*args, "--timeline-out", str(tmp_path / "tl"), "--annotate", str(tmp_path / "a.mp4")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "tl.csv")))
    assert len(rows) == len(windows) and set(CLASSES) <= set(rows[0])
    assert json.loads((tmp_path / "tl.json").read_text())["windows"] == windows
    assert (tmp_path / "tl.png").stat().st_size > 1000
    with open_video(tmp_path / "a.mp4") as reader:
        assert reader.info.num_frames == 30
    assert main(["predict", str(videos[0]), str(videos[1]), "--checkpoint", str(checkpoint),
                 "--timeline-out", str(tmp_path / "many")]) == 0
    assert (tmp_path / "many-a.csv").exists() and (tmp_path / "many-b.png").exists()


def test_bad_inputs_one_line_each_and_the_rest_still_run(checkpoint, videos, tmp_path, capsys):
    bad = [source.path for source, _ in bad_inputs(tmp_path).values() if source.member is None]
    (tmp_path / "empty_folder").mkdir()
    missing = tmp_path / "missing.mp4"
    inputs = [videos[0], *bad, missing, tmp_path / "empty_folder", videos[-1]]
    for extra in ([], ["--timeline", "--timeline-out", str(tmp_path / "tl")]):
        assert main(["predict", *map(str, inputs), "--checkpoint", str(checkpoint), *extra]) == 1
        captured = capsys.readouterr()
        errors = [line for line in captured.err.splitlines()
                  if ": note: " not in line and not line.startswith("emovid predict: timeline of ")]
        assert len(errors) == len(bad) + 2, captured.err
        for path in [*bad, missing, tmp_path / "empty_folder"]:
            assert sum(line.startswith(f"emovid predict: {path}: ") for line in errors) == 1, (path, errors)
        assert str(videos[0]) in captured.out and str(videos[-1]) in captured.out
    result = next(predict_videos([tmp_path / "text.mp4"], Predictor.from_checkpoint(checkpoint)))
    assert isinstance(result, Failure) and result.reason.startswith("not a readable video")


def test_an_unexpected_error_is_one_line_with_its_type_and_the_rest_still_run(checkpoint, videos, monkeypatch,
                                                                             tmp_path, capsys):
    import emovid.annotate
    import emovid.predict

    def failing(real):
        def call(source, *args, **kwargs):
            if Path(str(source)).name == "b.mkv":
                raise KeyError("odd")
            return real(source, *args, **kwargs)
        return call

    for module, name in ((emovid.predict, "read_clip"), (emovid.predict, "predict_timeline"),
                         (emovid.annotate, "annotate_video")):
        monkeypatch.setattr(module, name, failing(getattr(module, name)))
    inputs = [str(v) for v in videos[:3]]
    for extra in ([], ["--timeline-out", str(tmp_path / "tl")], ["--annotate", str(tmp_path / "a.mp4")]):
        assert main(["predict", *inputs, "--checkpoint", str(checkpoint), *extra]) == 1
        captured = capsys.readouterr()
        errors = [line for line in captured.err.splitlines()
                  if line.startswith("emovid predict: ") and ": note: " not in line and " annotated " not in line
                  and " timeline of " not in line]
        assert errors == [f"emovid predict: {videos[1]}: KeyError: 'odd'"], captured.err
        assert str(videos[0]) in captured.out and str(videos[2]) in captured.out


def test_a_folder_with_a_cremad_flv_and_a_corrupt_zip_member(checkpoint, tmp_path, capsys):
    good, bad = mixed_collection(tmp_path / "data")
    for output in ([], ["--json"]):  # --json without a path: standard output
        assert main(["predict", str(tmp_path / "data"), "--checkpoint", str(checkpoint), *output]) == 1
        captured = capsys.readouterr()
        (error,) = captured.err.splitlines()
        assert error.startswith(f"emovid predict: {bad[0]}: broken zip member (Error -3")
        if output:
            records = json.loads(captured.out)
            assert [r["file"] for r in records if "error" in r] == bad
            assert sorted(r["file"] for r in records if "error" not in r) == sorted(good)
        else:
            assert sorted(line.split()[0] for line in captured.out.splitlines()[1:]) == sorted(good)


def test_find_videos_reads_gifs_and_zips_and_sees_through_link_loops(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    gif = make_video(folder / "a.gif", num_frames=4, codec="gif", pix_fmt="rgb8")
    mp4 = make_video(folder / "b.mp4", num_frames=4)
    with zipfile.ZipFile(folder / "c.zip", "w") as archive:
        archive.write(mp4, "inner/b.mp4")
    (folder / "self").symlink_to(folder)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    member = f"{folder / 'c.zip'}:inner/b.mp4"
    inputs = [folder, folder / "c.zip", folder / "**" / "*.mp4", tmp_path / "loop", tmp_path / "dangling"]
    videos, failures = find_videos([str(p) for p in inputs])
    assert [str(v) for v in videos] == [str(gif), str(mp4), member, member, str(mp4)]
    assert failures == [Failure(str(tmp_path / "loop"), "a symbolic link loop"),
                        Failure(str(tmp_path / "dangling"), f"a broken symbolic link (to {tmp_path / 'nothing'})")]


def test_a_reader_that_goes_away_is_no_traceback(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    for name in ("02-01-03-01-01-01-01.mp4", "02-01-04-01-01-01-01.mp4"):
        (tmp_path / "Actor_01" / name).write_bytes(b"")
    # As `emovid index DATA --json | head -c0`: the reading end is closed before anything is written.
    child = subprocess.Popen([sys.executable, "-m", "emovid.cli", "index", str(tmp_path), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    assert child.wait(timeout=60) == 1
    # Only the warnings that actors 21-24 (val and test) are missing: no traceback.
    assert [line[:30] for line in child.stderr.read().decode().splitlines()] == ["warning: study: the val split ",
                                                                               "warning: study: the test split"]


def test_checkpoint_problems_are_one_line(checkpoint, videos, tmp_path, capsys, monkeypatch):
    video = str(videos[0])
    assert main(["predict", video]) == 2  # no checkpoint: the zero-shot model, whose weights are missing here
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "emovid weights download" in err
    assert main(["predict", video, "--checkpoint", str(tmp_path / "nope.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such checkpoint" in err
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data["emovid"]["format"] = 99
    torch.save(data, tmp_path / "future.ckpt")
    assert main(["predict", video, "--checkpoint", str(tmp_path / "future.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format 99" in err
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert main(["predict", video, "--checkpoint", str(tmp_path / "junk.ckpt")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_any_model_and_spec_pair_works(predictor, videos):
    """The predictor is (model, spec): a zero-shot or ONNX model plugs in the same way."""

    class Uniform(torch.nn.Module):
        def forward(self, clips):
            assert clips.dtype == torch.float32 and clips.ndim == 5
            return torch.zeros(len(clips), 8)

    (result,) = predict_videos(videos[:1], Predictor(Uniform(), predictor.spec))
    np.testing.assert_allclose(result.probabilities, np.full(8, 1 / 8))


def test_timeline_files_go_beside_the_video_by_default(checkpoint, videos, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(videos[0].read_bytes())
    assert main(["predict", str(clip), "--checkpoint", str(checkpoint), "--timeline", "--window", "0.4", "--stride",
                 "0.2"]) == 0
    assert f"timeline of {clip}: {tmp_path / 'clip.timeline'}.csv, .json, .png" in capsys.readouterr().err
    windows = json.loads((tmp_path / "clip.timeline.json").read_text())["windows"]
    assert len(list(csv.DictReader(open(tmp_path / "clip.timeline.csv")))) == len(windows) > 1
    assert (tmp_path / "clip.timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert clip.read_bytes() == videos[0].read_bytes()


def test_timeline_paths():
    folder = Path("clips")
    a, a2, b = VideoSource(folder / "a.mp4"), VideoSource(folder / "a.mkv"), VideoSource(folder / "b.mp4")
    member = VideoSource(Path("data/Actor_01.zip"), "Actor_01/x.mp4")
    beside = timeline_paths([a, a2, b, member], TimelineRequest(beside=True))
    assert [str(p) for p, _ in beside] == ["clips/a.mp4.timeline", "clips/a.mkv.timeline", "clips/b.timeline",
                                           "data/x.timeline"]
    assert all(annotated is None for _, annotated in beside)
    chosen = timeline_paths([a, b], TimelineRequest(prefix=Path("out/tl"), annotate=Path("out/v.mkv")))
    assert chosen == [(Path("out/tl-a"), Path("out/v-a.mkv")), (Path("out/tl-b"), Path("out/v-b.mkv"))]
    assert timeline_paths([b], TimelineRequest(beside=True, prefix=Path("p"))) == [(Path("p"), None)]
    assert timeline_paths([b], TimelineRequest()) == [(None, None)]


def test_a_per_video_annotated_copy_never_overwrites_a_video(checkpoint, videos, tmp_path, capsys):
    old = tmp_path / "out-a.mp4"
    old.write_bytes(b"an earlier annotated copy")
    assert main(["predict", str(videos[0]), str(videos[1]), "--checkpoint", str(checkpoint), "--annotate",
                 str(tmp_path / "out.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--annotate {old}: an existing video" in err
    assert old.read_bytes() == b"an earlier annotated copy" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out-a.mp4"]


def test_onnxruntime_with_a_zero_shot_model_is_refused(videos, capsys):
    with pytest.raises(PredictorError, match="the zero-shot models run with torch only"):
        load_predictor(model="zero-shot", backend="onnxruntime")
    assert main(["predict", str(videos[0]), "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backend onnxruntime runs exported checkpoints" in err
