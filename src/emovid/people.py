"""From a video to every person's emotions (``--faces all``): one decoding pass, every face cut and scored once.

The frames are sampled as the single-face road samples them (:data:`~emovid.timeline.FPS` a second), in runs of
about one window. In each run the detector sees every few frames (as for the main face), the run's faces are linked
(:func:`~emovid.faces.tracks.person_tracks` with no gap limit) and every face is carried to the frames between its
detections, cut with the model's own face geometry and scored, all of a run's faces in one batched call. Only boxes,
landmarks and scores are kept, never frames. At the end the detections of the whole video are linked into one track
per person (:func:`~emovid.faces.tracks.person_tracks`: overlap and motion, re-linking a face that comes back to
where it was), and each track takes the scores of the faces it holds, frame by frame.

Clip-level models (3-D CNNs, early fusion, CNN-LSTM) look at whole clips of one face and have no per-frame scores
to share out between people: they are refused with one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovid.analysis import _chunks, _short_note, _smallest, detection_rows
from emovid.data.source import VideoSource
from emovid.data.video import clip_geometry, open_video, sample_by_time
from emovid.faces import FaceDetector, FaceGeometry, default_detectors
from emovid.faces.detection import Box, Face
from emovid.faces.geometry import cut_face
from emovid.faces.track import MIN_IOU, iou
from emovid.faces.tracks import MAX_GAP, PersonTrack, main_track, person_tracks
from emovid.predictor import Predictor
from emovid.timeline import (
    DETECT_EVERY,
    FPS,
    FrameResults,
    PeopleAnalysis,
    PersonAnalysis,
    ScoreKind,
    sample_count,
    sliding_windows,
)

SAME_FACE = 0.5  # IoU of a track's face and a cut face that makes them the same one (the same detections give ~1)


def check_people_model(predictor: Predictor) -> None:
    """Raise ValueError (one line) unless the model can score every face of a frame: frame-level, on face crops."""
    name = predictor.spec.model_args.get("name", type(predictor.model).__name__)
    if predictor.frame_kind is None:
        raise ValueError(f"--faces all needs a frame-level model (zero-shot or late fusion); {name} looks at whole "
                         "clips of one face")
    if predictor.spec.crop != "face":
        raise ValueError(f"--faces all needs a model that looks at faces; {name} sees the centre of the frame "
                         "(--crop face)")


def people_analysis(source: VideoSource | str | Path, predictor: Predictor, window: float | None = None,
                    stride: float | None = None, *, fps: float = FPS, detect_every: int = DETECT_EVERY,
                    detectors: Sequence[FaceDetector] | None = None, batch_size: int | None = None) -> PeopleAnalysis:
    """Every person's probabilities over time in one video: per track, per window and for the whole track.

    Args:
        source: the video.
        predictor: a frame-level model on face crops (see :func:`check_people_model`).
        window: window length in seconds (default: the spec's ``clip_seconds``).
        stride: seconds between window starts (default: half the window).
        fps: frames a second looked at.
        detect_every: the face detector sees every this many sampled frames.
        detectors: each adds the faces the ones before it missed (default: :func:`emovid.faces.default_detectors`,
            MTCNN at the smallest size its smallest face allows, then Haar).
        batch_size: faces per model call (default: the predictor's options).

    Raises:
        ValueError: the model cannot score faces frame by frame.
        VideoError: the video cannot be read.
    """
    check_people_model(predictor)
    spec, resize = predictor.spec, predictor.resize
    kind: ScoreKind = predictor.frame_kind  # type: ignore[assignment]  # checked above
    window = window or spec.clip_seconds
    stride = stride or window / 2
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    face_geometry = predictor.face_geometry or FaceGeometry()
    with open_video(source) as reader:
        info = reader.info
        windows = sliding_windows(info.num_frames, info.fps, 1, window, stride)
        stamps = reader.timestamps
        # Unique: tracks need increasing times (a video shorter than one clip repeats frames in a one-clip sample).
        indices = np.unique(sample_by_time(stamps, sample_count(info.duration, fps, spec.frames)))
        times = stamps[indices] - stamps[0]
        geometry = clip_geometry(resize, spec.crop, info.width, info.height)
        if detectors is None:
            detectors = _smallest(default_detectors(), *geometry.scaled)
        width, height = geometry.scaled  # the working frame's size, which boxes are in (set from the frames below)
        detections: list[list[Face]] = [[] for _ in indices]  # boxes and landmarks only: a few numbers a face
        detected = np.zeros(len(indices), bool)
        cuts: list[list[tuple[Box, np.ndarray]]] = [[] for _ in indices]  # per frame: each cut face, scores (V, K)
        start = 0
        most = math.ceil(window * len(indices) / max(info.duration, 1e-9))  # sampled frames in one window
        for frames in _chunks(reader, indices, geometry, most):
            rows = np.arange(start, start + len(frames))
            height, width = frames[0].shape[:2]
            at = detection_rows(len(frames), detect_every)
            detected[rows[at]] = True
            found = _detect(detectors, [frames[i] for i in at])
            for i, faces in zip(at, found, strict=True):
                detections[rows[i]] = faces
            cut = _run_faces(found, at, times[rows])
            if cut:
                crops = np.stack([cut_face(frames[i], face, face_geometry, resize.size) for i, face in cut])
                scores = predictor.frame_scores(crops.transpose(0, 3, 1, 2), batch_size)  # (F, V, K)
                for (i, face), score in zip(cut, scores, strict=True):
                    cuts[rows[i]].append((face.box, score))
            start += len(frames)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    # The gap limit spans three detection intervals, so two missed detections in a row keep a person's segment.
    tracks, dropped = person_tracks(detections, times.tolist(), max_gap=max(MAX_GAP, 3 * detect_every * step))
    frame = (width, height, width, height)
    people = [p for p in (_person(t, cuts, indices, times, detected, kind, windows, info.fps, frame) for t in tracks)
              if p is not None]
    main = main_track([t for t in tracks if any(p.track == t.track for p in people)])
    return PeopleAnalysis(
        source=str(source),
        class_names=spec.class_names,
        video=info.as_dict(),
        people=tuple(people),
        main=main.track if main else None,
        sampled=len(indices),
        dropped=dropped,
        note=_short_note(len(windows), info.duration, window),
    )


def _detect(detectors: Sequence[FaceDetector], frames: list[np.ndarray]) -> list[list[Face]]:
    """Each frame's faces from every detector in turn: a later detector adds the faces the earlier ones missed
    (overlapping none of theirs), so a face MTCNN misses beside one it finds is not lost."""
    found: list[list[Face]] = [[] for _ in frames]
    for detector in detectors:
        for faces, more in zip(found, detector.detect(frames), strict=True):
            faces.extend(f for f in more if all(iou(f.box, g.box) < MIN_IOU for g in faces))
    return found


def _run_faces(found: list[list[Face]], at: np.ndarray, times: np.ndarray) -> list[tuple[int, Face]]:
    """Every face of a run of frames, as (frame in the run, face): the detections at ``at``, linked within the run
    and carried (box and landmarks linear) to the frames between a face's first and last detection there."""
    local: list[list[Face]] = [[] for _ in times]
    for i, faces in zip(at, found, strict=True):
        local[i] = faces
    if len(times) == 1:
        return [(0, face) for face in local[0]]
    out = []
    for tracklet in person_tracks(local, times.tolist(), max_gap=math.inf, min_seconds=0).tracks:
        for i in range(tracklet.segments[0][0], tracklet.segments[-1][1] + 1):
            face = tracklet.face_at(i)
            if face is not None:
                out.append((i, face))
    return out


def _person(track: PersonTrack, cuts: list[list[tuple[Box, np.ndarray]]], indices: np.ndarray, times: np.ndarray,
            detected: np.ndarray, kind: ScoreKind, windows: list, video_fps: float,
            frame: tuple[int, int, int, int]) -> PersonAnalysis | None:
    """A track's analysis from the faces cut on its frames (the cut face nearest its own box on each); None when
    none was cut (a track made only of frames between runs)."""
    rows, scores, boxes = [], [], []
    for row in range(track.segments[0][0], track.segments[-1][1] + 1):
        face = track.face_at(row)
        if face is None or not cuts[row]:
            continue
        overlap, best = max((iou(face.box, box), k) for k, (box, _) in enumerate(cuts[row]))
        if overlap >= SAME_FACE:
            box, score = cuts[row].pop(best)  # taken: no other track gets the same face
            rows.append(row)
            scores.append(score)
            boxes.append(box)
    if not rows:
        return None
    at = np.array(rows)
    results = FrameResults(indices[at], times[at], np.stack(scores), kind, np.ones(len(at), bool), detected[at],
                           np.array(boxes) / frame)
    inside = [np.flatnonzero((results.indices >= w.start) & (results.indices < w.end)) for w in windows]
    kept = [(w, r) for w, r in zip(windows, inside, strict=True) if len(r)]
    return PersonAnalysis(
        track=track.track,
        first_seen=track.first_seen,
        last_seen=track.last_seen,
        seconds_visible=track.seconds_visible,
        box=tuple(float(v) for v in np.round(np.array(track.median_box) / frame, 4)),  # type: ignore[arg-type]
        frames=results,
        starts=np.array([w.start / video_fps for w, _ in kept]),
        ends=np.array([w.end / video_fps for w, _ in kept]),
        probabilities=np.stack([results.pool(r) for _, r in kept]) if kept else np.zeros((0, results.scores.shape[-1])),
        clip=results.pool(),
    )
