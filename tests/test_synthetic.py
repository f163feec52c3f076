"""Synthetic RAVDESS: names and layout, decodability, determinism, resume, face boxes and learnability."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from emovid.datasets.ravdess import RavdessName, scan
from emovid.synthetic.clip import ClipPlan
from emovid.synthetic.face import Palette, draw_face
from emovid.synthetic.generate import (
    META_NAME,
    SynthConfig,
    actor_archive,
    clip_names,
    generate_dataset,
    parse_actors,
    performances,
    read_meta,
)

# Two actors (one male, one female), neutral and angry at both intensities, both statements: 6 performances,
# 12 files per actor. Small frames and one second keep each generation well under a second of work.
SMALL = SynthConfig(actors=(1, 2), width=96, height=64, seconds=1.0, emotions=(1, 5), repetitions=(1,))
SMALL_FILES = 24


def decode(source: str | Path | io.BytesIO) -> tuple[np.ndarray, Fraction, str, int]:
    """Frames (T, H, W, 3) RGB, the frame rate, the video codec and the number of audio streams."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        return frames, stream.average_rate, stream.codec_context.name, len(container.streams.audio)


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("folders")
    report = generate_dataset(out, SMALL, workers=1, progress=False)
    assert (report.written, report.skipped) == (SMALL_FILES, 0)
    return out


@pytest.fixture(scope="module")
def zip_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zips")
    report = generate_dataset(out, SMALL, zip_archives=True, workers=2, progress=False)
    assert (report.written, report.skipped) == (SMALL_FILES, 0)
    return out


def test_full_set_names() -> None:
    names = clip_names(SynthConfig())
    assert len(names) == len(set(names)) == 24 * 120
    for name in names:
        assert RavdessName.parse(name.filename()) == name  # valid codes, no strong neutral
        assert name.vocal_channel == 1
    per_actor = Counter(n.actor for n in names)
    assert per_actor == {a: 120 for a in range(1, 25)}
    actor_1 = [n for n in names if n.actor == 1]
    assert Counter(n.emotion for n in actor_1) == {1: 8, **{e: 16 for e in range(2, 9)}}
    assert Counter(n.modality for n in actor_1) == {1: 60, 2: 60}


def test_performances_pair_modalities_and_limit_spreads_emotions() -> None:
    takes = performances(SynthConfig(actors=(3,), limit=8))
    assert len(takes) == 8
    assert sorted(t[0].emotion for t in takes) == list(range(1, 9))
    for take in takes:
        assert [n.modality for n in take] == [1, 2]
        assert len({(n.emotion, n.intensity, n.statement, n.repetition, n.actor) for n in take}) == 1


def test_config_parsing_and_validation() -> None:
    assert parse_actors("24") == tuple(range(1, 25))
    assert parse_actors("1-3,7") == (1, 2, 3, 7)
    assert SynthConfig(emotions=[3, 1, 3]).emotions == (1, 3)  # type: ignore[arg-type]
    assert SynthConfig(fps=30, seconds=3.5).num_frames == 105
    for bad in ({"width": 95}, {"emotions": (9,)}, {"actors": (25,)}, {"modalities": (3,)}, {"limit": 0}):
        with pytest.raises(ValueError):
            SynthConfig(**bad)  # type: ignore[arg-type]


def test_folder_layout_and_meta(folder_set: Path) -> None:
    expected = {f"Actor_{n.actor:02d}/{n.filename()}" for n in clip_names(SMALL)}
    on_disk = {p.relative_to(folder_set).as_posix() for p in folder_set.rglob("*.mp4")}
    assert on_disk == expected
    assert not list(folder_set.rglob("*.part"))
    records = read_meta(folder_set)
    assert {r["file"] for r in records} == expected
    for r in records:
        name = RavdessName.parse(r["file"])
        assert r["stem"] == name.stem
        assert (r["emotion"], r["intensity"], r["statement"], r["repetition"], r["actor"]) == (
            name.emotion,
            name.intensity,
            name.statement,
            name.repetition,
            name.actor,
        )
        assert (r["width"], r["height"], r["fps"], r["num_frames"]) == (96, 64, 30.0, 30)
        assert len(r["boxes"]) == 30 and all(len(b) == 4 for b in r["boxes"])
    index = scan(folder_set)
    assert len(index.entries) == SMALL_FILES and not index.rejects


