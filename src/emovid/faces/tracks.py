"""One track per person over a whole video, from per-frame detections at known times.

A pure function on detections (any detector), tested with synthetic boxes. Frames are the sampled frames of a
video (one detection list each, empty where the detector found nothing or did not run), with their times.

How a face joins a track, frame by frame:

1. **Overlap with the predicted box.** Each live track (seen within ``max_gap`` seconds) predicts its box at
   the frame's time: its last box, moved at the velocity of the box centre between its last two observations
   (the size is held: detectors jitter it, and extrapolated it would shrink or blow up the box). Faces and
   tracks pair by decreasing IoU of face box and predicted box, at least ``min_iou``, one face per track.
   Motion keeps two people who cross paths apart; a track survives missed frames up to ``max_gap``.
2. **Re-link after a longer absence, by position and size.** A face no live track took joins a lost track
   (unseen for more than ``max_gap``, and seen at least ``min_seconds`` before, so a stray detection never
   captures a person) when its centre lies within ``relink_widths`` face widths of the centre of the track's
   median box and the two box widths differ by at most the ratio ``relink_size``; the nearest such track wins,
   one face per track. Someone who steps out and comes back to the same place is the same track; a face that
   appears elsewhere (the other side of the frame) starts a new one.
3. **Otherwise a new track.**

At the end, tracks visible for less than ``min_seconds`` are dropped (and counted): too brief to judge, and
mostly false detections. The rest are ordered by first appearance and numbered from 1.

No face embedding is used yet: two people who swap seats while both are away would swap tracks.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from emovid.faces.detection import Box, Face
from emovid.faces.track import MIN_IOU, iou

MAX_GAP = 1.5  # seconds a track survives without detections: a head turned away, a missed detection or two
MIN_SECONDS = 0.5  # tracks visible for less are dropped: too brief to judge an emotion, mostly false detections
RELINK_WIDTHS = 1.0  # a returning face's centre lies within this many face widths of where the person was
RELINK_SIZE = 1.5  # and its box width within this ratio of the person's


@dataclass(frozen=True)
class PersonTrack:
    """One person's face over the video.

    Attributes:
        track: number, from 1, in order of first appearance.
        first_seen: time of the first detection, in seconds.
        last_seen: time of the last detection.
        seconds_visible: time on screen: each segment (detections no more than the gap limit apart) from its
            first to its last detection plus one frame interval, summed over segments.
        observations: sampled frame index -> the detected face.
        segments: (first, last) frame index of each segment; the face is known in between.
        median_box: per-coordinate median of the detected boxes.
    """

    track: int
    first_seen: float
    last_seen: float
    seconds_visible: float
    observations: dict[int, Face]
    segments: tuple[tuple[int, int], ...]
    median_box: Box

    @cached_property
    def _frames(self) -> list[int]:
        return sorted(self.observations)

    def face_at(self, frame: int) -> Face | None:
        """The face at sampled frame ``frame``: the detection there, else box and landmarks interpolated
        linearly between the nearest detections around it (score 0.0; landmarks only if both have them).
        None outside the track's segments (before, after, or in a gap longer than the gap limit)."""
        if frame in self.observations:
            return self.observations[frame]
        if not any(a <= frame <= b for a, b in self.segments):
            return None
        frames = self._frames
        i = bisect.bisect(frames, frame)
        before, after = frames[i - 1], frames[i]
        w = (frame - before) / (after - before)
        a, b = self.observations[before], self.observations[after]
        box = tuple((np.asarray(a.box) + w * np.subtract(b.box, a.box)).tolist())
        landmarks = None
        if a.landmarks is not None and b.landmarks is not None:
            landmarks = (a.landmarks + w * (b.landmarks - a.landmarks)).astype(np.float32)
        return Face(box, 0.0, landmarks)


class Tracks(NamedTuple):
    """The tracks kept, by first appearance, and how many were dropped as too brief."""

    tracks: list[PersonTrack]
    dropped: int


class _Live:
    """A track being built: its detections and a constant-velocity motion model."""

    def __init__(self, frame: int, time: float, face: Face) -> None:
        self.faces = {frame: face}
        self.times = {frame: time}
        self.velocity = np.zeros(2)  # of the box centre, pixels per second
        self._median: Box | None = None

    @property
    def first(self) -> int:
        return next(iter(self.faces))

    @property
    def last(self) -> int:
        return next(reversed(self.faces))

    def add(self, frame: int, time: float, face: Face, moving: bool) -> None:
        """Append a detection; ``moving=False`` (a re-link after an absence) restarts the motion model."""
        last = self.last
        dt = time - self.times[last]
        moved = _centre(face.box) - _centre(self.faces[last].box)
        self.velocity = moved / dt if moving and dt > 0 else np.zeros(2)
        self.faces[frame] = face
        self.times[frame] = time
        self._median = None

    def predict(self, time: float) -> Box:
        last = self.last
        dx, dy = self.velocity * (time - self.times[last])
        x0, y0, x1, y1 = self.faces[last].box
        return x0 + dx, y0 + dy, x1 + dx, y1 + dy

    def segments(self, max_gap: float) -> list[tuple[int, int]]:
        """Runs of detections no more than ``max_gap`` seconds apart, as (first, last) frame index."""
        frames = list(self.faces)
        runs = [[frames[0], frames[0]]]
        for frame in frames[1:]:
            if self.times[frame] - self.times[runs[-1][1]] > max_gap:
                runs.append([frame, frame])
            else:
                runs[-1][1] = frame
        return [(a, b) for a, b in runs]

    def seconds(self, max_gap: float, step: float) -> float:
        return sum(self.times[b] - self.times[a] + step for a, b in self.segments(max_gap))

    def median_box(self) -> Box:
        if self._median is None:  # asked for every frame while the track is lost: computed once per change
            self._median = tuple(np.median([f.box for f in self.faces.values()], axis=0).tolist())
        return self._median


