"""What looking at a video gives: per sampled frame, per window and for the whole clip.

The types here sit below predict, serve and annotate, so that none of those imports another: a
:class:`VideoAnalysis` is what :func:`emovid.analysis.analyse_video` makes of one video, a :class:`Prediction` or a
:class:`Failure` what a batch of one-clip predictions gives per video. Pure numpy: no model, no decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from emovid.data.video import uniform_indices

FaceMode = Literal["main", "all"]  # the main face (the longest-visible), or every person in the video
FPS = 5.0  # frames per second a frame-level model looks at: see docs/timeline.md for the trade-off
DETECT_EVERY = 3  # of the sampled frames, the face detector sees every this many; the track carries the box between


@dataclass(frozen=True)
class Failure:
    """An input that gave no prediction; ``reason`` is one line."""

    source: str
    reason: str


@dataclass(frozen=True)
class Prediction:
    """Class probabilities (K,) for one video, with its clip metadata (duration, crop, face found...)."""

    source: str
    probabilities: np.ndarray
    meta: dict


@dataclass(frozen=True)
class Window:
    """Frames [start, end) of a video, and the T frame indices sampled uniformly inside them."""

    start: int
    end: int
    indices: np.ndarray


def sliding_windows(num_frames: int, fps: float, frames: int, window: float, stride: float) -> list[Window]:
    """Windows of ``window`` seconds every ``stride`` seconds, covering the whole video.

    The first starts at frame 0; the last ends at the last frame (so the final step can be shorter than
    ``stride``). A video shorter than one window gets one window over all of it.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be > 0 seconds, got {window} and {stride}")
    length = max(1, round(window * fps))
    step = max(1, round(stride * fps))
    if num_frames <= length:
        starts = [0]
        length = num_frames
    else:
        starts = list(range(0, num_frames - length + 1, step))
        if starts[-1] + length < num_frames:
            starts.append(num_frames - length)
    return [Window(s, s + length, s + uniform_indices(length, frames)) for s in starts]


def sample_count(duration: float, fps: float | None, at_least: int) -> int:
    """How many frames a frame-level model looks at in a video of ``duration`` seconds: ``fps`` per second, and
    never fewer than ``at_least`` (the frames of one clip), so a short video is sampled as a one-clip prediction
    samples it; ``fps`` None: exactly ``at_least``, spread over the whole video (one clip's prediction)."""
    if fps is None:
        return at_least
    if fps <= 0:
        raise ValueError(f"frames per second must be > 0, got {fps}")
    return max(at_least, round(duration * fps))


ScoreKind = Literal["probabilities", "logits"]