def test_every_file_decodes_with_its_format(folder_set: Path) -> None:
    for path in sorted(folder_set.rglob("*.mp4")):
        frames, rate, codec, audio_streams = decode(path)
        assert frames.shape == (30, 64, 96, 3)
        assert (rate, codec) == (30, "h264")
        assert audio_streams == (1 if RavdessName.parse(path.name).modality == 1 else 0)


def test_zip_archives(zip_set: Path, folder_set: Path) -> None:
    assert sorted(p.name for p in zip_set.iterdir()) == sorted(
        [actor_archive(1), actor_archive(2), META_NAME]
    )
    for actor in (1, 2):
        with zipfile.ZipFile(zip_set / actor_archive(actor)) as archive:
            members = sorted(archive.namelist())
            assert members == sorted(
                f"Actor_{actor:02d}/{n.filename()}" for n in clip_names(SMALL) if n.actor == actor
            )
            for member in members:
                frames, _, _, audio_streams = decode(io.BytesIO(archive.read(member)))
                # Pool workers and the in-process run render the same pixels.
                assert np.array_equal(frames, decode(folder_set / member)[0])
                assert audio_streams == (RavdessName.parse(member).modality == 1)
    assert {r["file"] for r in read_meta(zip_set)} == {
        f"{actor_archive(n.actor)}:Actor_{n.actor:02d}/{n.filename()}" for n in clip_names(SMALL)
    }
    assert len(scan(zip_set).entries) == SMALL_FILES


def test_same_seed_same_frames_other_seed_differs(folder_set: Path, tmp_path: Path) -> None:
    one = replace(SMALL, actors=(2,), emotions=(5,), intensities=(2,), statements=(1,), modalities=(2,))
    generate_dataset(tmp_path / "same", one, workers=1, progress=False)
    generate_dataset(tmp_path / "other", replace(one, seed=1), workers=1, progress=False)
    member = f"Actor_02/{clip_names(one)[0].filename()}"
    reference = decode(folder_set / member)[0]
    assert np.array_equal(decode(tmp_path / "same" / member)[0], reference)
    assert not np.array_equal(decode(tmp_path / "other" / member)[0], reference)


