"""Emotions of a live stream (a camera, a stream URL, frames a browser sends), frame by frame as they come.

A :class:`LiveScorer` takes the per-frame path of ``predict --timeline`` (:func:`emovid.analysis.frame_analysis`),
made causal: each frame is brought to the same working size, the face detector (the same choice: MTCNN at the
smallest size its smallest face allows, then Haar) sees every :data:`~emovid.timeline.DETECT_EVERY`-th frame, the
main face's track over the detections of the last window carries the box to the frames between, each frame is cut
with the model's :class:`~emovid.faces.FaceGeometry` and scored once by ``predictor.frame_scores``, and the emotion
of the moment pools the frames of the last :data:`WINDOW` seconds as :meth:`~emovid.timeline.FrameResults.pool`
pools a window. What a stream cannot have is the future: between two detections the box is held where the last
one put it (a file's timeline draws it on a line to the next), and a frame counts as showing the face when the
latest detection found it.

Memory does not grow with the stream: the scorer keeps the scores of one window's frames and the faces of one
window's detections.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from emovid.data.video import FrameGeometry, clip_geometry, live_frames
from emovid.faces import Face, FaceDetector, FaceGeometry, default_detectors
from emovid.faces.crop import crop_resize
from emovid.faces.geometry import cut_face
from emovid.faces.mtcnn import MtcnnDetector
from emovid.faces.track import face_track
from emovid.predictor import Predictor
from emovid.timeline import DETECT_EVERY, FPS, FrameResults

WINDOW = 1.5  # seconds of frames the emotion of the moment pools: long enough to steady it, short enough to follow


@dataclass(frozen=True)
class LiveAnswer:
    """What the model says at one frame of a stream.

    Attributes:
        time: the frame's time in seconds.
        probabilities: (K,) this frame's class probabilities.
        face_found: the latest detection found the face (None: the model does not look for faces).
        box: where the face is, (x0, y0, x1, y1) as fractions of the frame; None without a face.
        window: (K,) the emotion of the moment: the frames of the last ``window_seconds`` pooled.
        window_seconds: how far back the window reaches.
        window_frames: frames pooled in ``window``.
        window_faces: ... of them showing the face.
    """

    time: float
    probabilities: np.ndarray
    face_found: bool | None
    box: tuple[float, float, float, float] | None
    window: np.ndarray
    window_seconds: float
    window_frames: int
    window_faces: int

    def record(self, class_names: Sequence[str]) -> dict:
        """A JSON-ready record: the window's emotion first, as predictions head their records; the frame's after."""
        best = int(np.argmax(self.window))
        return {
            "time": round(self.time, 3),
            "emotion": class_names[best],
            "probability": round(float(self.window[best]), 4),
            "probabilities": _named(self.window, class_names),
            "face_found": self.face_found,
            "face_box": None if self.box is None else [round(v, 4) for v in self.box],
            "window": {"seconds": self.window_seconds, "frames": self.window_frames, "face_frames": self.window_faces},
            "frame_emotion": class_names[int(np.argmax(self.probabilities))],
            "frame_probabilities": _named(self.probabilities, class_names),
        }


def _named(probabilities: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {name: round(float(p), 4) for name, p in zip(names, probabilities, strict=True)}


class LiveScorer:
    """A stream's frames in, each one's :class:`LiveAnswer` out; one scorer per stream (it keeps the face's track).

    Args:
        predictor: a frame-level model (:attr:`~emovid.predictor.Predictor.frame_kind`): the zero-shot models,
            late fusion.
        window: seconds of frames the emotion of the moment pools.
        detect_every: the face detector sees every this many frames; the track carries the box between.
        detectors: tried in turn until one finds a face (default: :func:`emovid.faces.default_detectors`, MTCNN
            at the smallest size its smallest face allows, as ``predict --timeline`` has them).

    Raises:
        ValueError: a clip-level model, or a window or detect_every out of range.
    """

    def __init__(self, predictor: Predictor, *, window: float = WINDOW, detect_every: int = DETECT_EVERY,
                 detectors: Sequence[FaceDetector] | None = None) -> None:
        if predictor.frame_kind is None:
            raise ValueError(f"{predictor.spec.model_args.get('name', 'this model')} is a clip-level model: live "
                             f"needs a frame-level one (the zero-shot models, late fusion)")
        if window <= 0 or detect_every < 1:
            raise ValueError(f"need window > 0 seconds and detect_every >= 1, got {window:g} and {detect_every}")
        self.predictor = predictor
        self.window = window
        self.detect_every = detect_every
        self._given = tuple(detectors) if detectors is not None else None
        self._detectors: tuple[FaceDetector, ...] = ()
        self._geometry: FrameGeometry | None = None
        self._size: tuple[int, int] | None = None  # the (width, height) frames arrive at
        self._count = 0  # frames scored
        self._seen: deque[tuple[float, list[Face]]] = deque()  # (time, faces) of the window's detections
        self._face: tuple[Face, bool] | None = None  # the face the latest detection left, and whether it saw it
        self._frames: deque[tuple[float, np.ndarray, bool]] = deque()  # (time, scores (V, K), face found)

    def geometry(self, width: int, height: int) -> FrameGeometry:
        """How frames of (width, height) are brought to the working size: :func:`~emovid.data.video.clip_geometry`,
        as ``predict`` decodes them. A source that decodes at this size says so to :meth:`push` (``decoded_from``)."""
        return clip_geometry(self.predictor.resize, self.predictor.spec.crop, width, height)

    def push(self, frame: np.ndarray, time: float, decoded_from: tuple[int, int] | None = None) -> LiveAnswer:
        """Score one frame.

        Args:
            frame: uint8 RGB (H, W, 3), at full size; or decoded at :meth:`geometry`'s working size already.
            time: its time in seconds, later than the previous frame's.
            decoded_from: the source's (width, height) when ``frame`` is at its working size already.

        Raises:
            ValueError: a frame that is not (H, W, 3) uint8, or a time that goes back.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame is uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._frames and time <= self._frames[-1][0]:
            raise ValueError(f"frame times must increase: {time:.3f} s after {self._frames[-1][0]:.3f} s")
        frame = self._working(frame, decoded_from)
        if self.predictor.spec.crop == "face":
            crop, found, box = self._cut(frame, time)
        else:  # centre crops: the working size is the model's input already
            crop, found, box = frame, None, None
        self._count += 1
        scores = self.predictor.frame_scores(crop.transpose(2, 0, 1)[None])[0]  # (1, C, S, S) -> (V, K)
        self._frames.append((time, scores, bool(found)))
        while self._frames[0][0] <= time - self.window:
            self._frames.popleft()
        n = len(self._frames)
        kind = self.predictor.frame_kind
        assert kind is not None  # checked at construction
        faces = np.array([f for _, _, f in self._frames])
        results = FrameResults(np.arange(n), np.array([t for t, _, _ in self._frames]),
                               np.stack([s for _, s, _ in self._frames]), kind, faces, np.zeros(n, bool),
                               np.full((n, 4), np.nan))
        return LiveAnswer(time, results.probabilities[-1], found, box, results.pool(), self.window, n,
                          int(faces.sum()))

    def _working(self, frame: np.ndarray, decoded_from: tuple[int, int] | None) -> np.ndarray:
        """The frame at the working size (INTER_AREA, as PyAV's AREA scaling in ``predict``), cropped as it says."""
        height, width = frame.shape[:2]
        size = decoded_from or (width, height)
        if size != self._size:
            self._size = size
            self._geometry = self.geometry(*size)
            self._seen.clear()  # boxes in frames of another size mean nothing here
            self._face = None
            if self.predictor.spec.crop == "face":
                detectors = self._given if self._given is not None else default_detectors()
                self._detectors = tuple(d.at_smallest_size(*self._geometry.scaled) if isinstance(d, MtcnnDetector)
                                        else d for d in detectors)
        assert self._geometry is not None
        if decoded_from is not None:
            return frame
        if (width, height) != self._geometry.scaled:
            frame = cv2.resize(frame, self._geometry.scaled, interpolation=cv2.INTER_AREA)
        left, top, crop_w, crop_h = self._geometry.crop
        return np.ascontiguousarray(frame[top : top + crop_h, left : left + crop_w])

    def _cut(self, frame: np.ndarray, time: float) -> tuple[np.ndarray, bool, tuple[float, float, float, float] | None]:
        """The face crop (S, S, 3) of a working-size frame, whether the face is on it, and its box (fractions)."""
        resize = self.predictor.resize
        height, width = frame.shape[:2]
        if self._count % self.detect_every == 0 or not self._seen:  # also at once on a new frame size
            self._detect(frame, time)
        if self._face is None:
            return crop_resize(frame[None], resize.center_region(width, height), resize.size)[0], False, None
        face, found = self._face
        crop = cut_face(frame, face, self.predictor.face_geometry or FaceGeometry(), resize.size)
        x0, y0, x1, y1 = face.box
        return crop, found, (x0 / width, y0 / height, x1 / width, y1 / height) if found else None

    def _detect(self, frame: np.ndarray, time: float) -> None:
        """Detect on ``frame``, and follow the main face's track over the window's detections to it.

        The stream version of :class:`emovid.analysis._FaceCutter`'s detection (the detectors tried in turn until
        one finds a face): the track is :func:`~emovid.faces.track.face_track` over the detections so far, whose
        last face is this frame's (held from the last sighting when this detection missed it).
        """
        while self._seen and self._seen[0][0] <= time - self.window:
            self._seen.popleft()
        self._face = None
        found: list[Face] = []
        for detector in self._detectors:
            found = detector.detect([frame])[0]
            track = face_track([*(faces for _, faces in self._seen), found]) if found or self._seen else None
            if track is not None:
                self._face = (track[-1], track[-1].score > 0)
                break
        self._seen.append((time, found))


def live_answers(source: str | Path, predictor: Predictor, *, fps: float = FPS, window: float = WINDOW,
                 every: float = 0.0, threads: int | None = 1) -> Iterator[LiveAnswer]:
    """Answers as a camera (``/dev/video0``), a stream URL PyAV opens or a file (a stand-in) plays.

    Frames are taken at ``fps`` a second of the source's time (as ``predict --timeline`` samples a file) and each is
    scored by a :class:`LiveScorer`; a file is read as fast as it decodes, not at its playing speed.

    Args:
        source: the camera, URL or file.
        predictor: a frame-level model.
        fps: frames a second scored.
        window: seconds of frames the emotion of the moment pools.
        every: yield an answer at most this often, in seconds of the source's time (0: every frame's).
        threads: torch's intra-op threads while the stream is read, as before afterwards (None: leave them). One
            frame at a time gains little from more than one, and two threads on a core another process keeps busy
            wait on each other at every operation: ten times slower on 2 shared cores (see docs/live.md).

    Raises:
        VideoError: the source cannot be opened or read.
        ValueError: a clip-level model, or fps or window out of range.
    """
    scorer = LiveScorer(predictor, window=window)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        due = 0.0
        for time, frame, size in live_frames(source, fps, scorer.geometry):
            answer = scorer.push(frame, time, decoded_from=size)
            if time >= due:
                yield answer
                due = (time // every + 1) * every if every > 0 else 0.0  # on a grid: one a second stays so
    finally:
        torch.set_num_threads(before)