@dataclass(frozen=True)
class FrameResults:
    """What a frame-level model says about each sampled frame, and where the face was.

    Attributes:
        indices: (N,) the frames' indices in the video, increasing (a short video's can repeat).
        times: (N,) their presentation times in seconds.
        scores: (N, V, K) per view (the frame; with flip TTA, its mirror image too): probabilities or logits,
            as ``kind`` says.
        kind: ``probabilities``: a clip's answer is the mean of the frames'; ``logits``: the softmax of their mean.
        face_found: (N,) the main face is on the frame: a detection saw it there or on both sides of it.
        detected: (N,) the face detector ran on the frame (every few frames; the track fills the others).
        boxes: (N, 4) the face box as x0, y0, x1, y1 fractions of the frame; NaN where no face was found.
    """

    indices: np.ndarray
    times: np.ndarray
    scores: np.ndarray
    kind: ScoreKind
    face_found: np.ndarray
    detected: np.ndarray
    boxes: np.ndarray

    def pool(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Class probabilities (K,) of the frames ``rows``, as the model makes a clip's from its frames."""
        return self._probabilities(self.scores[rows].mean(axis=0))

    @property
    def probabilities(self) -> np.ndarray:
        """Each frame's class probabilities (N, K)."""
        return self._probabilities(self.scores)

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Scores (..., V, K) to probabilities (..., K): a softmax of logits, then the mean over views."""
        if self.kind == "logits":
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores = scores / scores.sum(axis=-1, keepdims=True)
        return scores.mean(axis=-2)


@dataclass(frozen=True)
class VideoAnalysis:
    """One video's probabilities over time: per window (W, K), for the whole clip (K,) and, from a frame-level
    model, per sampled frame.

    Attributes:
        source: the video, as reports name it.
        class_names: the K classes.
        starts: (W,) window starts in seconds.
        ends: (W,) window ends in seconds.
        probabilities: (W, K) per window.
        video: the video's :meth:`~emovid.data.video.VideoInfo.as_dict`.
        window_meta: per window: crop, face found...
        clip: (K,) the whole video's probabilities: the pool of every sampled frame from a frame-level model, the
            mean of the windows from a clip-level one.
        clip_meta: the whole video's crop and face metadata, as a one-clip prediction gives them.
        frames: per sampled frame, from a frame-level model; None from a clip-level one.
        note: a remark worth passing on (a video shorter than one window).
    """

    source: str
    class_names: tuple[str, ...]
    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    video: dict
    window_meta: list[dict]
    clip: np.ndarray
    clip_meta: dict
    frames: FrameResults | None = None
    note: str | None = None

    def mean(self) -> np.ndarray:
        """The video's probabilities (K,): :attr:`clip`."""
        return self.clip


@dataclass(frozen=True)
class PersonAnalysis:
    """One person's emotions over a video: a track's scored frames, its windows and its whole-track answer.

    Attributes:
        track: the track's number, from 1, in order of first appearance.
        first_seen: time of its first detection, in seconds.
        last_seen: time of its last detection.
        seconds_visible: time on screen (see :class:`~emovid.faces.tracks.PersonTrack`).
        box: median face box, x0, y0, x1, y1 as fractions of the frame.
        frames: the sampled frames where its face was cut and scored (``face_found`` all true).
        starts: (W',) start in seconds of each window the person is in (a scored frame inside it).
        ends: (W',) their ends.
        probabilities: (W', K) per window, pooled from its scored frames there.
        clip: (K,) the whole track's probabilities: the pool of all its scored frames.
    """

    track: int
    first_seen: float
    last_seen: float
    seconds_visible: float
    box: tuple[float, float, float, float]
    frames: FrameResults
    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    clip: np.ndarray


@dataclass(frozen=True)
class PeopleAnalysis:
    """Every person's emotions over one video (``--faces all``).

    Attributes:
        source: the video, as reports name it.
        class_names: the K classes.
        video: the video's :meth:`~emovid.data.video.VideoInfo.as_dict`.
        people: one per track, by first appearance; empty when no face was found long enough.
        main: the number of the main track (the longest visible), None without tracks.
        sampled: how many frames were sampled.
        dropped: tracks dropped as too brief to judge.
        note: a remark worth passing on (a video shorter than one window).
    """

    source: str
    class_names: tuple[str, ...]
    video: dict
    people: tuple[PersonAnalysis, ...]
    main: int | None
    sampled: int
    dropped: int = 0
    note: str | None = None

    def person(self, track: int) -> PersonAnalysis:
        """The person with track number ``track``."""
        return next(p for p in self.people if p.track == track)


@dataclass(frozen=True)
class TimelineRequest:
    """Sliding windows over each whole video instead of one clip per video, and the files to write.

    Attributes:
        window: window length in seconds (default: the model's clip length).
        stride: seconds between window starts (default: half the window).
        prefix: write ``PREFIX.csv``, ``.json`` and ``.png`` (``PREFIX-<video>.*`` for several videos).
        beside: without a prefix, write them beside each video as ``<stem>.timeline.*`` (see
            :func:`emovid.records.timeline_paths`).
        annotate: write a copy of the video with each moment's emotion drawn on it (``OUT-<video>.mp4`` for
            several videos).
    """

    window: float | None = None
    stride: float | None = None
    prefix: Path | None = None
    annotate: Path | None = None
    beside: bool = False

    def __post_init__(self) -> None:
        if (self.window is not None and self.window <= 0) or (self.stride is not None and self.stride <= 0):
            raise ValueError("--window and --stride must be > 0 seconds")
