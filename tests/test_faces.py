"""Face-aware cropping: real faces at known places, the no-face fallback, synthetic ground truth, real RAVDESS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from emovid.cli import main
from emovid.data.cache import ClipCache, PrepareSettings, prepare
from emovid.data.video import Resize, intelligent_geometry, read_clip
from emovid.datasets.ravdess import scan
from emovid.faces import Face, crop_to_face
from emovid.models import create_model
from emovid.synthetic.generate import read_meta
from emovid.training import build_spec
from emovid.weights.files import MTCNN_WEIGHTS
from videos import make_video

# scikit-image's astronaut (tests/data/astronaut.jpg, 256 px), brought back to its original 512 px.
ASTRONAUT = cv2.resize(cv2.imread(str(Path(__file__).parent / "data" / "astronaut.jpg"))[..., ::-1], (512, 512),
                       interpolation=cv2.INTER_CUBIC)
ASTRONAUT_FACE = (180, 65, 265, 170)  # hand-labelled in the 512 px astronaut: brow to chin, cheek to cheek
HEAD = (80, 0, 380, 300)  # the head-and-shoulders part pasted into scenes (x0, y0, x1, y1)


def astronaut_scene(width: int, height: int, at: tuple[int, int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """An RGB frame with the astronaut's head pasted at ``at``, and the true face box (x0, y0, x1, y1) in it."""
    x0, y0, x1, y1 = HEAD
    head = cv2.resize(ASTRONAUT[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ramp = np.linspace(40, 200, width, dtype=np.uint8)
    frame = np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 90, np.uint8),
                      np.tile(ramp[::-1], (height, 1))], axis=-1)
    left, top = at
    frame[top : top + head.shape[0], left : left + head.shape[1]] = head
    face = (np.array(ASTRONAUT_FACE, float) - [x0, y0, x0, y0]) * scale + [left, top, left, top]
    return frame, face


def centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def contains(outer, inner, slack: float = 0.0) -> bool:
    return (outer[0] <= inner[0] + slack and outer[1] <= inner[1] + slack and outer[2] >= inner[2] - slack
            and outer[3] >= inner[3] - slack)


@pytest.mark.parametrize(
    "width,height,at,scale",
    [(640, 360, (330, 30), 1.0), (640, 360, (0, 0), 1.2), (480, 640, (100, 300), 1.0), (1280, 720, (620, 80), 2.0)],
)
def test_crop_lands_on_a_real_face(width, height, at, scale, user_weights):
    user_weights(*MTCNN_WEIGHTS)  # Haar alone misses the astronaut's face in some of these scenes
    frame, face = astronaut_scene(width, height, at, scale)
    clip = np.stack([frame] * 3)
    out, meta = crop_to_face(clip, 64, fallback=(0, 0, 10, 10))
    assert out.shape == (3, 64, 64, 3) and meta["face_found"] is True
    crop = np.array(meta["crop_box"]) * [width, height, width, height]
    face_side = face[2] - face[0]
    assert np.linalg.norm(centre(crop) - centre(face)) < 0.12 * face_side
    assert contains(crop, face, slack=0.05 * face_side)
    assert crop[2] - crop[0] < 2.2 * face_side  # a face crop, not the whole frame


def test_face_crop_through_a_video(tmp_path):
    def moving_scene(i, width, height):
        return astronaut_scene(width, height, (300 + 2 * i, 40), 1.0)[0]

    path = make_video(tmp_path / "astro.mp4", num_frames=20, width=640, height=360, frame_fn=moving_scene)
    clip = read_clip(path, 6, Resize("intelligent", 64, 72), crop="face")
    assert clip.frames.shape == (6, 3, 64, 64) and clip.meta["crop"] == "face"
    assert clip.meta["face_found"] is True and clip.meta["face_detections"] == "6/6"
    true = np.mean([astronaut_scene(640, 360, (300 + 2 * i, 40), 1.0)[1] for i in clip.meta["indices"]], axis=0)
    crop = np.array(clip.meta["crop_box"]) * [640, 360, 640, 360]
    assert np.linalg.norm(centre(crop) - centre(true)) < 0.12 * (true[2] - true[0])


def test_no_face_falls_back_to_the_centre_crop(tmp_path):
    path = make_video(tmp_path / "pattern.mp4", num_frames=12, width=320, height=180, bframes=False)
    resize = Resize("intelligent", 48, 54)
    face = read_clip(path, 4, resize, crop="face")
    center = read_clip(path, 4, resize)
    assert face.meta["face_found"] is False and face.meta["face_box"] is None and face.meta["face_detections"] == "0/4"
    assert center.meta["crop"] == "center" and "face_found" not in center.meta
    # The fallback is the centre crop, made from the working-size frames rather than in one swscale pass.
    assert face.frames.shape == center.frames.shape
    assert np.abs(face.frames.astype(int) - center.frames).mean() < 6
    blank = make_video(tmp_path / "blank.mkv", num_frames=5, width=64, height=48,
                       frame_fn=lambda i, w, h: np.full((h, w, 3), 128, np.uint8))
    assert read_clip(blank, 4, Resize("naive", 32), crop="face").meta["face_found"] is False


class Scripted:
    """A detector that answers from a script: frame i's faces are ``answers[grey level of frame i / 10]``."""

    name = "scripted"

    def __init__(self, answers: dict[int, list[tuple[float, ...]]]) -> None:
        self.answers = answers

    def detect(self, frames):
        return [[Face(box, 1.0) for box in self.answers.get(round(f.mean() / 10), [])] for f in frames]


