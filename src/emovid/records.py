"""Predictions as records: flat JSON-ready dicts per video and per window, CSV text, and a timeline's files."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emovid.data.source import VideoSource
from emovid.data.video import truncation_warning
from emovid.outputs import prefix_files
from emovid.timeline import Failure, PeopleAnalysis, PersonAnalysis, Prediction, TimelineRequest, VideoAnalysis


def _top(probabilities: np.ndarray, class_names: Sequence[str]) -> tuple[str, float]:
    best = int(np.argmax(probabilities))
    return class_names[best], float(probabilities[best])


def prediction_record(result: Prediction | Failure, class_names: Sequence[str]) -> dict:
    """A flat, JSON-ready record: file, top emotion and its probability, every class's, and what the clip says
    about the video (see :func:`video_facts`); or the error."""
    if isinstance(result, Failure):
        return {"file": result.source, "error": result.reason}
    emotion, probability = _top(result.probabilities, class_names)
    face_found = result.meta.get("face_found")
    return {
        "file": result.source,
        "emotion": emotion,
        "probability": round(probability, 6),
        "probabilities": {c: round(float(p), 6) for c, p in zip(class_names, result.probabilities, strict=True)},
        **({"face_box": result.meta["face_box"]} if "face_box" in result.meta else {}),
        **video_facts(result.meta, face_found, ["no face found: the model saw the centre of the frame"]
                      if face_found is False else []),
    }


def video_facts(video: dict, face_found: bool | None, warnings: Sequence[str] = ()) -> dict:
    """What a record says beside the emotion, from a video's info (``VideoInfo.as_dict()`` or clip metadata).

    ``face_found`` (None: the model does not look for faces), ``decoded_seconds`` (the video the file holds),
    ``declared_seconds`` (what its header says, None when it says nothing; a truncated file holds less) and
    ``warnings``, one line each: a truncated file first, then ``warnings``.
    """
    decoded, declared = video.get("duration"), video.get("declared_duration")
    short = truncation_warning(decoded, declared) if decoded is not None else None
    return {
        "face_found": face_found,
        "decoded_seconds": None if decoded is None else round(decoded, 3),
        "declared_seconds": None if declared is None else round(declared, 3),
        "warnings": [*([short] if short else []), *warnings],
    }


def timeline_facts(timeline: VideoAnalysis) -> dict:
    """:func:`video_facts` of a whole timeline: a face found in any window, and a warning for windows without."""
    found = [meta["face_found"] for meta in timeline.window_meta if "face_found" in meta]
    warnings = [timeline.note] if timeline.note else []
    if found and not all(found):
        warnings.append("no face found in any window" if not any(found) else
                        f"no face found in {found.count(False)} of {len(found)} windows")
    return video_facts(timeline.video, any(found) if found else None, warnings)


def timeline_records(timeline: VideoAnalysis) -> list[dict]:
    """One record per window: start and end in seconds, top emotion, every class's probability."""
    records = []
    for start, end, p, meta in zip(timeline.starts, timeline.ends, timeline.probabilities, timeline.window_meta,
                                   strict=True):
        emotion, probability = _top(p, timeline.class_names)
        records.append({
            "start": round(float(start), 4),
            "end": round(float(end), 4),
            "emotion": emotion,
            "probability": round(probability, 6),
            "probabilities": {c: round(float(v), 6) for c, v in zip(timeline.class_names, p, strict=True)},
            **({"face_found": meta["face_found"]} if "face_found" in meta else {}),
        })
    return records


def frame_records(analysis: VideoAnalysis) -> list[dict]:
    """One record per sampled frame of a frame-level model (none from a clip-level one): time in seconds, top emotion
    and its probability, and with face crops whether the face was found there."""
    frames = analysis.frames
    if frames is None:
        return []
    face = analysis.clip_meta.get("crop") == "face"
    records = []
    for time, p, found in zip(frames.times, frames.probabilities, frames.face_found, strict=True):
        emotion, probability = _top(p, analysis.class_names)
        records.append({"time": round(float(time), 4), "emotion": emotion, "probability": round(probability, 6),
                        **({"face_found": bool(found)} if face else {})})
    return records


