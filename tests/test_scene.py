"""The synthetic multi-person scene: people where and when they should be, with exact ground truth; and Haar plus
person tracks on it, against that ground truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emovid.data.video import open_video
from emovid.faces.haar import HaarDetector
from emovid.faces.mtcnn import MtcnnDetector
from emovid.faces.track import iou
from emovid.faces.tracks import MAX_GAP, main_track, person_tracks
from emovid.synthetic.clip import ClipFormat
from emovid.synthetic.face import face_box
from emovid.synthetic.motion import ACTIONS
from emovid.synthetic.scene import PERFORMANCE_SECONDS, Person, Scene, write_scene
from emovid.weights.files import MTCNN_WEIGHTS

FMT = ClipFormat(width=320, height=180, fps=5.0, num_frames=30)  # 6 s
PEOPLE = (
    Person(actor=1, emotion=3, x=0.2, enter=0.0, leave=6.0),  # happy, all along
    Person(actor=2, emotion=4, x=0.5, enter=1.0, leave=4.0),  # sad, from 1 s to 4 s
    Person(actor=14, emotion=5, x=0.8, enter=0.0, leave=2.0, back=(4.0, 6.0)),  # angry, away from 2 s to 4 s
)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene.build(PEOPLE, FMT, seed=0)


def test_people_are_in_the_frame_only_in_their_intervals(scene: Scene) -> None:
    visible = [sorted(scene.boxes(i)) for i in range(FMT.num_frames)]
    assert visible[0] == [0, 2] and visible[5] == [0, 1, 2] and visible[10] == [0, 1]
    assert visible[19] == [0, 1] and visible[20] == [0, 2] and visible[29] == [0, 2]
    assert [t.spans for t in scene.truth()] == [((0.0, 5.8),), ((1.0, 3.8),), ((0.0, 1.8), (4.0, 5.8))]


def test_an_absent_person_leaves_the_background(scene: Scene) -> None:
    without = Scene.build(PEOPLE[:2], FMT, seed=0)  # everything else the same
    assert np.array_equal(scene.frame(12), without.frame(12))  # 2.4 s: person 2 is away
    assert not np.array_equal(scene.frame(5), without.frame(5))
    nobody = Scene.build([replace(PEOPLE[1], enter=5.0, leave=6.0)], FMT)
    assert np.array_equal(nobody.frame(3, noise=False), nobody.look.background)
    assert not np.array_equal(nobody.frame(27, noise=False), nobody.look.background)


def test_truth_boxes_are_the_drawn_faces(scene: Scene) -> None:
    # Skin a colour nothing else has, in flat light: each face oval is the pixels of its colour, inside its box.
    colours = [(0.0, 255.0, 0.0), (255.0, 0.0, 255.0), (255.0, 255.0, 0.0)]
    painted = replace(
        scene,
        identities=tuple(replace(p, skin=c) for p, c in zip(scene.identities, colours, strict=True)),
        look=replace(scene.look, light=np.ones(3), side_light=0.0),
    )
    for i in (0, 7, 24):
        frame = painted.frame(i, noise=False)
        for k, box in painted.boxes(i).items():
            assert box == face_box(painted.identities[k], painted.state(k, i), FMT.width, FMT.height)
            ys, xs = np.nonzero(np.all(frame == colours[k], axis=2))
            x0, y0, x1, y1 = box
            assert len(xs) > 0.2 * (x1 - x0) * (y1 - y0)
            assert np.all((xs + 1 > x0) & (xs < x1) & (ys + 1 > y0) & (ys < y1))


def test_the_expression_holds_past_the_performance_and_the_head_moves_on(scene: Scene) -> None:
    motion = scene.motions[0]
    late = [scene.state(0, i) for i in range(round(PERFORMANCE_SECONDS * FMT.fps), FMT.num_frames)]
    apex = motion.state(motion.apex_frame)
    assert all(getattr(s, a) == getattr(apex, a) for s in late for a in ACTIONS)
    assert late[0].smile > 0.3  # happy
    xs = np.array([scene.state(0, i).x for i in range(FMT.num_frames)])
    assert np.ptp(xs) > 0 and np.max(np.abs(np.diff(xs))) < 0.02  # moving, never jumping
    assert xs[0] == PEOPLE[0].x


def test_a_scene_is_a_function_of_its_seed(scene: Scene) -> None:
    assert np.array_equal(Scene.build(PEOPLE, FMT, seed=0).frame(9), scene.frame(9))
    assert not np.array_equal(Scene.build(PEOPLE, FMT, seed=1).frame(9), scene.frame(9))


@pytest.mark.parametrize(
    "fields",
    [{"actor": 25}, {"emotion": 9}, {"x": 1.2}, {"size": 0.6}, {"enter": 3.0, "leave": 2.0},
     {"leave": 2.0, "back": (1.0, 3.0)}],
)
def test_bad_people_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError, match="must"):
        Person(**{"actor": 1, "emotion": 3, "x": 0.5, **fields})


def _tracks_against_truth(path: Path, detector, scene: Scene, every: int = 1) -> None:
    """Detect on every ``every``-th frame of the written scene, track, and compare with the ground truth."""
    truth = write_scene(path, scene)
    with open_video(path) as video:
        assert video.info.num_frames == FMT.num_frames
        frames = video.frames_at(range(FMT.num_frames))  # RGB
    times = [i / FMT.fps for i in range(FMT.num_frames)]
    detections = [faces if i % every == 0 else [] for i, faces in enumerate(detector.detect(list(frames)))]
    # The gap limit spans three detection intervals, so two missed detections in a row keep a person's segment.
    tracks, _ = person_tracks(detections, times, max_gap=max(MAX_GAP, 3 * every / FMT.fps))
    assert len(tracks) == len(PEOPLE)
    assert [t.track for t in tracks] == [1, 2, 3] and tracks[2].first_seen == pytest.approx(1.0, abs=every * 0.2)
    step = 1 / FMT.fps
    slack = 2 * every * step  # a person appears or leaves between two detected frames, and one may be missed
    for person in truth:
        # the person's track: the one whose boxes overlap the person's true boxes
        overlap = [np.mean([iou(f.box, person.boxes.get(i, (0, 0, 0, 0))) for i, f in t.observations.items()])
                   for t in tracks]
        track = tracks[int(np.argmax(overlap))]
        assert max(overlap) > 0.5
        assert track.first_seen == pytest.approx(person.first_seen, abs=slack)
        assert track.last_seen == pytest.approx(person.last_seen, abs=slack)
        assert len(track.segments) == len(person.spans)
        truth_seconds = sum(b - a + step for a, b in person.spans)
        assert track.seconds_visible == pytest.approx(truth_seconds, abs=len(person.spans) * slack)
    assert main_track(tracks).median_box[0] < FMT.width / 3  # the first person, there all along


@pytest.mark.parametrize("every", [1, 3], ids=["every frame", "every 3rd frame"])
def test_haar_tracks_every_person_of_a_scene(scene: Scene, tmp_path: Path, every: int) -> None:
    _tracks_against_truth(tmp_path / "scene.mp4", HaarDetector(), scene, every)


def test_mtcnn_tracks_every_person_of_a_scene(scene: Scene, tmp_path: Path, user_weights) -> None:
    user_weights(*MTCNN_WEIGHTS)
    _tracks_against_truth(tmp_path / "scene.mp4", MtcnnDetector(), scene)