def test_one_stray_detection_neither_makes_nor_moves_the_crop():
    frames = np.stack([np.full((180, 320, 3), 10 * i, np.uint8) for i in range(5)])  # frame i has grey level 10i
    face, stray = (100.0, 40.0, 160.0, 100.0), (10.0, 10.0, 30.0, 30.0)
    _, meta = crop_to_face(frames, 32, (0, 0, 180, 180), detectors=[Scripted({0: [face], 1: [face], 2: [stray],
                                                                              3: [face]})])
    assert meta["face_found"] and meta["face_detections"] == "3/5" and meta["face_detector"] == "scripted"
    assert meta["face_box"] == [round(v / d, 4) for v, d in zip(face, (320, 180, 320, 180), strict=True)]
    _, meta = crop_to_face(frames, 32, (70, 0, 180, 180), detectors=[Scripted({2: [stray]})])
    assert not meta["face_found"] and meta["crop_box"] == [round(70 / 320, 4), 0, round(250 / 320, 4), 1]


def test_the_next_detector_takes_over_where_the_first_finds_nothing():
    frames = np.stack([np.full((180, 320, 3), 10 * i, np.uint8) for i in range(4)])
    face = (100.0, 40.0, 160.0, 100.0)
    _, meta = crop_to_face(frames, 32, (0, 0, 180, 180), detectors=[Scripted({}), Scripted({0: [face], 3: [face]})])
    assert meta["face_found"] and meta["face_detections"] == "2/4"


def test_center_region_is_what_the_geometry_keeps():
    for (w, h), (short, size) in [((1280, 720), (256, 224)), ((720, 1280), (256, 224)), ((64, 48), (36, 32))]:
        g = intelligent_geometry(w, h, short, size)
        scale = w / g.scaled[0]
        left, top, side, _ = Resize("intelligent", size, short).center_region(w, h)
        assert abs(left - g.crop[0] * scale) <= 2 and abs(top - g.crop[1] * scale) <= 2
        assert abs(side - size * scale) <= 1
    assert Resize("naive", 32).center_region(64, 48) == (0, 0, 64, 48)


def test_face_crop_on_synthetic_video_matches_ground_truth(tiny_data):
    records = [r for r in read_meta(tiny_data) if r["statement"] == 1 and r["intensity"] == 1][::2]  # 16 clips
    found = 0
    for record in records:
        clip = read_clip(tiny_data / record["file"], 4, Resize("intelligent", 32, 36), crop="face")
        if not clip.meta["face_found"]:
            continue
        found += 1
        w, h = record["width"], record["height"]
        true = np.mean([record["boxes"][i] for i in clip.meta["indices"]], axis=0)
        crop = np.array(clip.meta["crop_box"]) * [w, h, w, h]
        side = true[2] - true[0]
        assert np.linalg.norm(centre(crop) - centre(true)) < 0.25 * side, record["file"]
        assert contains(crop, true, slack=0.2 * side), record["file"]
    assert found >= 0.8 * len(records), f"a face in only {found} of {len(records)} synthetic clips"


def test_prepare_and_checkpoint_record_the_crop(tiny_data, tmp_path):
    data = tmp_path / "data" / "Actor_01"
    data.mkdir(parents=True)
    for video in sorted((tiny_data / "Actor_01").glob("*.mp4"))[:3]:
        shutil.copy(video, data / video.name)
    settings = PrepareSettings(frames=4, resize=Resize("intelligent", 32, 36), crop="face")
    prepare(scan(tmp_path / "data"), tmp_path / "cache", settings, workers=1, progress=False)
    cache = ClipCache.open(tmp_path / "cache")
    assert cache.settings.crop == "face"
    assert json.loads((tmp_path / "cache" / "cache.json").read_text())["settings"]["crop"] == "face"
    assert all(e["crop"] == "face" and "face_found" in e for e in cache.entries) and len(cache.entries) == 3
    model = create_model("early-fusion-cnn", num_frames=4)
    assert build_spec(model, cache, 4).crop == "face"
    assert main(["prepare", str(tmp_path / "data"), "--out", str(tmp_path / "cli"), "--frames", "4", "--size", "32",
                 "--crop", "face", "--workers", "1"]) == 0
    assert ClipCache.open(tmp_path / "cli").settings.crop == "face"


@pytest.fixture(scope="session")
def ravdess_samples(tmp_path_factory) -> list[Path]:
    """The four original RAVDESS clips (1280x720 H.264 + AAC) inside the pyfame 1.0.10 wheel on PyPI."""
    folder = tmp_path_factory.mktemp("pyfame")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "pyfame==1.0.10", "-d",
                    str(folder)], check=True, capture_output=True, timeout=180)
    wheel = next(folder.glob("pyfame-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        members = sorted(m for m in archive.namelist() if m.startswith("pyfame/data/sample/") and m.endswith(".mp4"))
        archive.extractall(folder, members)
    return [folder / m for m in members]


@pytest.mark.network  # fetches pyfame from PyPI: `pytest -m network`
def test_face_crop_on_real_ravdess_clips(ravdess_samples):
    assert len(ravdess_samples) == 4
    for path in ravdess_samples:
        clip = read_clip(path, 8, Resize("intelligent", 112, 128), crop="face")
        meta = clip.meta
        assert (meta["width"], meta["height"]) == (1280, 720) and clip.frames.shape == (8, 3, 112, 112)
        assert meta["face_found"] is True and meta["face_detections"] == "8/8", path.name
        x0, y0, x1, y1 = meta["face_box"]
        # These RAVDESS clips frame the head in the middle, about half the frame high.
        assert 0.35 < (x0 + x1) / 2 < 0.65 and 0.2 < (y0 + y1) / 2 < 0.6, (path.name, meta["face_box"])
        assert 0.2 < y1 - y0 < 0.7, (path.name, meta["face_box"])  # MTCNN boxes run brow to chin
