"""Video decoding behind a small interface: open a video, read its info, get frames at indices.

Only this module imports PyAV. Frames come back as uint8 RGB arrays (H, W, C), already resized by
the caller's :class:`FrameGeometry`, because resizing during PyAV's colour conversion (one swscale
pass) is cheaper than converting at full size and resizing afterwards. Face cropping is the exception: it
needs the whole frame, so :func:`clip_geometry` and :func:`finish_clip` decode at a working size and crop
after detection; read_clip and streaming callers (timelines) share them, so both give the same pixels.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from emovid.data.source import VideoSource
from emovid.faces import DETECT_WIDTH, FaceGeometry, crop_to_face


class VideoError(Exception):
    """A video that cannot be used; the message is one line that names the file."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, in display orientation (after applying rotation metadata).

    ``duration`` is what the file holds (its frames times the frame rate); ``declared_duration`` what its
    header says the video stream lasts, None when it says nothing. A file cut short keeps its header, so the
    two then differ: see :func:`truncation_warning`.
    """

    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int
    declared_duration: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "num_frames": self.num_frames,
            "fps": self.fps,
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "declared_duration": self.declared_duration,
        }


TRUNCATION_SLACK = 0.5  # seconds a header's duration may exceed the frames' (a longer audio track, an edit list)


def truncation_warning(decoded: float, declared: float | None) -> str | None:
    """One line when a video's frames stop well before the length its header declares, else None."""
    if declared is None or declared - decoded <= TRUNCATION_SLACK:
        return None
    return f"decoded {decoded:.1f} s of {declared:.1f} s: the file is truncated"


@dataclass(frozen=True)
class FrameGeometry:
    """Where a display-oriented frame of size (width, height) goes: scale to ``scaled``, then crop.

    ``crop`` is (left, top, width, height) in the scaled frame.
    """

    scaled: tuple[int, int]
    crop: tuple[int, int, int, int]


def uniform_indices(num_frames: int, count: int) -> np.ndarray:
    """Indices of ``count`` frames spread uniformly over ``num_frames``: the centre of equal segments.

    With fewer frames than ``count`` some indices repeat (in order), so a clip always has ``count`` frames.
    """
    if num_frames < 1 or count < 1:
        raise ValueError(f"need num_frames >= 1 and count >= 1, got {num_frames} and {count}")
    return np.floor((np.arange(count) + 0.5) * num_frames / count).astype(np.int64)


