"""Per-person tracks over a whole video on synthetic detections: motion, gaps, re-linking, dropping, the main face."""

from __future__ import annotations

import numpy as np
import pytest

from emovid.faces.detection import Face
from emovid.faces.track import face_track, link
from emovid.faces.tracks import MIN_SECONDS, main_track, person_tracks

FACE = (100.0, 50.0, 160.0, 120.0)  # 60 x 70


def face(box, score: float = 0.99) -> Face:
    """A face whose landmarks sit at fixed fractions of its box, so they move with it."""
    x0, y0, x1, y1 = box
    fractions = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    points = (np.array([x0, y0]) + fractions * [x1 - x0, y1 - y0]).astype(np.float32)
    return Face(tuple(map(float, box)), score, points)


def shifted(box, dx: float = 0.0, dy: float = 0.0, scale: float = 1.0):
    cx, cy = (box[0] + box[2]) / 2 + dx, (box[1] + box[3]) / 2 + dy
    hw, hh = (box[2] - box[0]) / 2 * scale, (box[3] - box[1]) / 2 * scale
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def times(n: int, fps: float = 10.0) -> list[float]:
    return [i / fps for i in range(n)]


def x_of(track) -> list[float]:
    return [track.observations[i].box[0] for i in sorted(track.observations)]


def test_two_faces_crossing_keep_their_identities():
    # 25 px a frame each way, 60 px wide, same height: just after the crossing each face's last box overlaps
    # the other face more than its own, so linking by the last box alone swaps them; the predicted box does not.
    right = [face(shifted(FACE, dx=25 * t)) for t in range(9)]
    left = [face(shifted(FACE, dx=230 - 25 * t)) for t in range(9)]
    detections = [[a, b] if t % 2 else [b, a] for t, (a, b) in enumerate(zip(right, left, strict=True))]
    assert any(len(set(np.diff([f.box[0] for f in track.values()]))) > 1 for track in link(detections))
    tracks, dropped = person_tracks(detections, times(9))
    assert dropped == 0 and len(tracks) == 2
    for track in tracks:
        steps = np.diff(x_of(track))
        assert len(steps) == 8 and (np.all(steps == 25) or np.all(steps == -25))


def test_a_face_gone_briefly_keeps_its_track_and_is_filled_in():
    moving = [face(shifted(FACE, dx=3 * t)) for t in range(20)]
    detections = [[f] if not 8 <= t < 11 else [] for t, f in enumerate(moving)]  # gone 0.3 s
    (track,), dropped = person_tracks(detections, times(20))
    assert dropped == 0 and track.track == 1 and track.segments == ((0, 19),)
    assert track.first_seen == 0.0 and track.last_seen == pytest.approx(1.9)
    assert track.seconds_visible == pytest.approx(2.0)
    filled = track.face_at(9)
    assert filled.score == 0.0 and np.allclose(filled.box, moving[9].box)
    assert np.allclose(filled.landmarks, moving[9].landmarks, atol=1e-4)
    assert track.face_at(10).box == pytest.approx(moving[10].box)
    assert track.face_at(20) is None and track.face_at(-1) is None


def test_a_face_back_after_3_s_at_the_same_place_is_the_same_track():
    detections = [[face(FACE)] for _ in range(10)] + [[] for _ in range(30)]
    detections += [[face(shifted(FACE, dx=25, scale=1.2))] for _ in range(10)]  # a little aside and nearer
    (track,), dropped = person_tracks(detections, times(50))
    assert dropped == 0
    assert track.segments == ((0, 9), (40, 49))
    assert track.seconds_visible == pytest.approx(2.0)
    assert track.face_at(25) is None and track.face_at(9).box == FACE
    (track,), _ = person_tracks(detections, times(50), max_gap=5.0)  # a longer gap limit bridges the absence
    assert track.segments == ((0, 49),) and track.face_at(25).box == pytest.approx(
        np.add(FACE, 16 / 31 * np.subtract(shifted(FACE, dx=25, scale=1.2), FACE)))


