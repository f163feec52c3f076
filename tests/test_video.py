import shutil
import subprocess
import zipfile
import zlib

import av
import numpy as np
import pytest

from emovid.data.video import (
    Resize,
    VideoError,
    intelligent_geometry,
    naive_geometry,
    open_video,
    read_clip,
    sample_by_time,
    truncation_warning,
    uniform_indices,
)
from emovid.datasets.ravdess import VideoSource
from videos import make_cremad_flv, make_video, read_index, truncated_faststart, zip_with_corrupt_member


@pytest.mark.parametrize(
    "num_frames,count,expected",
    [
        (10, 5, [1, 3, 5, 7, 9]),
        (105, 6, [8, 26, 43, 61, 78, 96]),
        (16, 16, list(range(16))),
        (1, 4, [0, 0, 0, 0]),
        (3, 6, [0, 0, 1, 1, 2, 2]),
        (111, 10, [5, 16, 27, 38, 49, 61, 72, 83, 94, 105]),
    ],
)
def test_uniform_indices(num_frames, count, expected):
    assert uniform_indices(num_frames, count).tolist() == expected


def test_uniform_indices_properties():
    for n in range(1, 60):
        for t in (6, 10, 16):
            idx = uniform_indices(n, t)
            assert len(idx) == t and idx.min() >= 0 and idx.max() < n
            assert np.all(np.diff(idx) >= 0)
            if n >= t:
                assert len(set(idx.tolist())) == t
    with pytest.raises(ValueError):
        uniform_indices(0, 4)


@pytest.mark.parametrize(
    "timestamps,count,expected",
    [
        ([0.0, 0.1, 0.2, 0.3], 2, [1, 3]),
        ([0.0], 3, [0, 0, 0]),
        ([0.0, 1.0], 4, [0, 0, 1, 1]),
        ([0.0, 0.033, 0.067, 0.1, 0.133, 0.167], 3, [1, 3, 5]),  # whole milliseconds: still every other frame
        ([5.0, 5.5, 6.0, 6.5], 2, [1, 3]),  # a late first timestamp
        ([0.0, 0.01, 0.02, 0.03, 0.04, 1.0, 2.0, 3.0], 4, [4, 5, 6, 7]),  # a burst of short frames, then long ones
        ([0.0, 0.045, 0.065, 0.11, 0.13, 0.175], 3, [0, 2, 5]),  # 45 and 20 ms in turn; by count: 1, 3, 5
    ],
)
def test_sample_by_time(timestamps, count, expected):
    assert sample_by_time(timestamps, count).tolist() == expected


def test_sample_by_time_is_uniform_indices_at_a_constant_rate():
    for fps, time_base in ((30, 1 / 15360), (30, 1 / 1000), (25, 1 / 90000), (60, 1 / 1000)):
        for n in range(1, 80):
            times = np.round(np.arange(n) / fps / time_base) * time_base
            for t in (1, 4, 6, 10, 16):
                assert sample_by_time(times, t).tolist() == uniform_indices(n, t).tolist(), (fps, time_base, n, t)


def test_variable_frame_rate_clips_are_spread_in_time(tmp_path):
    # 60 frames of 10 ms, then 28 of 100 ms: 0.6 s of the 3.4 s hold two thirds of the frames.
    path = make_video(tmp_path / "vfr.mp4", num_frames=88, durations_ms=[10] * 60 + [100] * 28)
    clip = read_clip(path, 8, Resize("naive", 32))
    with open_video(path) as reader:
        times = reader.timestamps[clip.meta["indices"]]
    assert np.diff(times).max() < 0.6 and times[1] >= 0.6 and clip.meta["repeated_frames"] is False