def sample_by_time(timestamps: Sequence[float] | np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` frames spread uniformly in time: the frame on screen at the centre of each of
    ``count`` equal spans of the video.

    Args:
        timestamps: every frame's presentation time in seconds, increasing; the last frame lasts the mean
            frame duration.
        count: frames wanted; a frame on screen for longer than a span can come back more than once.

    On constant-frame-rate video this is :func:`uniform_indices`; on variable-frame-rate video it does not
    crowd the clip into the stretches with many short frames.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    if len(times) < 1 or count < 1:
        raise ValueError(f"need at least one timestamp and count >= 1, got {len(times)} and {count}")
    step = (times[-1] - times[0]) / max(1, len(times) - 1)
    grid = times[0] + step * np.arange(len(times))
    # Constant rate up to timestamps rounded to the time base (whole milliseconds in FLV): counting frames is
    # exact there, where comparing rounded times would move frames at span boundaries back by one.
    if np.abs(times - grid).max() <= step / 4:
        return uniform_indices(len(times), count)
    targets = times[0] + (np.arange(count) + 0.5) * (times[-1] + step - times[0]) / count
    return (np.searchsorted(times, targets, side="right") - 1).astype(np.int64)


def _rotation_of(frame: av.VideoFrame) -> int:
    # PyAV reports the display matrix angle counter-clockwise; normalise to 0, 90, 180, 270.
    return int(round(frame.rotation / 90.0)) % 4 * 90


def _to_display(array: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a decoded (H, W, C) array into display orientation (counter-clockwise rotation)."""
    return np.ascontiguousarray(np.rot90(array, k=rotation // 90)) if rotation else array


class VideoReader:
    """An open video. Use as a context manager; frames are read with :meth:`frames_at`."""

    def __init__(self, source: VideoSource | str | Path) -> None:
        self.source = source if isinstance(source, VideoSource) else VideoSource(Path(source))
        self.name = self.source.display
        self._stream_io: BinaryIO | None = None
        try:
            self._stream_io = self.source.open()
            if self._stream_io.seek(0, 2) == 0:
                raise VideoError(f"{self.name}: empty file (0 bytes)")
            self._stream_io.seek(0)
            self._container = av.open(self._stream_io, mode="r")
        except VideoError:
            self.close()
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # bad CRC, bad deflate data, cut short
            self.close()
            raise VideoError(f"{self.name}: broken zip member ({_reason(exc)})") from None
        except (av.FFmpegError, OSError, ValueError, KeyError) as exc:
            self.close()
            raise VideoError(f"{self.name}: not a readable video, or truncated ({_reason(exc)})") from None
        streams = self._container.streams.video
        if not streams:
            self.close()
            raise VideoError(f"{self.name}: no video stream")
        self._stream = streams[0]
        _decode_in_threads(self._stream)
        self._pts = self._presentation_timestamps()
        if not self._pts:
            self.close()
            raise VideoError(f"{self.name}: the video stream holds no frames")
        self.info = self._read_info()

    def _presentation_timestamps(self) -> list[int]:
        """Every frame's pts in presentation order, from one demux pass (packets only, no decoding)."""
        pts: list[int] = []
        try:
            for packet in self._container.demux(self._stream):
                # Packets an mp4 edit list discards are never shown: the decoder drops them too. A corrupt
                # packet (the file ends inside it, as a cut-short download does) is skipped by _decode too.
                if packet.size and packet.pts is not None and not packet.is_discard and not packet.is_corrupt:
                    pts.append(packet.pts)
        except av.FFmpegError as exc:
            if not pts:
                self.close()
                raise VideoError(f"{self.name}: unreadable video data ({_reason(exc)})") from None
        return sorted(set(pts))

    @property
    def timestamps(self) -> np.ndarray:
        """Every frame's presentation time in seconds (F,), in presentation order."""
        return np.array(self._pts, dtype=np.float64) * float(self._stream.time_base or 0)

    def _read_info(self) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        num_frames = len(self._pts)
        time_base = float(stream.time_base) if stream.time_base else 0.0
        if time_base and num_frames > 1:
            span = (self._pts[-1] - self._pts[0]) * time_base
            # Measured rate is right for variable-frame-rate video where the header's is not.
            fps = (num_frames - 1) / span if span > 0 else float(rate or 0)
        else:
            fps = float(rate) if rate else 0.0
        fps = round(fps, 6) or 25.0
        first = self._first_frame()
        rotation = _rotation_of(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(num_frames, fps, num_frames / fps, width, height, rotation, self._declared_duration())

    def _declared_duration(self) -> float | None:
        """The video stream's length from the header, else the container's (which counts audio too)."""
        stream = self._stream
        if stream.duration and stream.time_base:
            return round(float(stream.duration * stream.time_base), 6)
        if self._container.duration:
            return round(self._container.duration / av.time_base, 6)
        return None

    def _first_frame(self) -> av.VideoFrame:
        for frame in self._decode():
            return frame
        self.close()
        raise VideoError(f"{self.name}: no frame could be decoded")

    def _decode(self, wanted: set[int] | None = None) -> Iterator[av.VideoFrame]:
        """Decode from the start. With ``wanted`` pts, skip decoding of unwanted non-reference frames."""
        context = None
        try:
            self._rewind()
            context = self._stream.codec_context
            for packet in self._container.demux(self._stream):
                if packet.is_corrupt:  # cut short by the end of the file, say: decoding it would fail and end the pass
                    continue
                if wanted is not None:
                    # Non-reference frames nobody asked for need not be decoded at all; reference frames
                    # still are (others depend on them), so every wanted frame comes back exactly.
                    context.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
                yield from packet.decode()
        except av.FFmpegError as exc:
            raise VideoError(f"{self.name}: corrupt or truncated video data ({_reason(exc)})") from None
        finally:
            if context is not None:
                context.skip_frame = "DEFAULT"

    def _rewind(self) -> None:
        """Go back to the first packet: seek when the container can, else reopen it from byte 0.

        FLV without a keyframe index (CREMA-D's) cannot seek to a time before its first video keyframe,
        and a container's seek may simply be unsupported; reading from the first byte again always works.
        """
        try:
            self._container.seek(0, stream=self._stream)
            return
        except av.FFmpegError:
            pass
        self._container.close()
        self._stream_io.seek(0)  # type: ignore[union-attr]  # never None while the container is open
        self._container = av.open(self._stream_io, mode="r")
        self._stream = self._container.streams.video[0]
        _decode_in_threads(self._stream)

    def frames_at(self, indices: Sequence[int], geometry: FrameGeometry | None = None) -> np.ndarray:
        """Frames at presentation indices as uint8 RGB (T, H, W, C), in the order of ``indices``.

        Args:
            indices: frame indices in ``[0, num_frames)``; repeats allowed.
            geometry: how to scale and crop each display-oriented frame; None keeps full size.

        Only wanted frames are converted and resized.
        """
        kept = dict(self.stream(indices, geometry))
        return np.stack([kept[i] for i in indices])

    def stream(
        self, indices: Iterable[int] | None = None, geometry: FrameGeometry | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Frames as (index, uint8 RGB (H, W, C)) pairs in presentation order, each once, from one decode pass.

        Nothing is kept between frames, so a caller that holds only what it needs reads any length of video.

        Args:
            indices: frame indices in ``[0, num_frames)`` (any order, repeats ignored); None: every frame the
                decoder gives, without complaint if a damaged file gives fewer than ``num_frames``.
            geometry: how to scale and crop each display-oriented frame; None keeps full size.

        Raises:
            VideoError: some asked-for frames could not be decoded (raised after the others are yielded).
        """
        n = self.info.num_frames
        if indices is None:
            index_of = {pts: i for i, pts in enumerate(self._pts)}
            wanted = None
        else:
            chosen = set(indices)
            if any(not 0 <= i < n for i in chosen):
                raise ValueError(f"{self.name}: frame index out of range [0, {n})")
            index_of = {self._pts[i]: i for i in chosen}
            wanted = set(index_of)
        asked = len(index_of)
        for frame in self._decode(wanted):
            index = index_of.pop(frame.pts, None) if frame.pts is not None else None
            if index is not None:
                yield index, self._convert(frame, geometry)
                if not index_of:
                    return
        if wanted is not None and index_of:
            raise VideoError(
                f"{self.name}: {len(index_of)} of {asked} frames could not be decoded (truncated video?)"
            )

    def _convert(self, frame: av.VideoFrame, geometry: FrameGeometry | None) -> np.ndarray:
        rotation = self.info.rotation
        if geometry is None:
            return _to_display(frame.to_ndarray(format="rgb24"), rotation)
        width, height = geometry.scaled
        if rotation in (90, 270):
            width, height = height, width
        array = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
        array = _to_display(array, rotation)
        left, top, crop_w, crop_h = geometry.crop
        return np.ascontiguousarray(array[top : top + crop_h, left : left + crop_w])

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
        if self._stream_io is not None:
            self._stream_io.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_decode_threads = 0  # threads FFmpeg decodes a video on: 0 lets it use every core


def set_decode_threads(count: int) -> None:
    """Threads FFmpeg decodes each video opened from now on in this process with: 0 (the default) for every core,
    1 where worker processes already use every core."""
    global _decode_threads
    _decode_threads = count


def _decode_in_threads(stream: av.video.stream.VideoStream) -> None:
    """Let FFmpeg decode the stream on :func:`set_decode_threads` threads (frame and slice threads), before its codec
    opens. Frame threads decode each packet with the ``skip_frame`` set when it was sent, so skipping unwanted
    non-reference frames works as before, and the frames that come back are the same, bit for bit."""
    if _decode_threads != 1:
        stream.thread_type = "AUTO"
        stream.thread_count = _decode_threads


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def failure_reason(error: BaseException, name: str) -> str:
    """One line on why a file failed: a VideoError's message without the file's name; anything else, with its
    type, since an unexpected error's message alone rarely says what went wrong."""
    if isinstance(error, VideoError):
        return str(error).removeprefix(f"{name}: ")
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def open_video(source: VideoSource | str | Path) -> Iterator[VideoReader]:
    """Open a video for reading; raises :class:`VideoError` with a one-line reason."""
    reader = VideoReader(source)
    try:
        yield reader
    finally:
        reader.close()


def intelligent_geometry(width: int, height: int, short_side: int, crop: int) -> FrameGeometry:
    """Scale so the short side is ``short_side``, then take the centre ``crop`` x ``crop`` square."""
    if crop > short_side:
        raise ValueError(f"crop {crop} is larger than the short side {short_side}")
    scale = short_side / min(width, height)
    scaled_w = short_side if width <= height else max(short_side, math.floor(width * scale + 0.5))
    scaled_h = short_side if height <= width else max(short_side, math.floor(height * scale + 0.5))
    left, top = (scaled_w - crop) // 2, (scaled_h - crop) // 2
    return FrameGeometry((scaled_w, scaled_h), (left, top, crop, crop))


def naive_geometry(size: int) -> FrameGeometry:
    """Squash the whole frame to ``size`` x ``size`` regardless of aspect ratio."""
    return FrameGeometry((size, size), (0, 0, size, size))


RESIZE_MODES = ("intelligent", "naive")


@dataclass(frozen=True)
class Resize:
    """How clips are resized: ``intelligent`` (short side, then centre crop) or ``naive`` (squash)."""

    mode: str = "intelligent"
    size: int = 224
    short_side: int = 256

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.mode!r}; choose from {', '.join(RESIZE_MODES)}")
        if self.mode == "intelligent" and self.size > self.short_side:
            raise ValueError(f"crop size {self.size} is larger than the short side {self.short_side}")

    def geometry(self, width: int, height: int) -> FrameGeometry:
        if self.mode == "naive":
            return naive_geometry(self.size)
        return intelligent_geometry(width, height, self.short_side, self.size)

    def center_region(self, width: int, height: int) -> tuple[int, int, int, int]:
        """What :meth:`geometry` keeps of a (width, height) frame, as (left, top, width, height) in its pixels."""
        if self.mode == "naive":
            return 0, 0, width, height
        side = min(width, height, round(min(width, height) * self.size / self.short_side))
        return (width - side) // 2, (height - side) // 2, side, side


@dataclass
class Clip:
    """T frames of one video as uint8 RGB (T, C, H, W), with where they came from."""

    frames: np.ndarray
    meta: dict


CROP_MODES = ("center", "face")
FACE_WORKING_SIDE = 480  # short side of the frames a face crop is cut from (or the video's own, if smaller)


def clip_geometry(resize: Resize, crop: str, width: int, height: int) -> FrameGeometry:
    """How to decode the frames of a clip from a (width, height) video.

    ``center``: straight to the model's input. ``face``: whole frames at a working size, cropped afterwards
    by :func:`finish_clip`; big enough that the detector sees :data:`~emovid.faces.DETECT_WIDTH` pixels, a
    face filling half the frame's height gives ``resize.size`` pixels without upscaling, and the short side
    keeps :data:`FACE_WORKING_SIDE` pixels, so the small faces of wide shots keep their detail.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"unknown crop {crop!r}; choose from {', '.join(CROP_MODES)}")
    if crop == "center":
        return resize.geometry(width, height)
    short = min(width, height)
    scale = min(1.0, max(2 * resize.size / short, FACE_WORKING_SIDE / short, DETECT_WIDTH / width))
    scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    return FrameGeometry(scaled, (0, 0, *scaled))


def finish_clip(
    frames: np.ndarray, resize: Resize, crop: str, face_geometry: FaceGeometry | None = None
) -> tuple[np.ndarray, dict]:
    """Frames decoded with :func:`clip_geometry`, uint8 (T, H, W, C), to the model's clip (T, C, H, W).

    Returns the clip and its crop metadata: with ``face``, whether a face was found (if not, the centre crop
    was taken) and where, see :func:`emovid.faces.crop_to_face`, which frames it as ``face_geometry`` says.
    """
    meta: dict = {"crop": crop}
    if crop == "face":
        height, width = frames.shape[1:3]
        frames, face = crop_to_face(frames, resize.size, resize.center_region(width, height), face_geometry)
        meta.update(face)
    return np.ascontiguousarray(frames.transpose(0, 3, 1, 2)), meta  # (T, H, W, C) -> (T, C, H, W)


def read_clip(
    source: VideoSource | str | Path,
    num_frames: int,
    resize: Resize,
    crop: str = "center",
    face_geometry: FaceGeometry | None = None,
) -> Clip:
    """Decode ``num_frames`` frames spread uniformly over a video's time, resized; raises :class:`VideoError`.

    A video with fewer frames than asked (or a frame shown for long, on variable-frame-rate video) repeats
    frames, and its metadata says ``repeated_frames``. ``crop`` is ``center`` (as ``resize`` says) or ``face``
    (the face framed as ``face_geometry`` says, the centre crop if none is found).
    """
    with open_video(source) as reader:
        info = reader.info
        indices = sample_by_time(reader.timestamps, num_frames)
        frames = reader.frames_at(indices.tolist(), clip_geometry(resize, crop, info.width, info.height))
    frames, crop_meta = finish_clip(frames, resize, crop, face_geometry)
    meta = {
        "source": reader.name,
        "indices": indices.tolist(),
        "repeated_frames": len(set(indices.tolist())) < num_frames,
        **info.as_dict(),
        **crop_meta,
    }
    return Clip(frames, meta)


def _open_live(source: str | Path) -> av.container.InputContainer:
    """A camera (``/dev/video*``: Video4Linux), a stream URL or a file, opened for reading from its start."""
    name = str(source)
    try:
        if name.startswith("/dev/video"):
            return av.open(name, format="v4l2")
        if "://" not in name and not Path(name).is_file():
            raise VideoError(f"{name}: no such file, camera or stream URL")
        return av.open(name, mode="r", timeout=10.0)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{name}: cannot open it ({_reason(exc)})") from None


LiveFrame = tuple[float, np.ndarray, tuple[int, int]]  # time in seconds, uint8 RGB (H, W, C), the source's (W, H)


def live_frames(source: str | Path, fps: float,
                geometry: Callable[[int, int], FrameGeometry | None]) -> Iterator[LiveFrame]:
    """A camera's, stream's or file's frames as it plays, at most ``fps`` a second: (time in seconds since its first
    frame, uint8 RGB (H, W, C) as ``geometry(width, height)`` of the display-oriented frame says, (width, height)).

    A frame is taken whenever its time reaches the next step of a 1/``fps`` grid, so a stream faster than ``fps`` is
    thinned evenly and a slower one gives every frame. Nothing is kept between frames; the source closes when the
    iteration ends (also on Ctrl-C).

    Raises:
        VideoError: the source cannot be opened, has no video, or its data is corrupt.
    """
    if fps <= 0:
        raise ValueError(f"frames per second must be > 0, got {fps:g}")
    name = str(source)
    container = _open_live(source)
    try:
        if not container.streams.video:
            raise VideoError(f"{name}: no video stream")
        stream = container.streams.video[0]
        first: float | None = None
        due = 0.0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            first = frame.time if first is None else first
            time = frame.time - first
            if time + 1e-6 < due:
                continue
            due = (math.floor(time * fps + 1e-6) + 1) / fps
            rotation = _rotation_of(frame)
            width, height = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
            chosen = geometry(width, height)
            if chosen is None:
                yield time, _to_display(frame.to_ndarray(format="rgb24"), rotation), (width, height)
                continue
            scaled_w, scaled_h = chosen.scaled
            if rotation in (90, 270):
                scaled_w, scaled_h = scaled_h, scaled_w
            array = _to_display(frame.to_ndarray(width=scaled_w, height=scaled_h, format="rgb24",
                                                 interpolation="AREA"), rotation)
            left, top, crop_w, crop_h = chosen.crop
            yield time, np.ascontiguousarray(array[top : top + crop_h, left : left + crop_w]), (width, height)
    except av.FFmpegError as exc:
        raise VideoError(f"{name}: corrupt or unreadable video data ({_reason(exc)})") from None
    finally:
        container.close()