def _probabilities(p: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    return {c: round(float(v), 6) for c, v in zip(class_names, p, strict=True)}


def face_record(person: PersonAnalysis, class_names: Sequence[str]) -> dict:
    """One person's record: track number, when and how long on screen, median box (fractions of the frame), the
    whole track's emotion and probabilities, and on how many sampled frames its face was cut and scored."""
    emotion, probability = _top(person.clip, class_names)
    return {
        "track": person.track,
        "first_seen": round(person.first_seen, 3),
        "last_seen": round(person.last_seen, 3),
        "seconds_visible": round(person.seconds_visible, 3),
        "box": list(person.box),
        "emotion": emotion,
        "probability": round(probability, 6),
        "probabilities": _probabilities(person.clip, class_names),
        "face_found_frames": len(person.frames.indices),
    }


def people_record(analysis: PeopleAnalysis, windows: bool = False) -> dict:
    """A video's record with ``--faces all``: its ``faces`` (see :func:`face_record`), and at the top the main
    person's emotion (the longest visible; null without faces) with the video's facts; with ``windows``, each
    person's windows (see :func:`people_window_records`)."""
    names = analysis.class_names
    main = analysis.person(analysis.main) if analysis.main is not None else None
    warnings = [analysis.note] if analysis.note else []
    if main is None:
        briefly = f"; {analysis.dropped} seen too briefly to judge" if analysis.dropped else ""
        warnings.append(f"no face found{briefly}")
    top = _top(main.clip, names) if main else (None, None)
    record = {
        "file": analysis.source,
        "emotion": top[0],
        "probability": None if top[1] is None else round(top[1], 6),
        "probabilities": _probabilities(main.clip, names) if main else None,
        "main_track": analysis.main,
        "faces": [face_record(p, names) for p in analysis.people],
        **video_facts(analysis.video, main is not None, warnings),
    }
    if windows:
        record["windows"] = people_window_records(analysis)
    return record


def people_window_records(analysis: PeopleAnalysis) -> list[dict]:
    """One record per person and window the person is in: track, start and end, top emotion, probabilities."""
    records = []
    for person in analysis.people:
        for start, end, p in zip(person.starts, person.ends, person.probabilities, strict=True):
            emotion, probability = _top(p, analysis.class_names)
            records.append({"track": person.track, "start": round(float(start), 4), "end": round(float(end), 4),
                            "emotion": emotion, "probability": round(probability, 6),
                            "probabilities": _probabilities(p, analysis.class_names)})
    return records


def people_frame_records(analysis: PeopleAnalysis) -> list[dict]:
    """One record per person and sampled frame its face was scored on: track, time, top emotion, probability."""
    records = []
    for person in analysis.people:
        for time, p in zip(person.frames.times, person.frames.probabilities, strict=True):
            emotion, probability = _top(p, analysis.class_names)
            records.append({"track": person.track, "time": round(float(time), 4), "emotion": emotion,
                            "probability": round(probability, 6)})
    return records


def face_rows(records: Sequence[dict]) -> list[dict]:
    """``--faces all`` records as CSV rows: one per person (file first), one with an empty track for a video
    without faces, and errors as they are."""
    rows: list[dict] = []
    for record in records:
        if "error" in record:
            rows.append(record)
            continue
        facts = {"file": record["file"], "decoded_seconds": record["decoded_seconds"],
                 "declared_seconds": record["declared_seconds"], "warnings": record["warnings"]}
        rows.extend([{"file": record["file"], **face, **facts} for face in record["faces"]]
                    or [{"file": record["file"], "track": None, **facts}])
    return rows


def csv_text(records: Sequence[dict], class_names: Sequence[str]) -> str:
    """Records as CSV: their plain fields, then one column per class probability."""
    plain = list(dict.fromkeys(k for r in records for k in r if k != "probabilities"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*plain, *class_names])
    for r in records:
        probs = r.get("probabilities", {})
        writer.writerow([_cell(r.get(k)) for k in plain] + [probs.get(c, "") for c in class_names])
    return out.getvalue()


def _cell(value: object) -> object:
    return "" if value is None else json.dumps(value) if isinstance(value, list) else value


def write_text(target: str | Path, text: str) -> None:
    """Write to a file, or to standard output when ``target`` is ``-``."""
    if str(target) == "-":
        sys.stdout.write(text)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(text)


def timeline_paths(videos: Sequence[VideoSource], request: TimelineRequest) -> list[tuple[Path | None, Path | None]]:
    """Per video, where its timeline goes: the PREFIX of ``PREFIX.csv/.json/.png`` and the annotated copy (None:
    not written).

    A request's prefix and annotated copy get ``-<stem>`` added when there are several videos. Files beside the
    videos are ``<folder>/<stem>.timeline.*`` (beside the archive for a zip member), ``<name>.timeline.*`` when
    two videos there share a stem.
    """
    videos = list(videos)
    beside = [_beside_prefix(v, Path(v.name).stem) for v in videos]
    result: list[tuple[Path | None, Path | None]] = []
    for video, own in zip(videos, beside, strict=True):
        tag = _video_tag(video, videos)
        prefix = None
        if request.prefix is not None:
            prefix = Path(f"{request.prefix}-{tag}" if tag else request.prefix)
        elif request.beside:
            shared = any(b == own and str(v) != str(video) for v, b in zip(videos, beside, strict=True))
            prefix = _beside_prefix(video, video.name) if shared else own
        annotated = request.annotate
        if annotated is not None and tag:
            annotated = annotated.with_name(f"{annotated.stem}-{tag}{annotated.suffix}")
        result.append((prefix, annotated))
    return result


def _beside_prefix(video: VideoSource, name: str) -> Path:
    return video.path.parent / f"{name}.timeline"


def _video_tag(video: VideoSource, videos: list[VideoSource]) -> str | None:
    """What tells a video's output files apart: None for a single video, else its stem (numbered if repeated)."""
    if len(videos) == 1:
        return None
    stem = Path(video.name).stem
    return stem if sum(Path(v.name).stem == stem for v in videos) == 1 else f"{stem}-{videos.index(video)}"


def write_timeline_outputs(video: VideoSource, result: VideoAnalysis | PeopleAnalysis, windows: list[dict],
                           prefix: Path | None, annotated: Path | None,
                           log: Callable[[str], None] = lambda line: None) -> None:
    """Write a video's timeline as ``PREFIX.csv/.json/.png`` and its annotated copy, where given (see
    :func:`timeline_paths`). Of every person (a :class:`PeopleAnalysis`): windows and frames with a ``track``
    column, one lane per person in the plot, every tracked face drawn on the copy."""
    from emovid.annotate import annotate_people, annotate_video, plot_people, plot_timeline

    if isinstance(result, PeopleAnalysis):
        if prefix is not None:
            csv_path, json_path, png_path = prefix_files(prefix)
            write_text(csv_path, csv_text(windows, result.class_names))
            record = {"file": result.source, "video": result.video, "note": result.note,
                      "faces": [face_record(p, result.class_names) for p in result.people], "windows": windows,
                      "frames": people_frame_records(result)}
            write_text(json_path, json.dumps(record, indent=2) + "\n")
            plot_people(result, png_path)
            log(f"timeline of {video}: {prefix}.csv, .json, .png ({len(result.people)} people)")
        if annotated is not None:
            frames = annotate_people(video, annotated, result)
            log(f"annotated {video}: {annotated} ({frames} frames, {len(result.people)} people)")
        return
    if prefix is not None:
        csv_path, json_path, png_path = prefix_files(prefix)
        write_text(csv_path, csv_text(windows, result.class_names))
        record = {"file": result.source, "video": result.video, "note": result.note, "windows": windows,
                  "frames": frame_records(result)}
        write_text(json_path, json.dumps(record, indent=2) + "\n")
        plot_timeline(result, png_path)
        log(f"timeline of {video}: {prefix}.csv, .json, .png")
    if annotated is not None:
        frames = annotate_video(video, annotated, result)
        log(f"annotated {video}: {annotated} ({frames} frames)")
