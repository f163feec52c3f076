"""Shared fixtures: a tiny synthetic RAVDESS set and its clip cache, made once per test session."""

from __future__ import annotations

import pytest

from emovid.data.cache import PrepareSettings, prepare
from emovid.data.synthetic import SynthConfig, generate_dataset
from emovid.data.video import Resize

# Train on 6 actors, validate on 21, test on 23: 30 performances each (video-only, first repetition).
TINY_ACTORS = (1, 2, 3, 4, 5, 6, 21, 23)
TINY_SPLIT = {"train_actors": (1, 2, 3, 4, 5, 6), "val_actors": (21,), "test_actors": (23,)}
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
    prepare(tiny_data, out, TINY_PREPARE, workers=2, progress=False)
    return out
