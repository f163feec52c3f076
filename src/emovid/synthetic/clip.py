"""One synthetic performance: frames, face boxes and audio, a pure function of (seed, performance, format).

Every random choice comes from generators seeded by the seed and the performance's fields (never the modality:
the full-AV and video-only files of a performance are the same recording), so a clip can be rebuilt exactly,
and its face boxes can be recomputed without drawing a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from emovid.datasets.ravdess import RavdessName
from emovid.synthetic.face import Identity, Palette, draw_face, face_box
from emovid.synthetic.motion import PROFILES, ActorStyle, ClipMotion, clip_motion
from emovid.synthetic.speech import speech_audio


@dataclass(frozen=True)
class ClipFormat:
    """Frame size and timing shared by all clips of a set."""

    width: int
    height: int
    fps: float
    num_frames: int


@dataclass(frozen=True)
class Look:
    """The clip's camera: background, light on the face, sensor noise and slow exposure drift."""

    background: np.ndarray  # (H, W, 3) uint8
    light: np.ndarray  # (3,) per-channel gain
    side_light: float  # how much darker one side of the face is (sign: which side)
    # K noise fields split into positive and negative parts, because saturating uint8 adds are the cheapest
    # way to add signed noise; frame i uses field i % K.
    noise_up: np.ndarray  # (K, H, W, 3) uint8
    noise_down: np.ndarray  # (K, H, W, 3) uint8
    exposure: np.ndarray  # (T,) brightness gain per frame

    @classmethod
    def sample(cls, fmt: ClipFormat, rng: np.random.Generator) -> Look:
        """A random camera for one clip."""
        h, w = fmt.height, fmt.width
        base = rng.uniform(195, 240) + rng.normal(0, 4, 3)  # a light, slightly tinted wall
        gy = np.linspace(-1, 1, h)[:, None, None] * rng.uniform(-0.06, 0.06)
        gx = np.linspace(-1, 1, w)[None, :, None] * rng.uniform(-0.08, 0.08)
        background = np.clip(base * (1 + gx + gy), 0, 255).astype(np.uint8)
        light = rng.uniform(0.85, 1.08) * rng.uniform(0.97, 1.03, 3)
        side_light = rng.choice([-1, 1]) * rng.uniform(0.0, 0.15)  # stays lighter than the neck shade (0.8)
        sigma = rng.uniform(1.5, 4.0)
        noise = np.round(sigma * rng.standard_normal((3, h, w, 3), dtype=np.float32))
        t = np.arange(fmt.num_frames) / fmt.fps
        exposure = 1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
        up, down = (np.clip(v, 0, 255).astype(np.uint8) for v in (noise, -noise))
        return cls(background, light, float(side_light), up, down, exposure)


@dataclass(frozen=True)
class ClipPlan:
    """One clip: who performs, how they move, and (sampled on first use) the camera."""

    name: RavdessName
    fmt: ClipFormat
    identity: Identity
    motion: ClipMotion
    look_seed: np.random.SeedSequence
    audio_seed: np.random.SeedSequence

    @classmethod
    def build(cls, seed: int, name: RavdessName, fmt: ClipFormat) -> ClipPlan:
        identity = Identity.sample(seed, name.actor)
        style = ActorStyle.sample(seed, name.actor)
        fields = [seed, name.actor, name.emotion, name.intensity, name.statement, name.repetition]
        motion_seed, look_seed, audio_seed = np.random.SeedSequence(fields).spawn(3)
        motion = clip_motion(
            identity,
            style,
            name,
            fmt.num_frames,
            fmt.fps,
            fmt.width / fmt.height,
            np.random.default_rng(motion_seed),
        )
        return cls(name, fmt, identity, motion, look_seed, audio_seed)

    @cached_property
    def look(self) -> Look:
        """The camera, sampled on first use: face boxes alone do not need its noise fields."""
        return Look.sample(self.fmt, np.random.default_rng(self.look_seed))

    def boxes(self) -> np.ndarray:
        """Face boxes (T, 4) ``x0, y0, x1, y1`` in pixels (see :func:`face_box`), without drawing."""
        fmt = self.fmt
        states = (self.motion.state(i) for i in range(fmt.num_frames))
        return np.array([face_box(self.identity, s, fmt.width, fmt.height) for s in states]).reshape(-1, 4)

    def frames(self) -> np.ndarray:
        """All frames (T, H, W, 3) uint8 BGR."""
        return np.stack([self.frame(i) for i in range(self.fmt.num_frames)])

    def frame(self, i: int, noise: bool = True) -> np.ndarray:
        """Frame ``i`` (H, W, 3) uint8 BGR, with or without sensor noise and exposure drift."""
        canvas = self.look.background.copy()
        palette = Palette.lit(self.identity, self.look.light, self.look.side_light)
        draw_face(canvas, self.identity, palette, self.motion.state(i))
        if not noise:
            return canvas
        canvas = cv2.convertScaleAbs(canvas, alpha=float(self.look.exposure[i]))
        k = i % len(self.look.noise_up)
        return cv2.subtract(cv2.add(canvas, self.look.noise_up[k]), self.look.noise_down[k])

    def audio(self) -> np.ndarray:
        """The speech track (samples,) float32; livelier emotions speak louder and higher."""
        energy = PROFILES[self.name.emotion].energy
        return speech_audio(
            list(self.motion.syllables),
            self.fmt.num_frames / self.fmt.fps,
            self.identity.voice * (1 + 0.2 * (energy - 0.45)),
            0.15 + 0.25 * energy,
            np.random.default_rng(self.audio_seed),
        )
