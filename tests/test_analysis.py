"""One road from a video to probabilities over time: frames scored once, windows pooled, faces detected every few
frames and tracked between, and the whole-clip answer that a one-clip prediction gives."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import emovid.analysis
from emovid.analysis import analyse_video, frame_analysis, window_analysis
from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.data.video import read_clip, uniform_indices
from emovid.faces import Face, default_detectors
from emovid.inference import InferenceOptions
from emovid.models import create_model
from emovid.predict import predict_records, predict_videos
from emovid.predictor import Predictor
from emovid.timeline import TimelineRequest, sliding_windows
from test_faces import astronaut_scene
from videos import make_video

SPEC = InferenceSpec(model_args={"name": "brightness"}, class_names=("bright", "dark"), frames=4,
                     resize={"mode": "naive", "size": 8, "short_side": 8}, crop="center", mean=(0, 0, 0),
                     std=(1, 1, 1), clip_seconds=1.0)


class Brightness(nn.Module):
    """A frame-level model that calls a frame as bright as it is: p(bright) is its mean pixel in [0, 1].

    It counts the frames it scores and keeps them, so tests can see what it was given.
    """

    frame_pooling = "probabilities"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        self.seen.append(frames)
        bright = frames.mean(dim=(1, 2, 3))
        return torch.stack([bright, 1 - bright], dim=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.frame_scores(clips.flatten(0, 1)).unflatten(0, clips.shape[:2]).mean(dim=1).log()

    @property
    def frames_seen(self) -> int:
        return sum(len(f) for f in self.seen)


def grey_ramp(path, num_frames: int, fps: int = 30):
    """A video whose frame i is grey level 2 * i: brightness that says when it is."""
    return make_video(path, num_frames=num_frames, width=32, height=24, fps=fps, bframes=False,
                      frame_fn=lambda i, w, h: np.full((h, w, 3), 2 * i, np.uint8))


def test_windows_pool_the_frames_inside_them(tmp_path):
    path = grey_ramp(tmp_path / "ramp.mp4", 90)  # 3 s
    model = Brightness()
    analysis = frame_analysis(path, Predictor(model, SPEC), window=1.0, stride=0.5, fps=5)
    frames = analysis.frames
    assert len(frames.indices) == 15 and list(frames.indices) == list(uniform_indices(90, 15))
    np.testing.assert_allclose(frames.times, frames.indices / 30, atol=1e-6)
    np.testing.assert_allclose(frames.probabilities[:, 0], 2 * frames.indices / 255, atol=0.01)  # the ramp
    windows = sliding_windows(90, 30, 1, 1.0, 0.5)
    assert len(analysis.starts) == len(windows) == 5
    np.testing.assert_allclose(analysis.starts, [w.start / 30 for w in windows])
    np.testing.assert_allclose(analysis.ends, [w.end / 30 for w in windows])
    for window, probs, meta in zip(windows, analysis.probabilities, analysis.window_meta, strict=True):
        inside = (frames.indices >= window.start) & (frames.indices < window.end)
        assert meta["frames"] == inside.sum() == 5
        np.testing.assert_allclose(probs, frames.probabilities[inside].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(analysis.clip, frames.probabilities.mean(axis=0), atol=1e-6)
    assert np.all(np.diff(analysis.probabilities[:, 0]) > 0) and analysis.note is None


def test_a_short_clip_is_one_window_of_at_least_one_clips_frames(tmp_path):
    path = grey_ramp(tmp_path / "short.mp4", 12)  # 0.4 s: 2 frames at 5 fps, but a clip has 4
    analysis = frame_analysis(path, Predictor(Brightness(), SPEC), fps=5)
    assert len(analysis.starts) == 1 and (analysis.starts[0], analysis.ends[0]) == (0, pytest.approx(0.4))
    assert list(analysis.frames.indices) == list(uniform_indices(12, SPEC.frames))
    assert "shorter than one window" in analysis.note
    np.testing.assert_allclose(analysis.probabilities[0], analysis.clip)


def test_a_window_between_two_sampled_frames_takes_the_nearest(tmp_path):
    path = grey_ramp(tmp_path / "ramp.mp4", 60)
    analysis = frame_analysis(path, Predictor(Brightness(), SPEC), window=0.1, stride=0.5, fps=1)
    frames = analysis.frames
    assert len(frames.indices) == 4 and all(m["frames"] == 1 for m in analysis.window_meta)
    for start, probs in zip(analysis.starts, analysis.probabilities, strict=True):
        nearest = np.argmin(np.abs(frames.times - (start + 0.05)))
        np.testing.assert_allclose(probs, frames.probabilities[nearest])


def test_each_sampled_frame_is_scored_once(tmp_path):
    path = grey_ramp(tmp_path / "ramp.mp4", 120)  # 4 s: windows of 1 s every 0.25 s overlap four times
    model = Brightness()
    analysis = frame_analysis(path, Predictor(model, SPEC, InferenceOptions(batch_size=1)), window=1.0,
                              stride=0.25, fps=5)
    assert len(analysis.starts) == 13 and model.frames_seen == len(analysis.frames.indices) == 20
    # A batch of one clip holds T=4 frames: each window's run of 5 frames goes in as 4 and 1.
    assert [len(f) for f in model.seen] == [4, 1] * 4
    mirrored = Brightness()
    frame_analysis(path, Predictor(mirrored, SPEC, InferenceOptions(tta=2)), fps=5)
    assert mirrored.frames_seen == 2 * 20  # each frame and its mirror image, once


def test_late_fusion_scores_each_frame_once_and_answers_as_one_clip(tmp_path):
    """Late fusion's clip logits are the mean of its frames', so the new road gives the one-clip answer exactly
    when it samples the same frames: a short clip, or a rate that gives T frames."""
    torch.manual_seed(0)
    model = create_model("late-fusion-resnet18", pretrained=False).eval()
    spec = InferenceSpec(dict(model.emovid_args), tuple("abcdefgh"), 8, {"mode": "intelligent", "size": 32,
                         "short_side": 36}, "center", tuple(model.input_spec.mean), tuple(model.input_spec.std), 3.0)
    predictor = Predictor(model, spec)
    calls: list[int] = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    for name, num_frames, fps in (("short.mp4", 30, 5.0), ("long.mp4", 90, 8 / 3)):
        path = make_video(tmp_path / name, num_frames=num_frames, width=96, height=64)
        one_clip = predictor.probabilities(read_clip(path, 8, predictor.resize, "center").frames[None])[0]
        calls.clear()
        analysis = analyse_video(path, predictor, fps=fps)
        assert analysis.frames is not None and sum(calls) == len(analysis.frames.indices) == 8
        np.testing.assert_allclose(analysis.clip, one_clip, atol=1e-5)
        (prediction,) = predict_videos([path], predictor, fps=fps)
        np.testing.assert_allclose(prediction.probabilities, one_clip, atol=1e-5)
        assert prediction.meta["frames"] == 8
        (plain,) = predict_videos([path], predictor)  # without a rate: the spec's T frames, as one clip
        np.testing.assert_allclose(plain.probabilities, one_clip, atol=1e-5)


def astronaut_video(path, num_frames: int = 24, fps: int = 12):
    """A real face (tests/data/astronaut.jpg) drifting across a 320x240 frame."""
    return make_video(path, num_frames=num_frames, width=320, height=240, fps=fps, bframes=False,
                      frame_fn=lambda i, w, h: astronaut_scene(w, h, (20 + 2 * i, 10 + i), 0.6)[0])


def test_late_fusion_on_face_crops_answers_as_one_clip(tmp_path):
    torch.manual_seed(0)
    model = create_model("late-fusion-resnet18", pretrained=False).eval()
    spec = InferenceSpec(dict(model.emovid_args), tuple("abcdefgh"), 8, {"mode": "intelligent", "size": 32,
                         "short_side": 36}, "face", tuple(model.input_spec.mean), tuple(model.input_spec.std), 3.0)
    predictor = Predictor(model, spec)
    path = astronaut_video(tmp_path / "astronaut.mp4")
    clip = read_clip(path, 8, predictor.resize, "face")
    analysis = frame_analysis(path, predictor, fps=1, detect_every=1, detectors=default_detectors())
    np.testing.assert_allclose(analysis.clip, predictor.probabilities(clip.frames[None])[0], atol=1e-5)
    assert analysis.clip_meta["face_found"] is clip.meta["face_found"] is True
    np.testing.assert_allclose(analysis.clip_meta["face_box"], clip.meta["face_box"], atol=2e-4)


def test_zero_shot_whole_clip_answer_is_the_one_clip_answer(user_weights, tmp_path):
    """On a real face and a synthetic one, 5 frames a second with detection on every third at the detector's
    smallest size give the one-clip prediction's answer."""
    from emovid.synthetic import SynthConfig, generate_dataset, read_meta
    from emovid.weights.files import FACEAPI_WEIGHTS, FACEX_WEIGHTS, FER_WEIGHTS, MTCNN_WEIGHTS
    from emovid.zero_shot import zero_shot_predictor

    user_weights(FER_WEIGHTS, *FACEAPI_WEIGHTS, FACEX_WEIGHTS, *MTCNN_WEIGHTS)
    zero_shot = Predictor(*zero_shot_predictor(frames=8))
    synthetic = tmp_path / "synthetic"
    generate_dataset(synthetic, SynthConfig(actors=(1,), width=320, height=240, seconds=2.0, modalities=(2,), limit=1),
                     workers=1, progress=False)
    spec = zero_shot.spec
    for path in (astronaut_video(tmp_path / "astronaut.mp4"), synthetic / read_meta(synthetic)[0]["file"]):
        clip = read_clip(path, spec.frames, zero_shot.resize, spec.crop, zero_shot.face_geometry)
        one_clip = zero_shot.probabilities(clip.frames[None])[0]
        analysis = analyse_video(path, zero_shot)
        assert analysis.clip_meta["face_found"] is clip.meta["face_found"] is True, path
        assert analysis.clip.argmax() == one_clip.argmax(), (path, analysis.clip, one_clip)
        assert np.abs(analysis.clip - one_clip).max() < 0.05, (path, analysis.clip, one_clip)


