"""MP4 encoding of synthetic clips (H.264 video, optional AAC audio) and the check that a file is whole.

The video is encoded once; the full-AV file remuxes the same packets next to an audio track, as RAVDESS's
full-AV and video-only files are one recording.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import cv2
import numpy as np

from emovid.synthetic.speech import AUDIO_RATE

_AAC_FRAME = 1024  # samples per AAC frame


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def encode_video(frames: Iterable[np.ndarray], fps: float) -> bytes:
    """A video-only MP4 of ``frames`` (T, H, W, 3) uint8 BGR, or any iterable of (H, W, 3) frames (encoded as they
    come, so a long video need not be held in memory): H.264 (libx264), yuv420p, one encoder thread.

    The bytes, and so the decoded frames, are a function of the frames alone: one thread, and no
    macroblock-tree rate control, whose AVX-512 code gives run-to-run different output (seen with x264 in
    PyAV 18 on an AVX-512 Xeon). Without it, crf 26 gives about the size and fidelity of x264's default crf
    23 with it. One thread is also the fastest choice when clips are encoded in parallel processes.
    """
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        options = {"crf": "26", "preset": "veryfast", "x264-params": "mbtree=0"}
        _encode_frames(container, container.add_stream("libx264", rate=_rate(fps), options=options), frames)
    return buffer.getvalue()


def encode_flv(frames: np.ndarray, fps: float) -> bytes:
    """A video-only FLV of ``frames`` (T, H, W, 3) uint8 BGR with FLV1 (Sorenson H.263) video, like CREMA-D's
    files but for the codec: theirs is VP6, which FFmpeg can decode but not encode. Like CREMA-D's, the file has
    no keyframe index, so readers cannot seek in it."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flv") as container:
        stream = container.add_stream("flv", rate=_rate(fps))
        stream.codec_context.bit_rate = 400_000
        _encode_frames(container, stream, frames)
    return buffer.getvalue()


def _encode_frames(container: av.container.OutputContainer, stream: av.VideoStream,
                   frames: Iterable[np.ndarray]) -> None:
    """Encode uint8 BGR (H, W, 3) frames as yuv420p into ``stream``, one encoder thread, and flush it."""
    for i, image in enumerate(frames):
        if i == 0:  # the size is the first frame's
            stream.height, stream.width = image.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
        # OpenCV's conversion is BT.601 limited range, what decoders assume for untagged video, and several
        # times faster than swscale's.
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), np.uint8)  # uint8 already: no copy
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def add_audio(video_mp4: bytes, audio: np.ndarray) -> bytes:
    """The MP4 ``video_mp4`` with an AAC mono track of ``audio`` (samples,) float32 at AUDIO_RATE added."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(video_mp4)) as source, av.open(buffer, "w", format="mp4") as container:
        video_in = source.streams.video[0]
        video_out = container.add_stream_from_template(video_in)
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono", options={"aac_coder": "fast"})
        sound.bit_rate = 32_000
        packets = [p for p in source.demux(video_in) if p.dts is not None]
        for packet in packets:
            packet.stream = video_out
        container.mux(packets)
        for start in range(0, len(audio), _AAC_FRAME):
            chunk = audio[None, start : start + _AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return buffer.getvalue()


def is_complete(file: Path | BinaryIO, width: int, height: int, num_frames: int, with_audio: bool) -> bool:
    """Whether a video opens with the expected size, frame count and audio (truncation loses an MP4's index; an
    FLV, which records no frame count, has its packets counted)."""
    try:
        with av.open(file) as container:
            videos, audios = container.streams.video, container.streams.audio
            if len(videos) != 1 or len(audios) != int(with_audio):
                return False
            v = videos[0]
            frames = v.frames or sum(1 for p in container.demux(v) if p.size)
            return (v.width, v.height, frames) == (width, height, num_frames)
    except (av.FFmpegError, OSError, ValueError):
        return False
