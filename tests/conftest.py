"""Shared fixtures: a tiny synthetic RAVDESS set and its clip cache, made once per test session; weights as a new
user has them (none), unless a test asks for the user's own."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import TypeVar

import pytest

from emovid.data.cache import PrepareSettings, prepare
from emovid.data.video import Resize
from emovid.datasets.ravdess import scan
from emovid.synthetic import SynthConfig, generate_dataset
from emovid.weights import OFFLINE_ENV, WEIGHTS_DIR_ENV, WeightFile, is_intact, weights_dir

# Every test sees what a new user's machine has: an empty weights folder, and no fetching on first use. A test
# that needs pretrained files asks for them with the ``user_weights`` fixture, which points emovid back at the
# folder the tester's machine has (``$EMOVID_WEIGHTS_DIR`` or ~/.cache/emovid) and skips when they are not there.
USER_WEIGHTS_DIR = weights_dir()
os.environ[WEIGHTS_DIR_ENV] = tempfile.mkdtemp(prefix="emovid-no-weights-")
os.environ[OFFLINE_ENV] = "1"
T = TypeVar("T")


def load_with_user_weights(load: Callable[[], T], *files: WeightFile) -> T:
    """``load()`` run against the tester's weights folder (for module-scoped fixtures); skips when a file is missing."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_DIR_ENV, str(USER_WEIGHTS_DIR))
        missing = [w.name for w in files if not is_intact(w)]
        if missing:
            pytest.skip(f"{', '.join(missing)} not in {USER_WEIGHTS_DIR} (get them with `emovid weights download`)")
        return load()


@pytest.fixture
def user_weights(monkeypatch) -> Callable[..., None]:
    """``user_weights(*files)``: use the tester's weights folder, or skip with the reason when a file is missing."""

    def use(*files: WeightFile) -> None:
        monkeypatch.setenv(WEIGHTS_DIR_ENV, str(USER_WEIGHTS_DIR))
        missing = [w.name for w in files if not is_intact(w)]
        if missing:
            pytest.skip(f"{', '.join(missing)} not in {USER_WEIGHTS_DIR} (get them with `emovid weights download`)")

    return use


# Train on 6 actors, validate on 21, test on 23: 30 performances each (video-only, first repetition).
TINY_ACTORS = (1, 2, 3, 4, 5, 6, 21, 23)
TINY_SPLIT = {"train_subjects": ("1", "2", "3", "4", "5", "6"), "val_subjects": ("21",), "test_subjects": ("23",)}
TINY_SYNTH = SynthConfig(actors=TINY_ACTORS, width=64, height=48, seconds=1.2, modalities=(2,), repetitions=(1,))
TINY_PREPARE = PrepareSettings(frames=4, resize=Resize("intelligent", size=32, short_side=36))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_ravdess")
    generate_dataset(out, TINY_SYNTH, workers=2, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_cache(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_cache")
    prepare(scan(tiny_data), out, TINY_PREPARE, workers=2, progress=False)
    return out


def _emotion_frame(emotion: int, actor: int):
    """Frames where the emotion sets where a bright square sits and how it moves; the actor sets the backdrop."""
    import numpy as np

    angle = 2 * np.pi * (emotion - 1) / 8
    backdrop = np.array([40 + 20 * (actor % 5), 60 + 15 * (actor % 3), 90], np.uint8)

    def frame(index: int, width: int, height: int):
        image = np.empty((height, width, 3), np.uint8)
        image[:] = backdrop
        radius = 6 + index  # the square drifts outwards over the clip
        cx = int(width / 2 + radius * np.cos(angle)) - 4
        cy = int(height / 2 + radius * np.sin(angle)) - 4
        image[max(cy, 0) : cy + 8, max(cx, 0) : cx + 8] = 235
        return image

    return frame


@pytest.fixture(scope="session")
def easy_cache(tmp_path_factory):
    """A cache whose emotions are easy to see (a square's place and motion): for tests of the training loop."""
    from emovid.datasets.ravdess import speech_set_names
    from videos import make_video

    data = tmp_path_factory.mktemp("easy_ravdess")
    for name in speech_set_names(TINY_ACTORS, modalities=(2,)):
        if name.statement == 1 and name.repetition == 1:
            folder = data / f"Actor_{name.actor:02d}"
            folder.mkdir(exist_ok=True)
            make_video(folder / name.filename(), num_frames=10, width=48, height=48, fps=10, bframes=False,
                       frame_fn=_emotion_frame(name.emotion, name.actor))
    out = tmp_path_factory.mktemp("easy_cache")
    prepare(scan(data), out, TINY_PREPARE, workers=2, progress=False)
    return out