class SquareFinder:
    """A detector of the bright square that stands for a face; it counts the frames it is shown."""

    name = "square"

    def __init__(self) -> None:
        self.frames = 0

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        self.frames += len(frames)
        found = []
        for frame in frames:
            ys, xs = np.nonzero(frame[..., 0] > 160)
            found.append([Face((xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0), 0.99)] if len(xs) else [])
        return found


def square_video(path, num_frames: int, appears: int = 0):
    """Frame i shows a 32 px white square at x = 20 + i (from frame ``appears``) on a dark grey ground."""
    def frame(i: int, w: int, h: int) -> np.ndarray:
        image = np.full((h, w, 3), 40, np.uint8)
        if i >= appears:
            image[32:64, 20 + i : 52 + i] = 255
        return image

    return make_video(path, num_frames=num_frames, width=320, height=96, fps=30, bframes=False, frame_fn=frame)


FACE_SPEC = InferenceSpec(model_args={"name": "brightness"}, class_names=("bright", "dark"), frames=4,
                          resize={"mode": "intelligent", "size": 16, "short_side": 16}, crop="face", mean=(0, 0, 0),
                          std=(1, 1, 1), clip_seconds=1.0)


def test_detection_on_every_kth_frame_and_the_track_carries_the_box(tmp_path):
    path = square_video(tmp_path / "square.mp4", 90)
    finder, model = SquareFinder(), Brightness()
    analysis = frame_analysis(path, Predictor(model, FACE_SPEC), fps=10, detect_every=3, detectors=[finder])
    frames = analysis.frames
    detected = np.flatnonzero(frames.detected)
    assert len(frames.indices) == 30 and finder.frames == len(detected)
    assert len(detected) <= math.ceil(30 / 3) + 3 and detected[0] == 0 and detected[-1] == 29  # +1 per run of frames
    assert frames.face_found.all() and analysis.clip_meta["face_frames"] == "30/30"
    # Between detections the carried box follows the moving square, and each crop is centred on it.
    truth = np.array([[20 + i, 32, 52 + i, 64] for i in frames.indices])
    np.testing.assert_allclose(frames.boxes * [320, 96, 320, 96], truth, atol=1.5)
    crops = torch.cat(model.seen)  # (30, 3, 16, 16) in [0, 1]
    assert crops[:, :, 6:10, 6:10].min() > 0.9 and crops[:, :, 0, 0].max() < 0.3


