"""Pictures of a timeline: the video with each moment's emotion written on it, and a plot over time.

The annotated copy streams: one frame is decoded, labelled and encoded at a time. Encoding uses PyAV's
libx264 here; decoding stays in :mod:`emovid.data.video`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from emovid.data.source import VideoSource
from emovid.data.video import open_video
from emovid.timeline import VideoAnalysis


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
            text = labels[current_window(edges, (index + 0.5) / info.fps)]
            image = av.VideoFrame.from_ndarray(draw_label(frame, text), format="rgb24")
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