def reference_frames(path):
    """PyAV's plain path: decode every frame in order, convert each at full size."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize(
    "kind",
    ["h264-bframes", "h264-no-bframes", "audio-beside", "mkv", "webm-vp9", "variable-frame-rate"],
)
def test_frames_at_equal_reference_decode(tmp_path, kind):
    opts = {
        "h264-bframes": dict(bframes=True),
        "h264-no-bframes": dict(bframes=False),
        "audio-beside": dict(audio=True),
        "mkv": dict(),
        "webm-vp9": dict(codec="libvpx-vp9"),
        "variable-frame-rate": dict(vfr=True),
    }[kind]
    suffix = {"mkv": ".mkv", "webm-vp9": ".webm"}.get(kind, ".mp4")
    path = make_video(tmp_path / f"v{suffix}", num_frames=37, **opts)
    reference = reference_frames(path)
    assert [read_index(f) for f in reference] == list(range(37))
    with open_video(path) as reader:
        assert reader.info.num_frames == 37
        indices = [0, 5, 6, 7, 20, 36, 5]
        frames = reader.frames_at(indices)
    assert [read_index(f) for f in frames] == indices
    for i, frame in zip(indices, frames, strict=True):
        assert np.abs(frame.astype(int) - reference[i]).max() <= 2


def gradient_frame(axis):
    def frame(index, width, height):
        ramp = np.linspace(0, 255, width if axis == 1 else height)
        plane = np.broadcast_to(ramp[None, :] if axis == 1 else ramp[:, None], (height, width))
        return np.repeat(plane[..., None], 3, axis=2).astype(np.uint8)

    return frame


def expected_ramp(out_size, offset, scale, source_len):
    # Output pixel j samples source coordinate (offset + j + 0.5) * scale - 0.5.
    x = (offset + np.arange(out_size) + 0.5) * scale - 0.5
    return np.clip(x, 0, source_len - 1) * 255 / (source_len - 1)


@pytest.mark.parametrize("direction", ["x", "y"])
def test_resize_geometry_exact(tmp_path, direction):
    w, h = 320, 180
    along_x = direction == "x"
    path = make_video(tmp_path / "g.mp4", num_frames=4, width=w, height=h, frame_fn=gradient_frame(1 if along_x else 0),
                      pix_fmt="yuv444p")
    intelligent = read_clip(path, 2, Resize("intelligent", size=80, short_side=90))
    naive = read_clip(path, 2, Resize("naive", size=64))
    assert intelligent.frames.shape == (2, 3, 80, 80) and intelligent.frames.dtype == np.uint8
    assert naive.frames.shape == (2, 3, 64, 64)
    profile_axis = 0 if along_x else 1  # average across the ramp's other direction
    source_len = w if along_x else h
    # intelligent: 320x180 -> 160x90, then the centre 80x80 crop starts at x=40, y=5
    got = intelligent.frames[0, 0].mean(axis=profile_axis)
    want = expected_ramp(80, 40 if along_x else 5, 2.0, source_len)
    assert np.abs(got - want)[2:-2].max() < 4
    got = naive.frames[0, 0].mean(axis=profile_axis)
    want = expected_ramp(64, 0, source_len / 64, source_len)
    assert np.abs(got - want)[2:-2].max() < 4


def test_geometry_arithmetic():
    g = intelligent_geometry(1280, 720, 256, 224)
    assert g.scaled == (455, 256) and g.crop == (115, 16, 224, 224)
    g = intelligent_geometry(720, 1280, 256, 224)
    assert g.scaled == (256, 455) and g.crop == (16, 115, 224, 224)
    assert naive_geometry(112).scaled == (112, 112)
    with pytest.raises(ValueError):
        intelligent_geometry(100, 100, 100, 128)
    with pytest.raises(ValueError):
        Resize("stretchy")


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    path = make_video(tmp_path / "r.mp4", num_frames=8, width=160, height=96, rotation=rotation)
    with open_video(path) as reader:
        assert reader.info.rotation == rotation
        expected = (96, 160) if rotation in (90, 270) else (160, 96)
        assert (reader.info.width, reader.info.height) == expected
        frame = reader.frames_at([5])[0]
    assert frame.shape[:2] == expected[::-1]
    assert read_index(np.rot90(frame, k=-rotation // 90)) == 5
    clip = read_clip(path, 4, Resize("intelligent", 64, 80))
    assert clip.frames.shape == (4, 3, 64, 64)
    if shutil.which("ffmpeg"):  # ffmpeg applies the display matrix by default: the reference
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vframes", "1", "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        with open_video(path) as reader:
            first = reader.frames_at([0])[0]
        assert np.abs(np.frombuffer(raw, np.uint8).reshape(first.shape).astype(int) - first).max() <= 2


def test_short_video_repeats_frames_and_says_so(tmp_path):
    path = make_video(tmp_path / "short.mp4", num_frames=3)
    clip = read_clip(path, 6, Resize("naive", 32))
    assert clip.frames.shape == (6, 3, 32, 32)
    assert clip.meta["repeated_frames"] is True and clip.meta["indices"] == [0, 0, 1, 1, 2, 2]
    assert read_clip(path, 3, Resize("naive", 32)).meta["repeated_frames"] is False


@pytest.mark.parametrize("bframes", [False, True])
def test_a_cut_short_file_gives_every_frame_it_holds_and_says_how_much_was_declared(tmp_path, bframes):
    whole = make_video(tmp_path / "whole.mp4", num_frames=90, width=64, height=48, bframes=bframes, audio=True,
                       frame_fn=lambda i, w, h: np.random.default_rng(i).integers(0, 255, (h, w, 3), np.uint8))
    with open_video(whole) as reader:
        assert reader.info.declared_duration == pytest.approx(3.0) and reader.info.duration == pytest.approx(3.0)
    cut = truncated_faststart(whole, tmp_path / "cut.mp4")
    with open_video(cut) as reader:
        info = reader.info
        # The packet the file ends inside is dropped: every frame counted decodes, the last one too.
        assert 20 < info.num_frames < 80 and info.declared_duration == pytest.approx(3.0)
        assert len(list(reader.stream(range(info.num_frames)))) == info.num_frames
    assert truncation_warning(info.duration, info.declared_duration) == (
        f"decoded {info.duration:.1f} s of 3.0 s: the file is truncated")
    clip = read_clip(cut, 8, Resize("naive", 16))
    assert clip.meta["duration"] == info.duration and clip.meta["declared_duration"] == pytest.approx(3.0)


def test_truncation_warning_leaves_small_differences_alone():
    assert truncation_warning(3.0, None) is None  # a header that declares nothing
    assert truncation_warning(3.0, 3.4) is None  # an audio track a little longer than the video
    assert truncation_warning(2.9, 6.0) == "decoded 2.9 s of 6.0 s: the file is truncated"


def test_zip_member_decodes_from_memory(tmp_path):
    video = make_video(tmp_path / "v.mp4", num_frames=12)
    archive = tmp_path / "Video_Speech_Actor_01.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(video, "Actor_01/01-01-03-01-01-01-01.mp4")
    with open_video(VideoSource(archive, "Actor_01/01-01-03-01-01-01-01.mp4")) as reader:
        assert [read_index(f) for f in reader.frames_at([0, 11])] == [0, 11]


def test_unseekable_flv_gives_the_same_frames_as_an_mp4(tmp_path):
    flv = make_cremad_flv(tmp_path / "1001_DFA_ANG_XX.flv", num_frames=24)
    with av.open(str(flv)) as container, pytest.raises(av.FFmpegError):
        next(container.demux(video=0))
        container.seek(0, stream=container.streams.video[0])  # what made CREMA-D's files unreadable
    mp4 = make_video(tmp_path / "same.mp4", num_frames=24)
    for path in (flv, mp4):
        clip = read_clip(path, 6, Resize("naive", 32))
        assert clip.meta["num_frames"] == 24 and clip.meta["indices"] == [2, 6, 10, 14, 18, 22]
        with open_video(path) as reader:
            assert [read_index(f) for f in reader.frames_at([23, 0, 5, 5])] == [23, 0, 5, 5]
            assert [read_index(f) for _, f in reader.stream()] == list(range(24))


def test_zip_member_with_broken_compressed_data_is_one_line(tmp_path):
    member = "Actor_01/01-01-03-01-01-01-01.mp4"
    video = make_video(tmp_path / "v.mp4", num_frames=30, width=320, height=180)
    archive = zip_with_corrupt_member(tmp_path / "a.zip", member, video.read_bytes())
    with zipfile.ZipFile(archive) as zf, pytest.raises(zlib.error):
        zf.read(member)
    with pytest.raises(VideoError, match=r"a\.zip:Actor_01/01-01-03-01-01-01-01\.mp4: broken zip member \(Error -3"):
        read_clip(VideoSource(archive, member), 4, Resize("naive", 32))


def audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def bad_inputs(tmp_path):
    good = make_video(tmp_path / "good.mp4", num_frames=30, width=320, height=180).read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    audio_only(tmp_path / "audio.mp4")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("Actor_01/01-01-03-01-01-01-01.mp4", good)
    data = bytearray(broken.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside the member: its CRC no longer matches
    broken.write_bytes(bytes(data))
    return {
        "empty": (VideoSource(tmp_path / "empty.mp4"), "empty file"),
        "truncated": (VideoSource(tmp_path / "truncated.mp4"), "truncated"),
        "text": (VideoSource(tmp_path / "text.mp4"), "not a readable video"),
        "no video stream": (VideoSource(tmp_path / "audio.mp4"), "no video stream"),
        "broken zip member": (VideoSource(broken, "Actor_01/01-01-03-01-01-01-01.mp4"), "broken zip member"),
    }


def test_bad_inputs_give_one_line_naming_the_file(tmp_path):
    for kind, (source, reason) in bad_inputs(tmp_path).items():
        with pytest.raises(VideoError) as info:
            read_clip(source, 4, Resize("naive", 32))
        message = str(info.value)
        assert message.startswith(source.display + ": "), kind
        assert reason in message, (kind, message)
        assert "\n" not in message