@pytest.mark.parametrize(
    "back",
    [shifted(FACE, dx=300), shifted(FACE, scale=1.8), shifted(FACE, dx=70)],
    ids=["other side", "much nearer", "one seat over"],
)
def test_a_face_back_elsewhere_is_a_new_track(back):
    detections = [[face(FACE)] for _ in range(10)] + [[] for _ in range(30)] + [[face(back)] for _ in range(10)]
    tracks, _ = person_tracks(detections, times(50))
    assert [(t.track, t.first_seen, t.observations[t.segments[0][0]].box) for t in tracks] == [
        (1, 0.0, FACE), (2, 4.0, pytest.approx(back)),
    ]


def test_the_relink_rule_can_be_tuned():
    detections = [[face(FACE)] for _ in range(10)] + [[] for _ in range(30)]
    detections += [[face(shifted(FACE, dx=70))] for _ in range(10)]
    assert len(person_tracks(detections, times(50), relink_widths=1.5).tracks) == 1


def test_a_lost_track_never_takes_a_live_tracks_face():
    # A sits at FACE, B appears beside A and stays after A leaves; B's faces stay B's, though near A's place.
    seat_b = shifted(FACE, dx=30)
    detections = [[face(FACE)] + ([face(seat_b)] if t >= 5 else []) for t in range(10)]
    detections += [[face(seat_b)] for _ in range(40)]
    tracks, _ = person_tracks(detections, times(50))
    assert [(t.segments, t.median_box) for t in tracks] == [(((0, 9),), FACE), (((5, 49),), seat_b)]


def test_a_flicker_is_dropped_and_never_captures_a_person():
    detections = [[face(FACE)] for _ in range(20)]
    stray = (300.0, 40.0, 340.0, 90.0)
    for t in (3, 4):  # 0.2 s
        detections[t] = [face(FACE), face(stray)]
    detections += [[] for _ in range(20)] + [[face(stray)] for _ in range(10)]  # someone there 2 s later
    tracks, dropped = person_tracks(detections, times(50))
    assert dropped == 1
    assert [(t.track, t.first_seen, t.median_box) for t in tracks] == [(1, 0.0, FACE), (2, 4.0, stray)]
    assert MIN_SECONDS == 0.5
    # A stray that counts as a person is re-joined by whoever appears at its place.
    tracks, dropped = person_tracks(detections, times(50), min_seconds=0.1)
    assert dropped == 0 and [t.segments for t in tracks] == [((0, 19),), ((3, 4), (40, 49))]


def test_no_detections_no_tracks():
    assert person_tracks([[] for _ in range(10)], times(10)) == ([], 0)
    assert person_tracks([], []) == ([], 0)
    assert main_track([]) is None


def test_the_main_track_is_the_longest_visible():
    big = shifted(FACE, dx=200, scale=2)
    detections = [[face(FACE)] + ([face(big)] if t < 8 else []) for t in range(10)]
    tracks, _ = person_tracks(detections, times(10))
    assert main_track(tracks).median_box == FACE
    detections = [[face(FACE), face(big)] for t in range(10)]
    assert main_track(person_tracks(detections, times(10)).tracks).median_box == pytest.approx(big)


def test_times_follow_the_frames_not_their_count():
    # Detection on every 3rd sampled frame (5 fps): the frames between have no detections, the track holds.
    detections = [[face(shifted(FACE, dx=2 * t))] if t % 3 == 0 else [] for t in range(30)]
    (track,), _ = person_tracks(detections, times(30, fps=5))
    assert track.segments == ((0, 27),) and track.seconds_visible == pytest.approx(27 / 5 + 0.2)
    assert track.face_at(13).box == pytest.approx(shifted(FACE, dx=26))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2 detection lists for 3 frame times"):
        person_tracks([[], []], [0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="increase"):
        person_tracks([[], []], [0.1, 0.1])


def test_the_main_track_is_the_single_face_paths_face():
    big = (300.0, 40.0, 450.0, 220.0)
    detections = [[face(shifted(FACE, dx=2 * t))] + ([face(big)] if t in (4, 5, 6) else []) for t in range(12)]
    detections[7] = []
    main = main_track(person_tracks(detections, times(12)).tracks)
    single = face_track(detections, radius=0)
    assert np.allclose([main.face_at(t).box for t in range(12)], [f.box for f in single])
