"""From a video to a :class:`~emovid.timeline.VideoAnalysis`: the one road ``predict``, timelines and ``serve`` take.

Frame-level models (late fusion; the zero-shot models with mean or log-mean pooling) look at frames at a fixed rate
over the whole video (:data:`~emovid.timeline.FPS` a second, never fewer than the T frames of one clip). With face
crops, the detector sees every few of those frames, shrunk as far as its smallest face allows, and the face's track
carries the box to the frames between (:func:`emovid.faces.track.carry`). Each sampled frame is cut and scored
once, a batch of frames per model call; a window's probabilities, and the whole clip's, pool the scores of the
frames inside it. Clip-level models (early fusion, 3-D CNNs, CNN-LSTM, expressive pooling) see each window as a
clip of T frames, as they were trained.

Memory does not grow with the video: frames stream from one decoding pass. The frame path holds at most one window's
sampled frames (at the face-crop working size, or at the model's input size) and their crops, plus the per-frame
numbers: K scores (twice with flip TTA) and a few flags per sampled frame, about 100 bytes. The window path holds the
frames of the windows in progress (two with the default stride) and one batch of clips.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from emovid.data.source import VideoSource
from emovid.data.video import (
    FrameGeometry,
    Resize,
    VideoReader,
    clip_geometry,
    finish_clip,
    open_video,
    sample_by_time,
)
from emovid.faces import FaceDetector, FaceGeometry, default_detectors
from emovid.faces.crop import crop_resize
from emovid.faces.geometry import cut_face
from emovid.faces.mtcnn import MtcnnDetector
from emovid.faces.track import carry, face_track
from emovid.predictor import Predictor
from emovid.timeline import DETECT_EVERY, FPS, FrameResults, VideoAnalysis, Window, sample_count, sliding_windows


def analyse_video(source: VideoSource | str | Path, predictor: Predictor, window: float | None = None,
                  stride: float | None = None, *, fps: float | None = FPS, detect_every: int = DETECT_EVERY,
                  batch_size: int | None = None) -> VideoAnalysis:
    """Probabilities over time of one video: per window, for the whole clip and, from a frame-level model, per frame.

    Args:
        source: the video.
        predictor: model and spec; a frame-level one (:attr:`~emovid.predictor.Predictor.frame_kind`) takes
            :func:`frame_analysis`, any other :func:`window_analysis`.
        window: window length in seconds (default: the spec's ``clip_seconds``, what the model was trained on).
        stride: seconds between window starts (default: half the window).
        fps: frames a second a frame-level model looks at; None: the spec's T frames over the whole video, as one
            clip's prediction looks at it.
        detect_every: a frame-level model's face detector sees every this many sampled frames.
        batch_size: frames (frame-level) or windows (clip-level) per model call (default: the predictor's options).

    Raises:
        VideoError: the video cannot be read.
    """
    if predictor.frame_kind is not None:
        return frame_analysis(source, predictor, window, stride, fps=fps, detect_every=detect_every,
                              batch_size=batch_size)
    return window_analysis(source, predictor, window, stride, batch_size=batch_size)


def frame_analysis(source: VideoSource | str | Path, predictor: Predictor, window: float | None = None,
                   stride: float | None = None, *, fps: float | None = FPS, detect_every: int = DETECT_EVERY,
                   detectors: Sequence[FaceDetector] | None = None, batch_size: int | None = None) -> VideoAnalysis:
    """A frame-level model's analysis: every sampled frame cut and scored once, windows pooled from the frames.

    Args as :func:`analyse_video`; ``detectors`` are tried in turn per stretch of frames until one finds a face
    (default: :func:`emovid.faces.default_detectors`, MTCNN at the smallest size its smallest face allows).
    """
    spec, resize, kind = predictor.spec, predictor.resize, predictor.frame_kind
    window = window or spec.clip_seconds
    stride = stride or window / 2
    if kind is None:
        raise ValueError(f"{type(predictor.model).__name__} is not a frame-level model: use window_analysis")
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    with open_video(source) as reader:
        info = reader.info
        windows = sliding_windows(info.num_frames, info.fps, 1, window, stride)
        times = reader.timestamps
        indices = sample_by_time(times, sample_count(info.duration, fps, spec.frames))  # (N,) increasing
        geometry = clip_geometry(resize, spec.crop, info.width, info.height)
        if spec.crop == "face" and detectors is None:
            detectors = _smallest(default_detectors(), *geometry.scaled)
        cutter = _FaceCutter(resize, predictor.face_geometry, detectors or (), detect_every) \
            if spec.crop == "face" else None
        most = math.ceil(window * len(indices) / info.duration)  # sampled frames in one window
        parts = []
        for frames in _chunks(reader, indices, geometry, most):
            if cutter is None:  # centre crops: decoded at the model's input size already
                crops, faces = np.stack(frames), _no_faces(len(frames))
            else:
                crops, faces = cutter(frames)
            parts.append((predictor.frame_scores(crops.transpose(0, 3, 1, 2), batch_size), *faces))
    scores, found, detected, boxes = (np.concatenate(column) for column in zip(*parts, strict=True))
    results = FrameResults(indices, times[indices] - times[0], scores, kind, found, detected, boxes)
    face = spec.crop == "face"
    rows = [_rows_of(w, indices) for w in windows]
    return VideoAnalysis(
        source=str(source),
        class_names=spec.class_names,
        starts=np.array([w.start / info.fps for w in windows]),
        ends=np.array([w.end / info.fps for w in windows]),
        probabilities=np.stack([results.pool(r) for r in rows]),
        video=info.as_dict(),
        window_meta=[{"crop": spec.crop, "frames": len(r), **(_face_meta(results, r) if face else {})}
                     for r in rows],
        clip=results.pool(),
        clip_meta={"crop": spec.crop, "frames": len(indices),
                   **(_face_meta(results, np.arange(len(indices)), box=True) if face else {})},
        frames=results,
        note=_short_note(len(windows), info.duration, window),
    )


def _smallest(detectors: Sequence[FaceDetector], width: int, height: int) -> tuple[FaceDetector, ...]:
    """The detectors, MTCNN shrinking frames as far as its smallest face allows (the others as they are)."""
    return tuple(d.at_smallest_size(width, height) if isinstance(d, MtcnnDetector) else d for d in detectors)


def _chunks(reader: VideoReader, indices: np.ndarray, geometry: FrameGeometry, most: int) -> Iterator[list[np.ndarray]]:
    """The frames at ``indices`` (increasing) in consecutive runs of near-equal length, at most ``most`` each, from
    one decoding pass; a run's frames are let go once the next run starts."""
    runs = np.array_split(indices, -(-len(indices) // max(1, most)))
    kept: dict[int, np.ndarray] = {}
    for index, frame in reader.stream(np.unique(indices).tolist(), geometry):
        kept[index] = frame
        while runs and int(runs[0][-1]) in kept:
            yield [kept[int(i)] for i in runs.pop(0)]
            kept = {i: f for i, f in kept.items() if runs and i >= runs[0][0]}


def detection_rows(count: int, every: int) -> np.ndarray:
    """Which of a run of ``count`` frames the detector sees: spread over the run, both ends included, at most
    ``every`` frames apart."""
    return np.unique(np.linspace(0, count - 1, math.ceil((count - 1) / every) + 1).round().astype(int))


FaceColumns = tuple[np.ndarray, np.ndarray, np.ndarray]  # face found (n,), detected (n,), boxes (n, 4)


def _no_faces(count: int) -> FaceColumns:
    return np.zeros(count, bool), np.zeros(count, bool), np.full((count, 4), np.nan)


class _FaceCutter:
    """Face crops of a run of frames: detection on every ``every``-th, the main face's track, a crop per frame."""

    def __init__(self, resize: Resize, geometry: FaceGeometry | None, detectors: Sequence[FaceDetector],
                 every: int) -> None:
        self.resize = resize
        self.geometry = geometry or FaceGeometry()
        self.detectors = detectors
        self.every = every

    def __call__(self, frames: list[np.ndarray]) -> tuple[np.ndarray, FaceColumns]:
        """Crops uint8 (n, S, S, C) of frames (H, W, C), and the face columns; the centre crop where no face is."""
        count = len(frames)
        height, width = frames[0].shape[:2]
        at = detection_rows(count, self.every)
        detected = np.zeros(count, bool)
        detected[at] = True
        for detector in self.detectors:
            track = face_track(detector.detect([frames[i] for i in at]))
            if track is not None:
                break
        else:
            crops = crop_resize(np.stack(frames), self.resize.center_region(width, height), self.resize.size)
            return crops, (np.zeros(count, bool), detected, np.full((count, 4), np.nan))
        faces = carry(track, at.tolist(), count)
        crops = np.stack([cut_face(f, face, self.geometry, self.resize.size) for f, face in zip(frames, faces,
                                                                                                   strict=True)])
        seen = at[[face.score > 0 for face in track]]  # where a detection found it, not where the track filled in
        found = np.zeros(count, bool)
        found[seen.min() : seen.max() + 1] = True
        boxes = np.array([face.box for face in faces]) / [width, height, width, height]
        boxes[~found] = np.nan
        return crops, (found, detected, boxes)


def _rows_of(window: Window, indices: np.ndarray) -> np.ndarray:
    """The sampled frames inside ``window``; the one nearest its middle if none is (a window shorter than 1/fps)."""
    rows = np.flatnonzero((indices >= window.start) & (indices < window.end))
    return rows if len(rows) else np.array([int(np.argmin(np.abs(indices - (window.start + window.end - 1) / 2)))])


def _face_meta(frames: FrameResults, rows: np.ndarray, box: bool = False) -> dict:
    """Whether, and on how many of ``rows``, the face was found; with ``box``, its median box (fractions)."""
    found = frames.face_found[rows]
    meta: dict = {"face_found": bool(found.any()), "face_frames": f"{int(found.sum())}/{len(rows)}"}
    if box:
        boxes = frames.boxes[rows][found]
        meta["face_box"] = np.median(boxes, axis=0).round(4).tolist() if len(boxes) else None
    return meta


def _short_note(windows: int, duration: float, window: float) -> str | None:
    if windows == 1 and duration < window:
        return f"the video ({duration:.2f} s) is shorter than one window ({window:.2f} s): one window over it all"
    return None


def window_analysis(source: VideoSource | str | Path, predictor: Predictor, window: float | None = None,
                    stride: float | None = None, *, batch_size: int | None = None) -> VideoAnalysis:
    """A clip-level model's analysis: each window a clip of T frames sampled uniformly inside it, from one streaming
    decode pass; the whole clip is the mean of the windows. Args as :func:`analyse_video`."""
    spec, resize = predictor.spec, predictor.resize
    batch_size = batch_size or predictor.options.batch_size
    window = window or spec.clip_seconds
    stride = stride or window / 2
    probs: list[np.ndarray] = []
    metas: list[dict] = []
    batch: list[np.ndarray] = []
    with open_video(source) as reader:
        info = reader.info
        windows = sliding_windows(info.num_frames, info.fps, spec.frames, window, stride)
        geometry = clip_geometry(resize, spec.crop, info.width, info.height)
        needed = sorted({int(i) for w in windows for i in w.indices})
        buffer: dict[int, np.ndarray] = {}  # frame index -> (H, W, C) frame, only those still needed
        done = 0
        for index, frame in reader.stream(needed, geometry):
            buffer[index] = frame
            while done < len(windows) and all(int(i) in buffer for i in windows[done].indices):
                clip, meta = finish_clip(np.stack([buffer[int(i)] for i in windows[done].indices]), resize, spec.crop,
                                         predictor.face_geometry)
                batch.append(clip)
                metas.append(meta)
                done += 1
                # Windows start in order, so no later window needs a frame before the next one's first.
                first = int(windows[done].indices[0]) if done < len(windows) else info.num_frames
                for old in [i for i in buffer if i < first]:
                    del buffer[old]
                if len(batch) == batch_size:
                    probs.append(predictor.probabilities(np.stack(batch)))
                    batch.clear()
    if batch:
        probs.append(predictor.probabilities(np.stack(batch)))
    probabilities = np.concatenate(probs)
    face = {"face_found": any(m["face_found"] for m in metas)} if spec.crop == "face" else {}
    return VideoAnalysis(
        source=str(source),
        class_names=spec.class_names,
        starts=np.array([w.start / info.fps for w in windows]),
        ends=np.array([w.end / info.fps for w in windows]),
        probabilities=probabilities,
        video=info.as_dict(),
        window_meta=metas,
        clip=probabilities.mean(axis=0),
        clip_meta={"crop": spec.crop, **face},
        note=_short_note(len(windows), info.duration, window),
    )