def test_faces_found_per_frame_are_reported(tmp_path, monkeypatch):
    path = square_video(tmp_path / "late.mp4", 90, appears=45)
    analysis = frame_analysis(path, Predictor(Brightness(), FACE_SPEC), window=1.0, stride=0.5, fps=5,
                              detect_every=1, detectors=[SquareFinder()])
    frames = analysis.frames
    assert list(frames.face_found) == list(frames.indices >= 45)
    assert np.isnan(frames.boxes[~frames.face_found]).all() and not np.isnan(frames.boxes[frames.face_found]).any()
    assert [m["face_found"] for m in analysis.window_meta] == [False, False, True, True, True]
    assert analysis.clip_meta["face_found"] is True and analysis.clip_meta["face_frames"] == "8/15"
    # The same through predict: records, and the timeline files' frame rows.
    monkeypatch.setattr(emovid.analysis, "default_detectors", lambda: (SquareFinder(),))
    (record,) = predict_records([str(path)], Predictor(Brightness(), FACE_SPEC),
                                TimelineRequest(1.0, 0.5, prefix=tmp_path / "tl"), fps=5)
    assert record["face_found"] is True and [w["face_found"] for w in record["windows"]] == [False] * 2 + [True] * 3
    rows = json.loads((tmp_path / "tl.json").read_text())["frames"]
    assert len(rows) == 15 and [r["face_found"] for r in rows] == list(frames.indices >= 45)
    assert rows[0]["time"] == pytest.approx(frames.times[0], abs=1e-4) and rows[0]["emotion"] == "dark"