def _width(box: Box) -> float:
    return box[2] - box[0]


def _centre(box: Box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _relink_distance(track: Box, face: Box, size: float) -> float:
    """Distance between the centres of a lost track's box and a face's, in the track's face widths; infinite
    when their widths differ by more than the ratio ``size``."""
    w0, w1 = _width(track), _width(face)
    if w0 <= 0 or w1 <= 0 or max(w0 / w1, w1 / w0) > size:
        return math.inf
    return float(np.linalg.norm(_centre(track) - _centre(face))) / w0


def _greedy(pairs: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """(track, face) links from (cost, track, face) candidates, lowest cost first, each track and face once."""
    links: list[tuple[int, int]] = []
    taken_tracks: set[int] = set()
    taken_faces: set[int] = set()
    for _, k, j in sorted(pairs, key=lambda pair: pair[0]):
        if k not in taken_tracks and j not in taken_faces:
            links.append((k, j))
            taken_tracks.add(k)
            taken_faces.add(j)
    return links


def person_tracks(
    detections: Sequence[Sequence[Face]],
    times: Sequence[float],
    *,
    max_gap: float = MAX_GAP,
    min_seconds: float = MIN_SECONDS,
    min_iou: float = MIN_IOU,
    relink_widths: float = RELINK_WIDTHS,
    relink_size: float = RELINK_SIZE,
) -> Tracks:
    """Every person's track through the video (see the module docstring for the rules).

    Args:
        detections: per sampled frame, the faces found (empty where none, or where detection did not run).
        times: each sampled frame's time in seconds, increasing.
        max_gap: seconds a track survives without detections; also the longest gap :meth:`PersonTrack.face_at`
            fills. When detection runs on every k-th frame, make it at least three detection intervals, so that
            two missed detections in a row do not split a segment.
        min_seconds: tracks visible for less are dropped.
        min_iou: overlap of a face with a track's predicted box that links them.
        relink_widths: how far (in face widths) a returning face may be from where the person was.
        relink_size: how much larger or smaller (as a ratio of widths) it may be.

    Raises:
        ValueError: ``detections`` and ``times`` differ in length, or times do not increase.
    """
    if len(detections) != len(times):
        raise ValueError(f"{len(detections)} detection lists for {len(times)} frame times")
    if np.any(np.diff(times) <= 0):
        raise ValueError("frame times must increase")
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0  # the time one sampled frame stands for
    tracks: list[_Live] = []
    live: list[int] = []  # seen within max_gap
    lost: list[int] = []  # unseen for longer, visible long enough before: a returning face may re-join them
    for frame, (time, faces) in enumerate(zip(times, detections, strict=True)):
        for k in [k for k in live if time - tracks[k].times[tracks[k].last] > max_gap]:
            live.remove(k)
            if tracks[k].seconds(max_gap, step) >= min_seconds:
                lost.append(k)
        overlaps = ((-iou(tracks[k].predict(time), face.box), k, j) for k in live for j, face in enumerate(faces))
        linked = _greedy([pair for pair in overlaps if -pair[0] >= min_iou])
        for k, j in linked:
            tracks[k].add(frame, time, faces[j], moving=True)
        taken = {j for _, j in linked}
        free = [j for j in range(len(faces)) if j not in taken]
        distances = ((_relink_distance(tracks[k].median_box(), faces[j].box, relink_size), k, j)
                     for k in lost for j in free)
        for k, j in _greedy([pair for pair in distances if pair[0] <= relink_widths]):
            tracks[k].add(frame, time, faces[j], moving=False)
            lost.remove(k)
            live.append(k)
            free.remove(j)
        live.extend(range(len(tracks), len(tracks) + len(free)))
        tracks.extend(_Live(frame, time, faces[j]) for j in free)

    kept = [track for track in tracks if track.seconds(max_gap, step) >= min_seconds]
    kept.sort(key=lambda track: track.first)
    people = [
        PersonTrack(
            track=number,
            first_seen=track.times[track.first],
            last_seen=track.times[track.last],
            seconds_visible=track.seconds(max_gap, step),
            observations=track.faces,
            segments=tuple(track.segments(max_gap)),
            median_box=track.median_box(),
        )
        for number, track in enumerate(kept, start=1)
    ]
    return Tracks(people, len(tracks) - len(kept))


def main_track(tracks: Sequence[PersonTrack]) -> PersonTrack | None:
    """The longest-visible track (the larger median box on a tie): the video's main face; None without tracks."""
    if not tracks:
        return None
    return max(tracks, key=lambda t: (t.seconds_visible, _width(t.median_box) * (t.median_box[3] - t.median_box[1])))
