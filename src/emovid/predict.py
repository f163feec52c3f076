"""Inference on any number of videos: one prediction per video, or a timeline of windows over each.

Running only: predictors are loaded by :mod:`emovid.predictor`, inputs found by :mod:`emovid.inputs`, each video
analysed by :mod:`emovid.analysis` and results written by :mod:`emovid.records`; their public names are importable
from here too, as before the split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from emovid.analysis import analyse_video
from emovid.data.shard import Shard
from emovid.data.source import VideoSource
from emovid.data.video import Clip, read_clip
from emovid.inputs import as_failure, find_videos
from emovid.outputs import Output, check_outputs
from emovid.predictor import Predictor, PredictorError, load_predictor
from emovid.records import (
    csv_text,
    people_record,
    prediction_record,
    timeline_facts,
    timeline_paths,
    timeline_records,
    video_facts,
    write_text,
    write_timeline_outputs,
)
from emovid.timeline import (
    DETECT_EVERY,
    FPS,
    FaceMode,
    Failure,
    Prediction,
    TimelineRequest,
    VideoAnalysis,
    Window,
    sliding_windows,
)

Timeline = VideoAnalysis  # the name before the analysis held frames and a clip answer

__all__ = [
    "FPS", "Failure", "Prediction", "Predictor", "PredictorError", "Timeline", "TimelineRequest", "VideoAnalysis",
    "Window", "as_failure", "csv_text", "find_videos", "load_predictor", "predict_records", "predict_timeline",
    "predict_videos", "prediction_record", "sliding_windows", "timeline_facts", "timeline_paths", "timeline_records",
    "video_facts", "write_text", "write_timeline_outputs",
]


def predict_videos(paths: Iterable[VideoSource | Path], predictor: Predictor, batch_size: int | None = None,
                   fps: float | None = None) -> Iterator[Prediction | Failure]:
    """One prediction per video, in input order.

    A frame-level model looks at the spec's T frames spread over each whole video, a face found on each (or, with
    ``fps``, at that many frames a second, faces detected on every few), each frame once
    (:func:`emovid.analysis.frame_analysis`); a clip-level one at one clip of T frames per video, ``batch_size``
    videos per model call (default: the predictor's options).
    """
    if predictor.frame_kind is not None:
        for path in paths:
            try:
                analysis = analyse_video(path, predictor, fps=fps, detect_every=DETECT_EVERY if fps else 1,
                                         batch_size=batch_size)
            except Exception as exc:  # whatever one video raises is its failure; the others still run
                yield as_failure(exc, path)
                continue
            yield Prediction(str(path), analysis.clip, {**analysis.video, **analysis.clip_meta})
        return
    spec = predictor.spec
    batch_size = batch_size or predictor.options.batch_size
    pending: list[Failure | tuple[str, Clip]] = []
    waiting = 0  # clips in ``pending``

    def flush() -> Iterator[Prediction | Failure]:
        clips = [item[1].frames for item in pending if not isinstance(item, Failure)]
        probs = iter(predictor.probabilities(np.stack(clips)) if clips else ())
        for item in pending:
            yield item if isinstance(item, Failure) else Prediction(item[0], next(probs), item[1].meta)
        pending.clear()

    for path in paths:
        try:
            clip = read_clip(path, spec.frames, predictor.resize, spec.crop, predictor.face_geometry)
            pending.append((str(path), clip))
            waiting += 1
        except Exception as exc:  # whatever one video raises is its failure; the others still run
            pending.append(as_failure(exc, path))
        if waiting == batch_size:
            yield from flush()
            waiting = 0
    yield from flush()


def predict_timeline(
    source: VideoSource | str | Path,
    predictor: Predictor,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int | None = None,
    fps: float = FPS,
) -> VideoAnalysis:
    """Probabilities of sliding windows over a whole video, and of the whole clip, from one streaming decode pass:
    :func:`emovid.analysis.analyse_video`.

    Args:
        source: the video.
        predictor: model and spec.
        window: window length in seconds (default: the spec's ``clip_seconds``, what the model was trained on).
        stride: seconds between window starts (default: half the window).
        batch_size: frames or windows per model call (default: the predictor's options).
        fps: frames a second a frame-level model looks at.

    Raises:
        VideoError: the video cannot be read.
    """
    return analyse_video(source, predictor, window, stride, fps=fps, batch_size=batch_size)


def predict_records(inputs: Sequence[str], predictor: Predictor, timeline: TimelineRequest | None = None,
                    shard: Shard | None = None, log: Callable[[str], None] = lambda line: None,
                    fps: float = FPS, faces: FaceMode = "main") -> list[dict]:
    """Videos (files, folders, zips, globs) to JSON-ready records, one per video, in input order.

    A video that fails gives a record with ``error`` (and a line to ``log``); the others go on. Each of a record's
    ``warnings`` is a ``note:`` line to ``log``. With a ``timeline``, each record holds its ``windows``, its answer is
    the timeline's whole video (from a frame-level model, the pool of every frame sampled at ``fps``), and the
    asked-for timeline files are written. With a ``shard``, only that shard of the sorted videos is run. In a
    timeline, frame-level models look at ``fps`` frames a second; without one, at the model's T frames over the
    whole video.

    With ``faces="all"``, every person in each video is tracked and judged (:func:`emovid.people.people_analysis`,
    always at ``fps`` frames a second): each record holds ``faces``, one per person, its top-level emotion is the
    main person's, and a timeline has a ``track`` per window (see :func:`emovid.records.people_record`).

    Raises:
        OutputError: a timeline file would overwrite an input or a video; raised before any video is read.
        ValueError: ``faces="all"`` with a model that cannot score faces frame by frame.
    """
    if faces == "all":
        from emovid.people import check_people_model

        check_people_model(predictor)
    names = predictor.spec.class_names
    videos, failures = find_videos(inputs, shard)
    records = [_failure_record(f, names, log) for f in failures]
    if timeline is None and faces == "all":
        for video in videos:
            records.append(_people(video, predictor, None, fps, log))
        return records
    if timeline is None:
        for outcome in predict_videos(videos, predictor):
            if isinstance(outcome, Failure):
                records.append(_failure_record(outcome, names, log))
                continue
            records.append(prediction_record(outcome, names))
            for warning in records[-1]["warnings"]:
                log(f"{outcome.source}: note: {warning}")
        return records
    paths = timeline_paths(videos, timeline)
    check_outputs([Output("--timeline-out" if timeline.prefix else "--timeline", prefix, "prefix")
                   for prefix, _ in paths if prefix is not None]
                  + [Output("--annotate", annotated, "video") for _, annotated in paths if annotated is not None],
                  [*inputs, *(v.path for v in videos)])
    for video, (prefix, annotated) in zip(videos, paths, strict=True):
        if faces == "all":
            records.append(_people(video, predictor, timeline, fps, log, prefix, annotated))
            continue
        try:
            result = predict_timeline(video, predictor, timeline.window, timeline.stride, fps=fps)
            windows = timeline_records(result)
            whole = Prediction(str(video), result.clip, {**result.video, **result.clip_meta})
            record = prediction_record(whole, names)
            extra = [w for w in timeline_facts(result)["warnings"] if w not in record["warnings"]]
            record = {**record, "warnings": record["warnings"] + extra, "windows": windows}
            for warning in record["warnings"]:
                log(f"{video}: note: {warning}")
            write_timeline_outputs(video, result, windows, prefix, annotated, log)
        except Exception as exc:  # whatever one video raises (reading, plotting, annotating) is its failure
            records.append(_failure_record(as_failure(exc, video), names, log))
            continue
        records.append(record)
    return records


def _failure_record(failure: Failure, names: Sequence[str], log: Callable[[str], None]) -> dict:
    log(f"{failure.source}: {failure.reason}")
    return prediction_record(failure, names)


def _people(video: VideoSource, predictor: Predictor, timeline: TimelineRequest | None, fps: float,
            log: Callable[[str], None], prefix: Path | None = None, annotated: Path | None = None) -> dict:
    """A video's ``--faces all`` record, its timeline files written where asked; its failure's record if it fails."""
    from emovid.people import people_analysis

    try:
        window, stride = (timeline.window, timeline.stride) if timeline else (None, None)
        result = people_analysis(video, predictor, window, stride, fps=fps)
        record = people_record(result, windows=timeline is not None)
        for warning in record["warnings"]:
            log(f"{video}: note: {warning}")
        if timeline is not None:
            write_timeline_outputs(video, result, record["windows"], prefix, annotated, log)
    except Exception as exc:  # whatever one video raises (reading, plotting, annotating) is its failure
        return _failure_record(as_failure(exc, video), predictor.spec.class_names, log)
    return record