def test_no_face_anywhere_is_the_centre_crop_and_said_so(tmp_path):
    path = square_video(tmp_path / "none.mp4", 30, appears=99)
    model = Brightness()
    analysis = frame_analysis(path, Predictor(model, FACE_SPEC), fps=5, detectors=[SquareFinder()])
    assert not analysis.frames.face_found.any() and analysis.clip_meta["face_found"] is False
    assert analysis.clip_meta["face_box"] is None and torch.cat(model.seen).shape[1:] == (3, 16, 16)


def test_clip_level_models_keep_their_windows(tmp_path):
    """A model without frame scores sees each window as a clip of T frames; the clip answer is the windows' mean."""

    class Clips(nn.Module):
        def forward(self, clips: torch.Tensor) -> torch.Tensor:
            return Brightness()(clips)

    path = grey_ramp(tmp_path / "ramp.mp4", 90)
    predictor = Predictor(Clips(), SPEC)
    assert predictor.frame_kind is None
    analysis = analyse_video(path, predictor, window=1.0, stride=0.5)
    assert analysis.frames is None and len(analysis.starts) == 5
    np.testing.assert_allclose(analysis.clip, analysis.probabilities.mean(axis=0))
    same = window_analysis(path, predictor, window=1.0, stride=0.5)
    np.testing.assert_allclose(same.probabilities, analysis.probabilities)


def test_fps_must_be_positive_and_is_for_timelines(capsys, tmp_path):
    assert main(["predict", str(tmp_path / "any.mp4"), "--timeline", "--fps", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith("--fps must be > 0, got 0")
    assert main(["predict", str(tmp_path / "any.mp4"), "--fps", "2"]) == 2
    assert "add --timeline" in capsys.readouterr().err
