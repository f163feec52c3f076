"""Videos the tests make themselves: frames that carry their own index as a visible pattern."""

from __future__ import annotations

import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8


def index_frame(index: int, width: int, height: int) -> np.ndarray:
    """An RGB frame whose top half shows ``index`` as 8 black/white bars; bottom half a gradient."""
    frame = np.zeros((height, width, 3), np.uint8)
    bar = width // BITS
    for bit in range(BITS):
        if index >> bit & 1:
            frame[: height // 2, bit * bar : (bit + 1) * bar] = 255
    frame[height // 2 :, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    frame[height // 2 :, :, 1] = 128
    return frame


def read_index(frame: np.ndarray) -> int:
    """Decode the index pattern of a full-size (H, W, C) frame made by :func:`index_frame`."""
    height, width = frame.shape[:2]
    bar = width // BITS
    top = frame[: height // 4]
    inner = [top[:, bit * bar + bar // 4 : (bit + 1) * bar - bar // 4] for bit in range(BITS)]
    return sum(1 << bit for bit, region in enumerate(inner) if region.mean() > 127)


def make_video(
    path: Path,
    num_frames: int = 30,
    width: int = 160,
    height: int = 96,
    fps: int = 30,
    codec: str = "libx264",
    bframes: bool = True,
    rotation: int = 0,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
    frame_fn=index_frame,
    vfr: bool = False,
    durations_ms: list[int] | None = None,
) -> Path:
    """Write a video whose frame i shows ``frame_fn(i, width, height)``.

    ``vfr``: frames last 45 and 20 ms in turn; ``durations_ms``: frame i lasts ``durations_ms[i]`` ms.
    """
    if vfr:
        durations_ms = [20 if i % 2 else 45 for i in range(num_frames)]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast", "bf": "3" if bframes else "0"}
        if durations_ms:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        t_ms = 0
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, width, height), format="rgb24")
            if durations_ms:
                frame.pts, frame.time_base = t_ms, Fraction(1, 1000)
                t_ms += durations_ms[i]
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio_stream is not None:
            samples = np.zeros((1, 16000 * num_frames // fps), np.float32)
            samples[0] = 0.1 * np.sin(np.arange(samples.shape[1]) / 10)
            aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            aframe.sample_rate = 16000
            container.mux(audio_stream.encode(aframe))
            container.mux(audio_stream.encode())
    return path


def make_cremad_flv(path: Path, num_frames: int = 30, width: int = 160, height: int = 96, start_ms: int = 67) -> Path:
    """An FLV laid out like CREMA-D's: MP3 audio beside the video, whose first frame is at ``start_ms``.

    FFmpeg's FLV muxer writes no keyframe index, so seeking to time 0 fails on such a file.
    """
    with av.open(str(path), mode="w", format="flv") as container:
        stream = container.add_stream("flv", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        audio = container.add_stream("libmp3lame", rate=22050)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = start_ms + round(i * 1000 / 30), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 22050 * num_frames // 30), np.float32), format="fltp",
                                             layout="mono")
        samples.sample_rate, samples.pts = 22050, 0
        container.mux(audio.encode(samples))
        container.mux(audio.encode())
    return path


def zip_with_corrupt_member(path: Path, member: str, data: bytes) -> Path:
    """A zip whose deflated ``member`` has damaged compressed data (zlib fails before any CRC check)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    raw = bytearray(path.read_bytes())
    start = 30 + len(member.encode()) + 100  # local header, name, then 100 bytes into the deflate stream
    raw[start : start + 8] = bytes(b ^ 0x55 for b in raw[start : start + 8])
    path.write_bytes(bytes(raw))
    return path


def mixed_collection(root: Path) -> tuple[list[str], list[str]]:
    """A RAVDESS-named folder of good mp4s, a CREMA-D-style flv (good too) and a zip with a corrupt member.

    Returns how the good videos and the bad ones are named in reports (a zip member as ``ARCHIVE:MEMBER``).
    """
    folder = root / "Actor_01"
    folder.mkdir(parents=True)
    good = [make_video(folder / f"02-01-0{e}-01-01-01-01.mp4", num_frames=12, bframes=False) for e in (3, 4)]
    good.append(make_cremad_flv(folder / "02-01-05-01-01-01-01.flv", num_frames=12))
    member = "Actor_02/02-01-03-01-01-01-02.mp4"
    archive = zip_with_corrupt_member(root / "Video_Speech_Actor_02.zip", member,
                                      make_video(root / "source.mp4", 30, 320, 180).read_bytes())
    (root / "source.mp4").unlink()
    return [str(p) for p in good], [f"{archive}:{member}"]


def truncated_faststart(source: Path, path: Path, keep: float = 0.5) -> Path:
    """``source`` remuxed with its index first (as a streaming mp4 is), then cut after ``keep`` of its bytes:
    the header still declares the whole video, the file holds only its start."""
    whole = path.with_suffix(".whole.mp4")
    with av.open(str(source)) as src, av.open(str(whole), "w", format="mp4", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:  # the flush packets at the end carry nothing
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: round(len(data) * keep)])
    return path
