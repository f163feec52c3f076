"""Every person in the video (``--faces all``): tracks with the right spans and each one's emotion, on synthetic
scenes and on two real faces side by side; no face, one face, faces too small; records, files, CLI and serve."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

import emovid.cli
import emovid.people
from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.data.video import open_video
from emovid.faces.detection import Face
from emovid.faces.geometry import FaceGeometry, cut_face
from emovid.faces.haar import HaarDetector
from emovid.people import people_analysis
from emovid.predict import predict_records
from emovid.predictor import Predictor
from emovid.records import csv_text, face_rows
from emovid.serve.app import create_app
from emovid.synthetic.clip import ClipFormat
from emovid.synthetic.scene import Person, Scene, write_scene
from emovid.timeline import TimelineRequest
from videos import make_video

FMT = ClipFormat(width=320, height=180, fps=5.0, num_frames=30)  # 6 s
PEOPLE = (
    Person(actor=1, emotion=3, x=0.2),  # happy, all along
    Person(actor=2, emotion=4, x=0.5, enter=1.0, leave=4.0),  # sad, from 1 s to 4 s
    Person(actor=14, emotion=5, x=0.8, leave=2.0, back=(4.0, 6.0)),  # angry, away from 2 s to 4 s
)
CLASSES = ("happy", "sad", "angry")  # the people's emotions, in their order
SPEC = InferenceSpec(model_args={"name": "skin"}, class_names=CLASSES, frames=4,
                     resize={"mode": "intelligent", "size": 16, "short_side": 16}, crop="face", mean=(0, 0, 0),
                     std=(1, 1, 1), clip_seconds=1.0)


class Skin(nn.Module):
    """A frame-level model that knows each person by the mean colour of their face crop: p(class k) grows as the
    crop's colour nears person k's, so a crop of person k is called person k's emotion."""

    frame_pooling = "probabilities"

    def __init__(self, colours: np.ndarray) -> None:
        super().__init__()
        self.colours = torch.tensor(colours, dtype=torch.float32)  # (K, 3) in [0, 1]
        self.frames = 0

    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        self.frames += len(frames)
        return torch.softmax(-50 * torch.cdist(frames.mean(dim=(2, 3)), self.colours), dim=1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.frame_scores(clips.flatten(0, 1)).unflatten(0, clips.shape[:2]).mean(dim=1).log()


def skin_predictor(scene: Scene) -> Predictor:
    """The :class:`Skin` model of a scene's people, from their true boxes on a few frames."""
    colours = []
    for truth in scene.truth():
        crops = [cut_face(cv2.cvtColor(scene.frame(i), cv2.COLOR_BGR2RGB), Face(box, 1.0), FaceGeometry(), 16)
                 for i, box in list(truth.boxes.items())[::5]]
        colours.append(np.mean([c.reshape(-1, 3).mean(axis=0) / 255 for c in crops], axis=0))
    return Predictor(Skin(np.array(colours)), SPEC)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene.build(PEOPLE, FMT, seed=0)


@pytest.fixture(scope="module")
def scene_video(scene: Scene, tmp_path_factory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("people") / "scene.mp4"
    return path, write_scene(path, scene)


@pytest.fixture
def haar(monkeypatch) -> None:
    """The Haar cascade as the default detector: it finds the synthetic faces, and needs no weights."""
    monkeypatch.setattr(emovid.people, "default_detectors", lambda: (HaarDetector(),))


def test_every_person_gets_a_track_with_the_right_span_and_emotion(scene, scene_video, haar):
    path, truth = scene_video
    predictor = skin_predictor(scene)
    analysis = people_analysis(path, predictor)
    assert len(analysis.people) == 3 and [p.track for p in analysis.people] == [1, 2, 3]
    step = 1 / FMT.fps
    slack = 2 * 3 * step  # detection on every 3rd sampled frame; one may miss
    for person, true in zip(PEOPLE, truth, strict=True):
        # the person's track: the one whose median box holds the person's true centre at its middle frame
        frame, box = sorted(true.boxes.items())[len(true.boxes) // 2]
        cx = (box[0] + box[2]) / 2 / FMT.width
        (track,) = [p for p in analysis.people if p.box[0] < cx < p.box[2]]
        assert track.first_seen == pytest.approx(true.first_seen, abs=slack)
        assert track.last_seen == pytest.approx(true.last_seen, abs=slack)
        truth_seconds = sum(b - a + step for a, b in true.spans)
        assert track.seconds_visible == pytest.approx(truth_seconds, abs=len(true.spans) * slack)
        assert CLASSES[int(np.argmax(track.clip))] == CLASSES[PEOPLE.index(person)]
        assert (track.probabilities.argmax(axis=1) == PEOPLE.index(person)).all()  # in every window too
        # scored only where the person is in the frame, each sampled frame once
        assert all(true.spans[0][0] - slack <= t <= true.spans[-1][1] + slack for t in track.frames.times)
        assert len(set(track.frames.indices.tolist())) == len(track.frames.indices)
    # Person 3 leaves for 2 s and comes back to the same place: one track, with no scores while away.
    away = next(p for p in analysis.people if p.box[0] > 0.6)
    assert not ((away.frames.times > 2.0 + step) & (away.frames.times < 4.0 - step)).any()
    assert analysis.main == next(p.track for p in analysis.people if p.box[2] < 0.35)  # there all along
    # Every face cut once per sampled frame it is in, never more: the scores are shared out, not recomputed.
    assert predictor.model.frames == sum(len(p.frames.indices) for p in analysis.people) + analysis.dropped


def test_records_csv_json_timeline_png_and_annotated_copy(scene, scene_video, haar, tmp_path):
    path, _ = scene_video
    predictor = skin_predictor(scene)
    (record,) = predict_records([str(path)], predictor, TimelineRequest(prefix=tmp_path / "tl",
                                                                         annotate=tmp_path / "boxes.mp4"),
                                faces="all")
    assert [f["track"] for f in record["faces"]] == [1, 2, 3]
    assert sorted(f["emotion"] for f in record["faces"]) == sorted(CLASSES)
    main = next(f for f in record["faces"] if f["track"] == record["main_track"])
    assert record["emotion"] == main["emotion"] == "happy" and record["face_found"] is True
    for face in record["faces"]:
        assert set(face) == {"track", "first_seen", "last_seen", "seconds_visible", "box", "emotion", "probability",
                             "probabilities", "face_found_frames"}
        assert 0 < face["face_found_frames"] <= 30 and len(face["box"]) == 4
    assert {w["track"] for w in record["windows"]} == {1, 2, 3}
    # JSON round trip, and the CSV: one row per person, its emotion and probabilities.
    assert json.loads(json.dumps(record)) == record
    rows = list(csv.DictReader(io.StringIO(csv_text(face_rows([record]), CLASSES))))
    assert [int(r["track"]) for r in rows] == [1, 2, 3]
    for row, face in zip(rows, record["faces"], strict=True):
        assert row["emotion"] == face["emotion"] and float(row[face["emotion"]]) == face["probability"]
        assert json.loads(row["box"]) == face["box"]
    # The timeline files: windows and frames with a track, one PNG; the copy with every face drawn.
    windows = list(csv.DictReader(io.StringIO((tmp_path / "tl.csv").read_text())))
    assert {int(w["track"]) for w in windows} == {1, 2, 3} and len(windows) == len(record["windows"])
    saved = json.loads((tmp_path / "tl.json").read_text())
    assert saved["faces"] == record["faces"] and {f["track"] for f in saved["frames"]} == {1, 2, 3}
    assert (tmp_path / "tl.png").stat().st_size > 0
    with open_video(path) as original, open_video(tmp_path / "boxes.mp4") as copy:
        assert copy.info.num_frames == original.info.num_frames
        plain, drawn = original.frames_at([12])[0], copy.frames_at([12])[0]
    assert np.abs(drawn.astype(int) - plain).max() > 100  # boxes and labels drawn


def test_one_face_is_one_track_and_the_main_one(haar, tmp_path):
    scene = Scene.build([Person(actor=2, emotion=4, x=0.5)], FMT, seed=1)
    write_scene(tmp_path / "one.mp4", scene)
    analysis = people_analysis(tmp_path / "one.mp4", Predictor(Skin(np.eye(3)[:1] * 0.7 + 0.1), SPEC))
    assert len(analysis.people) == 1 and analysis.main == 1
    assert analysis.people[0].first_seen < 0.7 and analysis.people[0].last_seen > 5.0


@pytest.mark.parametrize("size", [None, 0.03], ids=["no face", "faces smaller than the detector's minimum"])
def test_no_face_is_a_clear_answer(haar, tmp_path, size):
    if size is None:
        path = make_video(tmp_path / "none.mp4", num_frames=20, width=160, height=96, fps=10, bframes=False,
                          frame_fn=lambda i, w, h: np.full((h, w, 3), 90, np.uint8))
    else:
        path = tmp_path / "small.mp4"
        write_scene(path, Scene.build([Person(1, 3, x=0.3, size=size), Person(2, 4, x=0.7, size=size)], FMT))
    predictor = Predictor(Skin(np.full((3, 3), 0.5)), SPEC)
    (record,) = predict_records([str(path)], predictor, faces="all")
    assert record["faces"] == [] and record["emotion"] is None and record["main_track"] is None
    assert record["face_found"] is False and any(w.startswith("no face found") for w in record["warnings"])
    assert predictor.model.frames == 0
    (row,) = list(csv.DictReader(io.StringIO(csv_text(face_rows([record]), CLASSES))))
    assert row["track"] == "" and row["file"] == str(path)
    (record,) = predict_records([str(path)], predictor, TimelineRequest(prefix=tmp_path / "tl"), faces="all")
    assert record["windows"] == [] and (tmp_path / "tl.png").exists()


class WholeClips(nn.Module):
    """A clip-level model: no frame scores."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(clips), 3)


def test_models_that_cannot_score_each_face_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    path = make_video(tmp_path / "v.mp4", num_frames=10)
    with pytest.raises(ValueError, match="--faces all needs a frame-level model"):
        predict_records([str(path)], Predictor(WholeClips(), SPEC), faces="all")
    with pytest.raises(ValueError, match="--faces all needs a model that looks at faces"):
        predict_records([str(path)], Predictor(Skin(np.eye(3)), InferenceSpec(**{**SPEC.__dict__, "crop": "center"})),
                        faces="all")
    monkeypatch.setattr(emovid.cli, "_load_predictor", lambda args: Predictor(WholeClips(), SPEC))
    assert main(["predict", str(path), "--faces", "all"]) != 0
    err = capsys.readouterr().err.strip()
    assert "--faces all" in err and len(err.splitlines()) == 1


def test_two_real_faces_side_by_side_each_get_their_own_answer(user_weights, tmp_path):
    """A real face and a synthetic actor side by side: each track's answer is that clip's on its own."""
    from emovid.analysis import analyse_video
    from emovid.synthetic import SynthConfig, generate_dataset, read_meta
    from emovid.weights.files import FACEAPI_WEIGHTS, FACEX_WEIGHTS, FER_WEIGHTS, MTCNN_WEIGHTS
    from emovid.zero_shot import zero_shot_predictor
    from test_faces import astronaut_scene

    user_weights(FER_WEIGHTS, *FACEAPI_WEIGHTS, FACEX_WEIGHTS, *MTCNN_WEIGHTS)
    zero_shot = Predictor(*zero_shot_predictor(frames=8))
    generate_dataset(tmp_path / "synthetic", SynthConfig(actors=(1,), width=320, height=240, seconds=3.0,
                                                         modalities=(2,), emotions=(3,), limit=1),
                     workers=1, progress=False)
    with open_video(tmp_path / "synthetic" / read_meta(tmp_path / "synthetic")[0]["file"]) as reader:
        acted = reader.frames_at(range(24, 84))  # 2 s from 0.8 s in: past the neutral start, the smile on
    frames = [np.stack([astronaut_scene(320, 240, (20 + i, 10 + i // 2), 0.6)[0] for i in range(60)]), acted]
    clips = [make_video(tmp_path / f"{name}.mp4", num_frames=60, width=320, height=240, fps=30, bframes=False,
                        frame_fn=lambda i, w, h, k=k: frames[k][i]) for k, name in enumerate(("astronaut", "actor"))]
    both = make_video(tmp_path / "both.mp4", num_frames=60, width=640, height=240, fps=30, bframes=False,
                      frame_fn=lambda i, w, h: np.concatenate([frames[0][i], frames[1][i]], axis=1))
    analysis = people_analysis(both, zero_shot)
    assert len(analysis.people) == 2
    for clip, person in zip(clips, sorted(analysis.people, key=lambda p: p.box[0]), strict=True):
        alone = analyse_video(clip, zero_shot)
        assert person.clip.argmax() == alone.clip.argmax(), (clip, person.clip, alone.clip)
        assert np.abs(person.clip - alone.clip).max() < 0.1, (clip, person.clip, alone.clip)


def test_serve_faces_all_gives_every_person_with_a_thumbnail(scene, scene_video, haar):
    path, _ = scene_video
    client = TestClient(create_app(skin_predictor(scene)), base_url="http://127.0.0.1")
    assert client.get("/v1/models").json()["faces"] == ["main", "all"]
    with open(path, "rb") as f:
        answer = client.post("/v1/predict", params={"faces": "all", "timeline": 1},
                             files={"file": ("scene.mp4", f, "video/mp4")})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["file"] == "scene.mp4" and [f["track"] for f in record["faces"]] == [1, 2, 3]
    assert {w["track"] for w in record["windows"]} == {1, 2, 3}
    for face in record["faces"]:
        assert face["thumbnail"].startswith("data:image/jpeg;base64,")
    clips_only = TestClient(create_app(Predictor(WholeClips(), SPEC)), base_url="http://127.0.0.1")
    assert clips_only.get("/v1/models").json()["faces"] == ["main"]
    with open(path, "rb") as f:
        refused = clips_only.post("/v1/predict", params={"faces": "all"}, files={"file": ("scene.mp4", f)})
    assert refused.status_code == 422 and "faces=all" in refused.json()["error"]


def test_the_page_shows_a_lane_per_person_with_their_face(scene, scene_video, haar):
    from test_serve import browser_page, holds, live_server

    path, _ = scene_video
    with live_server(create_app(skin_predictor(scene))) as url, browser_page(url) as (page, problems):
        page.goto(url)
        holds(page, "document.getElementById('model').textContent.includes('skin')")
        page.check("#every-face")
        page.set_input_files("#file", str(path))
        page.wait_for_selector("#result:not([hidden])", timeout=20_000)
        assert page.text_content("#top-emotion") == "happy"  # the main person's: there all along
        assert page.locator("#people .person").count() == 3
        assert page.locator("#people img").evaluate_all("images => images.every((i) => i.src.startsWith('data:'))")
        assert "happy" in page.locator("#people .person", has_text="(main)").inner_text()
        holds(page, "[...document.querySelectorAll('canvas.lane')].every((c) => Number(c.dataset.windows) > 0)")
        assert problems == []


def test_the_cli_prints_a_row_per_person_and_writes_them_as_csv(scene, scene_video, haar, monkeypatch, capsys,
                                                                 tmp_path):
    path, _ = scene_video
    monkeypatch.setattr(emovid.cli, "_load_predictor", lambda args: skin_predictor(scene))
    assert main(["predict", str(path), "--faces", "all", "--csv", str(tmp_path / "people.csv")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["file", "person"] and len(table) == 4
    assert sum("*" in line for line in table[1:]) == 1  # the main person
    rows = list(csv.DictReader((tmp_path / "people.csv").open()))
    assert [r["track"] for r in rows] == ["1", "2", "3"] and {r["emotion"] for r in rows} == set(CLASSES)