def test_resume_rewrites_only_damaged_files(folder_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    shutil.copytree(folder_set, out)
    folder = out / "Actor_01"
    deleted, truncated, *others = sorted(folder.glob("*.mp4"))
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (folder / f".{deleted.name}.part").write_bytes(b"half a file")  # left by an interrupted run
    before = {p: p.stat().st_mtime_ns for p in others}

    report = generate_dataset(out, SMALL, workers=1, progress=False)

    assert (report.written, report.skipped) == (2, SMALL_FILES - 2)
    assert {p: p.stat().st_mtime_ns for p in others} == before
    assert not list(out.rglob("*.part"))
    for path in (deleted, truncated):
        assert np.array_equal(decode(path)[0], decode(folder_set / path.relative_to(out))[0])
    assert (out / META_NAME).read_text() == (folder_set / META_NAME).read_text()


def test_resume_rebuilds_only_a_damaged_archive(zip_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    shutil.copytree(zip_set, out)
    damaged, intact = out / actor_archive(1), out / actor_archive(2)
    damaged.write_bytes(damaged.read_bytes()[:5000])
    intact_time = intact.stat().st_mtime_ns

    report = generate_dataset(out, SMALL, zip_archives=True, workers=1, progress=False)

    assert (report.written, report.skipped) == (SMALL_FILES // 2, SMALL_FILES // 2)
    assert intact.stat().st_mtime_ns == intact_time
    with zipfile.ZipFile(damaged) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == SMALL_FILES // 2
    assert (out / META_NAME).read_text() == (zip_set / META_NAME).read_text()


def test_refuses_to_mix_settings_in_one_folder(folder_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    shutil.copytree(folder_set, out)
    with pytest.raises(ValueError, match="another folder"):
        generate_dataset(out, replace(SMALL, seed=3), workers=1, progress=False)


@pytest.mark.parametrize("actor", [1, 2, 3, 14, 23])
def test_face_box_covers_the_drawn_face(actor: int) -> None:
    # Paint the skin a colour nothing else has, in flat light: the face oval is the pixels of that colour.
    fmt = replace(SMALL, width=160, height=96).clip_format
    plan = ClipPlan.build(0, RavdessName(2, 1, 8, 2, 1, 1, actor), fmt)
    green = replace(plan.identity, skin=(0.0, 255.0, 0.0))
    boxes = plan.boxes()
    for i in range(0, fmt.num_frames, 5):
        canvas = np.full((fmt.height, fmt.width, 3), 255, np.uint8)
        draw_face(canvas, green, Palette.lit(green, np.ones(3)), plan.motion.state(i))
        ys, xs = np.nonzero(np.all(canvas == (0, 255, 0), axis=2))
        x0, y0, x1, y1 = boxes[i]
        assert np.all((xs + 1 > x0) & (xs < x1) & (ys + 1 > y0) & (ys < y1))
        # Tight, too: hair, stubble and features hide part of the oval, but the skin still spans most of the
        # box and fills a good part of it (measured minima over all actors: 0.77, 0.51, 0.22).
        assert (xs.max() + 1 - xs.min()) / (x1 - x0) > 0.7
        assert (ys.max() + 1 - ys.min()) / (y1 - y0) > 0.45
        assert len(xs) / ((x1 - x0) * (y1 - y0)) > 0.18


def test_meta_boxes_are_the_rendered_boxes(folder_set: Path) -> None:
    record = read_meta(folder_set)[0]
    plan = ClipPlan.build(SMALL.seed, RavdessName.parse(record["file"]), SMALL.clip_format)
    assert np.allclose(record["boxes"], plan.boxes(), atol=0.01)


def _face_features(path: Path, boxes: list[list[float]]) -> np.ndarray:
    """Four 12x12 grey face crops (at 0, 1/4, 1/2, 3/4 of the clip) and their differences from the first."""
    frames = decode(path)[0]
    crops = []
    for i in np.linspace(0, len(frames), 4, endpoint=False).astype(int):
        x0, y0, x1, y1 = boxes[i]
        face = frames[i, int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))].mean(axis=2)
        crops.append(cv2.resize(face.astype(np.float32), (12, 12), interpolation=cv2.INTER_AREA) / 255)
    faces = np.stack(crops).reshape(4, -1)  # (4, 144)
    return np.concatenate([faces.ravel(), (faces[1:] - faces[0]).ravel()])


def _logistic_regression(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, c: float) -> np.ndarray:
    """Predictions for ``x_test`` of a multinomial logistic regression fitted to (x, y) as scikit-learn's would
    be: standardised features, summed cross-entropy plus ``||W||^2 / (2 C)``, minimised by L-BFGS."""
    x, x_test = x.astype(np.float64), x_test.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1
    features = torch.from_numpy((x - mean) / std)
    model = torch.nn.Linear(x.shape[1], int(y.max()) + 1).double()
    torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)  # convex: a fixed start, a fixed answer
    optimiser = torch.optim.LBFGS(model.parameters(), max_iter=2000, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(features), torch.from_numpy(y), reduction="sum")
        loss = loss + model.weight.square().sum() / (2 * c)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return model(torch.from_numpy((x_test - mean) / std)).argmax(dim=1).numpy()


def test_emotions_are_learnable_across_actors(tmp_path: Path) -> None:
    # Train on actors 1-20, test on the study's unseen test actors 23-24.
    config = SynthConfig(
        actors=(*range(1, 21), 23, 24),
        width=96,
        height=64,
        fps=6,
        seconds=2.0,
        repetitions=(1,),
        modalities=(2,),
    )
    generate_dataset(tmp_path, config, workers=2, progress=False)
    records = read_meta(tmp_path)
    x = np.stack([_face_features(tmp_path / r["file"], r["boxes"]) for r in records])
    y = np.array([r["emotion"] for r in records])
    train = np.array([r["actor"] <= 20 for r in records])
    accuracy = float((_logistic_regression(x[train], y[train], x[~train], c=0.01) == y[~train]).mean())
    # Measured 0.65 at seed 0 (0.43-0.68 over seeds 0-3; the same 0.65 as scikit-learn's fit); chance is 0.125.
    assert accuracy > 0.35, f"test accuracy {accuracy:.2f}"
