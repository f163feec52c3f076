"""Pictures of a timeline: the video with each moment's emotion written on it, and a plot over time.

The annotated copy streams: one frame is decoded, labelled and encoded at a time. Encoding uses PyAV's
libx264 here; decoding stays in :mod:`emovid.data.video`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from emovid.data.source import VideoSource
from emovid.data.video import open_video
from emovid.timeline import PeopleAnalysis, PersonAnalysis, VideoAnalysis


def segments(timeline: VideoAnalysis) -> np.ndarray:
    """Where each window is "current", as (W + 1,) edges in seconds: halfway between window centres.

    Windows overlap, so a moment belongs to the window whose centre is nearest; the first segment starts
    at the first window's start and the last ends at the last window's end.
    """
    centres = (timeline.starts + timeline.ends) / 2
    return np.concatenate([timeline.starts[:1], (centres[:-1] + centres[1:]) / 2, timeline.ends[-1:]])


def current_window(edges: np.ndarray, seconds: float) -> int:
    """Index of the segment (of :func:`segments`) holding time ``seconds``."""
    return int(np.clip(np.searchsorted(edges, seconds, side="right") - 1, 0, len(edges) - 2))


def draw_label(frame: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` on a dark band at the top left of an RGB (H, W, C) frame, scaled to the frame."""
    height = frame.shape[0]
    scale = max(0.3, height / 720)
    thickness = max(1, round(2 * scale))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(8 * scale))
    cv2.rectangle(frame, (0, 0), (w + 2 * pad, h + base + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(frame, text, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)
    return frame


def annotate_video(source: VideoSource | str | Path, out: str | Path, timeline: VideoAnalysis) -> int:
    """Write a copy of ``source`` with the current window's top emotion and probability on every frame.

    The copy has the same frame size, frame count and (average) frame rate, in display orientation.

    Returns:
        How many frames were written.

    Raises:
        VideoError: the video cannot be read.
    """
    edges = segments(timeline)
    labels = [f"{timeline.class_names[int(np.argmax(p))]} {p.max():.0%}" for p in timeline.probabilities]
    return _rewrite(source, out, lambda frame, seconds: draw_label(frame, labels[current_window(edges, seconds)]))


def annotate_people(source: VideoSource | str | Path, out: str | Path, analysis: PeopleAnalysis) -> int:
    """Write a copy of ``source`` with every tracked face drawn on each frame: its box, track number and current
    emotion (its window whose centre is nearest). A face is drawn where it was scored within one sampled frame's
    interval, its box linear between scored frames. Frame size, count and rate as :func:`annotate_video`.

    Returns:
        How many frames were written.
    """
    step = analysis.video["duration"] / max(analysis.sampled, 1)  # seconds one sampled frame stands for
    colours = matplotlib.colormaps["tab10"](np.arange(10))[:, :3] * 255

    def draw(frame: np.ndarray, seconds: float) -> np.ndarray:
        height, width = frame.shape[:2]
        for person in analysis.people:
            box = _box_at(person, seconds, step)
            if box is None:
                continue
            x0, y0, x1, y1 = (box * [width, height, width, height]).round().astype(int)
            centres = (person.starts + person.ends) / 2
            p = person.probabilities[int(np.argmin(np.abs(centres - seconds)))]
            text = f"{person.track} {analysis.class_names[int(np.argmax(p))]} {p.max():.0%}"
            draw_box(frame, (x0, y0, x1, y1), text, tuple(colours[(person.track - 1) % 10].tolist()))
        return frame

    return _rewrite(source, out, draw)


def _box_at(person: PersonAnalysis, seconds: float, step: float) -> np.ndarray | None:
    """The person's face box (fractions) at ``seconds``: linear between its scored frames, held for one sampled
    frame's interval beyond them; None elsewhere (also in a gap of more than two intervals)."""
    times, boxes = person.frames.times, person.frames.boxes
    i = int(np.searchsorted(times, seconds))
    before, after = (i - 1 if i > 0 else None), (i if i < len(times) else None)
    if before is not None and after is not None and times[after] - times[before] <= 2 * step:
        w = (seconds - times[before]) / max(times[after] - times[before], 1e-9)
        return boxes[before] + w * (boxes[after] - boxes[before])
    near = [j for j in (before, after) if j is not None and abs(times[j] - seconds) <= step]
    return boxes[near[0]] if near else None


def draw_box(frame: np.ndarray, box: tuple[int, int, int, int], text: str, colour: tuple[float, ...]) -> None:
    """Draw a face box on an RGB frame, with ``text`` on a band of its colour above it (below it at the top)."""
    scale = max(0.3, frame.shape[0] / 1080)
    thickness = max(1, round(2 * scale))
    x0, y0, x1, y1 = box
    cv2.rectangle(frame, (x0, y0), (x1, y1), colour, thickness)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = y0 - h - base - 4 if y0 - h - base - 4 >= 0 else y1
    cv2.rectangle(frame, (x0, top), (x0 + w + 4, top + h + base + 4), colour, cv2.FILLED)
    cv2.putText(frame, text, (x0 + 2, top + h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)


def _rewrite(source: VideoSource | str | Path, out: str | Path,
             draw: Callable[[np.ndarray, float], np.ndarray]) -> int:
    """Write a copy of ``source`` with ``draw(frame, seconds)`` applied to each RGB frame; the number of frames."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open_video(source) as reader, av.open(str(out), mode="w") as container:
        info = reader.info
        stream = container.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(1001))
        stream.width, stream.height = info.width, info.height
        # 4:2:0 needs even sizes; 4:4:4 keeps an odd-sized video's exact size.
        stream.pix_fmt = "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for index, frame in reader.stream():
            image = av.VideoFrame.from_ndarray(draw(frame, (index + 0.5) / info.fps), format="rgb24")
            container.mux(stream.encode(image))
            written += 1
        container.mux(stream.encode())
    return written


def plot_timeline(timeline: VideoAnalysis, path: Path, title: str = "") -> None:
    """Stacked class probabilities over time, with a band of the top emotion above; saved as PNG."""
    edges = segments(timeline)
    names = timeline.class_names
    colours = matplotlib.colormaps["tab10"](np.arange(len(names)))
    # Each window holds its value over its segment: a step plot, drawn as two points per segment.
    x = np.repeat(edges, 2)[1:-1]
    y = np.repeat(timeline.probabilities, 2, axis=0).T  # (K, 2W)
    # A Figure of its own, never pyplot: no global figure state, and a notebook's backend is left as it is.
    fig = Figure(figsize=(10, 4.5))
    band, ax = fig.subplots(2, 1, sharex=True, height_ratios=(1, 6))
    top = timeline.probabilities.argmax(axis=1)
    for i, k in enumerate(top):
        band.axvspan(edges[i], edges[i + 1], color=colours[k], linewidth=0)
    band.set_yticks([])
    band.set_ylabel("top", rotation=0, ha="right", va="center")
    ax.stackplot(x, y, labels=names, colors=colours, alpha=0.85)
    ax.set_xlim(0, max(edges[-1], timeline.video.get("duration", 0)))
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    band.set_title(title or Path(timeline.source).name)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def plot_people(analysis: PeopleAnalysis, path: Path, title: str = "") -> None:
    """One lane per person: its windows' stacked class probabilities over the video's time; saved as PNG."""
    names = analysis.class_names
    colours = matplotlib.colormaps["tab10"](np.arange(len(names)))
    lanes = max(1, len(analysis.people))
    fig = Figure(figsize=(10, 1.2 + 1.6 * lanes))
    axes = np.atleast_1d(fig.subplots(lanes, 1, sharex=True, squeeze=False)[:, 0])
    end = max([analysis.video.get("duration", 0), *(float(p.ends.max()) for p in analysis.people if len(p.ends))])
    for ax, person in zip(axes, analysis.people, strict=False):
        # Each window holds its value over the part of it nearest its centre, as segments() cuts a timeline.
        centres = (person.starts + person.ends) / 2
        left = np.maximum(person.starts, np.concatenate([person.starts[:1], (centres[:-1] + centres[1:]) / 2]))
        right = np.minimum(person.ends, np.concatenate([(centres[:-1] + centres[1:]) / 2, person.ends[-1:]]))
        bottom = np.zeros(len(centres))
        for k, name in enumerate(names):
            ax.bar(left, person.probabilities[:, k], width=right - left, bottom=bottom, align="edge",
                   color=colours[k], label=name, linewidth=0, alpha=0.85)
            bottom = bottom + person.probabilities[:, k]
        emotion = names[int(np.argmax(person.clip))]
        ax.set_ylabel(f"person {person.track}\n{emotion}", rotation=0, ha="right", va="center")
        ax.set_ylim(0, 1)
        ax.set_yticks([])
    if not analysis.people:
        axes[0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_yticks([])
    axes[-1].set_xlim(0, max(end, 1e-3))
    axes[-1].set_xlabel("time (s)")
    if analysis.people:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes[0].set_title(title or Path(analysis.source).name)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def face_thumbnails(source: VideoSource | str | Path, analysis: PeopleAnalysis, height: int = 64) -> dict[int, bytes]:
    """A small JPEG of each person's face, by track: its box (with a margin) on the middle one of its scored
    frames, ``height`` pixels high; the frames come from one decoding pass."""
    chosen = {p.track: len(p.frames.indices) // 2 for p in analysis.people}
    wanted = sorted({int(p.frames.indices[chosen[p.track]]) for p in analysis.people})
    if not wanted:
        return {}
    with open_video(source) as reader:
        frames = dict(zip(wanted, reader.frames_at(wanted), strict=True))
    thumbnails = {}
    for person in analysis.people:
        row = chosen[person.track]
        frame = frames[int(person.frames.indices[row])]
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = person.frames.boxes[row] * [w, h, w, h]
        mx, my = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
        left, top = max(0, int(x0 - mx)), max(0, int(y0 - my))
        crop = frame[top : max(top + 1, int(y1 + my)), left : max(left + 1, int(x1 + mx))]
        small = cv2.resize(crop, (max(1, round(height * crop.shape[1] / crop.shape[0])), height),
                           interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            thumbnails[person.track] = jpeg.tobytes()
    return thumbnails
