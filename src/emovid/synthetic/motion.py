"""How a synthetic face moves in one performance: emotion profiles, actor idiosyncrasy, per-frame timeline.

An emotion is a handful of facial actions (mouth corners, jaw, brows, eyes, nose, head pitch) that rise from a
neutral start to an apex, hold and fall back partly, like a real performance. Each emotion has its own target
actions and its own dynamics (surprise is fast and brief, sadness slow and held), each actor expresses some
actions more than others and has a resting face of their own, and each clip jitters amplitudes and timing.
On top of that come speech (the statement's syllables move the mouth), blinks, head sway and gaze.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from emovid.datasets.ravdess import RavdessName
from emovid.synthetic.face import FaceState, Identity
from emovid.synthetic.speech import Syllable, mouth_envelope, place_syllables, statement_length

ACTIONS: tuple[str, ...] = (
    "smile",  # mouth corners up (+) or down (-)
    "jaw_drop",
    "lip_press",
    "lip_stretch",  # mouth pulled wide and tense, as in fear
    "brow_raise",
    "brow_lower",  # lowered and knitted
    "inner_brow",  # inner ends up, the oblique brow of sadness and fear
    "eye_open",  # widened (+) or narrowed (-)
    "nose_wrinkle",  # with the upper lip raised
    "pitch",  # head up (+) or down (-)
)

# How much of a strong performance a normal-intensity one shows.
INTENSITY_SCALE = {1: 0.45, 2: 1.0}


@dataclass(frozen=True)
class Profile:
    """An emotion's actions at the apex of a strong performance, and its dynamics.

    ``timing`` is (onset, hold, release, residual): rise time, apex duration and fall time as fractions of
    the clip, and the fraction of the apex left after the fall.
    """

    apex: Mapping[str, float]
    timing: tuple[float, float, float, float]
    energy: float  # head motion and articulation, 0-1
    tempo: float  # speech rate
    blink_rate: float  # relative to the actor's usual rate
    nod: float = 0.0  # head dips on stressed syllables
    tremor: float = 0.0  # fast side-to-side shake at the apex, in face heights
    bounce: float = 0.0  # laughing up-and-down at the apex, in face heights
    look_down: float = 0.0  # gaze lowered at the apex
    look_away: float = 0.0  # gaze turned aside at the apex


# A table reads better than one argument per line.
# fmt: off
PROFILES: dict[int, Profile] = {
    1: Profile({}, (0.20, 0.50, 0.20, 1.00), energy=0.45, tempo=1.00, blink_rate=1.0),
    # calm: a slightly relaxed smile and softer eyes, slow and smooth
    2: Profile({"smile": 0.22, "eye_open": -0.15},
               (0.30, 0.50, 0.20, 0.70), energy=0.25, tempo=0.90, blink_rate=0.8),
    3: Profile({"smile": 0.95, "eye_open": -0.35, "jaw_drop": 0.20, "brow_raise": 0.12, "pitch": 0.12},
               (0.15, 0.45, 0.20, 0.50), energy=0.80, tempo=1.08, blink_rate=1.0, bounce=0.02),
    4: Profile({"smile": -0.50, "inner_brow": 0.85, "brow_lower": 0.20, "eye_open": -0.35, "pitch": -0.45},
               (0.30, 0.50, 0.20, 0.70), energy=0.20, tempo=0.85, blink_rate=1.3, look_down=0.35),
    5: Profile({"brow_lower": 1.0, "lip_press": 0.70, "eye_open": 0.25, "smile": -0.20, "nose_wrinkle": 0.30,
                "pitch": -0.20},
               (0.12, 0.50, 0.20, 0.60), energy=1.00, tempo=1.12, blink_rate=0.7, nod=0.35),
    # fearful: raised, oblique brows held with a stretched, tense mouth
    6: Profile({"brow_raise": 0.65, "inner_brow": 0.70, "eye_open": 0.85, "lip_stretch": 0.85, "smile": -0.20,
                "jaw_drop": 0.25, "pitch": -0.10},
               (0.12, 0.55, 0.15, 0.70), energy=0.70, tempo=1.12, blink_rate=0.5, tremor=0.012),
    7: Profile({"nose_wrinkle": 0.85, "brow_lower": 0.50, "eye_open": -0.45, "smile": -0.30,
                "lip_press": 0.20, "pitch": 0.15},
               (0.20, 0.40, 0.20, 0.50), energy=0.50, tempo=0.95, blink_rate=1.0, look_away=0.35),
    # surprised: a fast brow raise and jaw drop, brief, then mostly gone
    8: Profile({"brow_raise": 1.0, "eye_open": 1.0, "jaw_drop": 0.85, "pitch": 0.30, "inner_brow": 0.20},
               (0.05, 0.15, 0.12, 0.25), energy=0.60, tempo=1.00, blink_rate=0.5),
}
# fmt: on

# Spread of an actor's resting face per action: some actors look a little sad or stern when neutral.
_REST_SPREAD = np.array([0.2, 0.06, 0.15, 0.08, 0.13, 0.18, 0.13, 0.2, 0.1, 0.15])


@dataclass(frozen=True)
class ActorStyle:
    """How one actor performs: gain and resting bias per action (:data:`ACTIONS` order), tempo, liveliness."""

    gain: np.ndarray
    rest: np.ndarray
    tempo: float
    sway: float
    blink_rate: float  # blinks per second

    @classmethod
    def sample(cls, seed: int, actor: int) -> ActorStyle:
        """The actor's style, a pure function of (seed, actor)."""
        rng = np.random.default_rng([seed, actor, 2])
        expressiveness = rng.uniform(0.75, 1.25)
        return cls(
            gain=expressiveness * np.exp(rng.normal(0.0, 0.45, len(ACTIONS))),
            rest=rng.normal(0.0, 1.0, len(ACTIONS)) * _REST_SPREAD,
            tempo=float(rng.uniform(0.9, 1.1)),
            sway=float(rng.uniform(0.6, 1.4)),
            blink_rate=float(rng.uniform(0.2, 0.5)),
        )


@dataclass(frozen=True)
class ClipMotion:
    """Everything that changes over one clip, one row per frame."""

    actions: np.ndarray  # (T, len(ACTIONS))
    speech: np.ndarray  # (T,) mouth opening from speaking
    blink: np.ndarray  # (T,) 0 open, 1 closed
    x: np.ndarray  # (T,) face centre, fraction of frame width
    y: np.ndarray  # (T,) face centre, fraction of frame height
    size: np.ndarray  # (T,) face half-height, fraction of frame height
    roll: np.ndarray  # (T,) degrees
    yaw: np.ndarray  # (T,)
    gaze: np.ndarray  # (T, 2) iris offset, fraction of the eye size
    syllables: tuple[Syllable, ...]
    apex_frame: int  # where the expression peaks

    def state(self, i: int) -> FaceState:
        """The face in frame ``i``."""
        acts = dict(zip(ACTIONS, (float(v) for v in self.actions[i]), strict=True))
        return FaceState(
            x=float(self.x[i]),
            y=float(self.y[i]),
            size=float(self.size[i]),
            roll=float(self.roll[i]),
            yaw=float(self.yaw[i]),
            speech=float(self.speech[i]),
            blink=float(self.blink[i]),
            gaze_x=float(self.gaze[i, 0]),
            gaze_y=float(self.gaze[i, 1]),
            **acts,
        )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _envelope(
    t: np.ndarray, start: float, onset: float, hold: float, release: float, residual: float
) -> np.ndarray:
    """0 before ``start``, rises to 1, holds, falls to ``residual``: the time course of an expression."""
    rise = _smoothstep((t - start) / onset)
    fall = 1.0 - (1.0 - residual) * _smoothstep((t - start - onset - hold) / release)
    return rise * fall


def _sway(t: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
    """Slow, smooth, zero-mean wandering (a sum of three sines with random phases), amplitude about 1."""
    freqs = speed * rng.uniform(0.15, 0.6, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    amps = rng.uniform(0.4, 1.0, 3)
    return (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0) / amps.sum()


def _blinks(t: np.ndarray, seconds: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Eye closure (0 open, 1 shut) with blinks of 120-200 ms at ``rate`` per second on average."""
    closure = np.zeros_like(t)
    for _ in range(rng.poisson(rate * seconds)):
        centre, half = rng.uniform(0, seconds), rng.uniform(0.06, 0.1)
        closure = np.maximum(closure, np.clip(1.0 - np.abs(t - centre) / half, 0.0, 1.0) ** 0.5)
    return closure


def clip_motion(
    identity: Identity,
    style: ActorStyle,
    name: RavdessName,
    num_frames: int,
    fps: float,
    aspect: float,
    rng: np.random.Generator,
) -> ClipMotion:
    """The timeline of one performance.

    Args:
        identity: the actor's look (gives the resting position in the frame).
        style: the actor's way of performing.
        name: the performance (emotion, intensity, statement; modality is irrelevant).
        num_frames: frames in the clip.
        fps: frame rate.
        aspect: frame width / height, to keep the face inside wide and square frames alike.
        rng: the clip's random generator.
    """
    profile = PROFILES[name.emotion]
    t = np.arange(num_frames) / fps
    seconds = num_frames / fps
    scale = INTENSITY_SCALE[name.intensity]
    apex = np.array([profile.apex.get(a, 0.0) for a in ACTIONS])
    # Performances vary: overall strength, each action's share, and a little of actions the emotion does not
    # call for (nobody performs a textbook expression).
    amplitude = apex * style.gain * rng.uniform(0.7, 1.3, len(ACTIONS)) + rng.normal(0.0, 0.18, len(ACTIONS))
    amplitude *= scale * rng.uniform(0.65, 1.25)

    # Timing as clip fractions so short test clips still show the whole arc.
    start = seconds * rng.uniform(0.06, 0.3)
    onset, hold, release = (seconds * f * rng.uniform(0.75, 1.3) for f in profile.timing[:3])
    residual = float(np.clip(profile.timing[3] * rng.uniform(0.8, 1.2), 0, 1))
    # Each action starts a little early or late, so no two clips have the same choreography.
    lag = seconds * rng.uniform(-0.03, 0.03, len(ACTIONS))
    expression = _envelope(t[None, :] - lag[:, None], start, onset, hold, release, residual).T  # (T, A)
    actions = style.rest + expression * amplitude

    energy = profile.energy * rng.uniform(0.85, 1.15)
    peak = _envelope(t, start, onset, hold, release, residual)
    apex_frame = int(np.argmax(peak))

    speech_start = seconds * rng.uniform(0.18, 0.32)
    tempo = profile.tempo * style.tempo * rng.uniform(0.92, 1.08)
    tempo = max(tempo, statement_length(name.statement) / max(0.95 * seconds - speech_start, 1e-3))
    syllables = place_syllables(name.statement, speech_start, tempo)
    lip_press = np.clip(actions[:, ACTIONS.index("lip_press")], 0, 1)
    speech = mouth_envelope(syllables, t) * (0.45 + 0.45 * energy) * (1.0 - 0.5 * lip_press)

    # Head motion in face heights: idle sway that grows with energy, plus the emotion's own movements.
    sway_speed = 0.6 + 0.8 * energy
    motion = style.sway * (0.4 + energy)
    drift = t / seconds
    dx = 0.05 * motion * _sway(t, rng, sway_speed) + rng.normal(0, 0.02) * drift
    dy = 0.03 * motion * _sway(t, rng, sway_speed) + rng.normal(0, 0.01) * drift
    dx += profile.tremor * scale * np.sin(2 * np.pi * 7.0 * t + rng.uniform(0, 2 * np.pi)) * peak
    dy += profile.bounce * scale * np.sin(2 * np.pi * 4.0 * t) * peak
    roll = 4.5 * motion * _sway(t, rng, sway_speed)
    yaw = 0.25 * motion * _sway(t, rng, sway_speed)
    stress = sum(s.stress * np.exp(-(((t - s.start - 0.3 * s.duration) / 0.07) ** 2)) for s in syllables)
    actions[:, ACTIONS.index("pitch")] += (
        0.08 * motion * _sway(t, rng, sway_speed) - profile.nod * scale * stress
    )

    gaze = np.stack([0.15 * _sway(t, rng, 1.5), 0.1 * _sway(t, rng, 1.5)], axis=1)
    gaze[:, 0] += rng.choice([-1, 1]) * profile.look_away * scale * peak
    gaze[:, 1] += profile.look_down * scale * peak

    size = identity.size * rng.uniform(0.95, 1.05) * (1 + 0.02 * _sway(t, rng, 0.5))
    x, y = identity.place(aspect, size[0])
    x += rng.normal(0, 0.02)  # the camera framing differs a little between takes
    y += rng.normal(0, 0.02)
    face_height = 2 * size  # as a fraction of the frame height
    return ClipMotion(
        actions=actions,
        speech=speech,
        blink=_blinks(t, seconds, style.blink_rate * profile.blink_rate, rng),
        x=x + dx * face_height / aspect,
        y=y + dy * face_height,
        size=size,
        roll=roll,
        yaw=yaw,
        gaze=gaze,
        syllables=tuple(syllables),
        apex_frame=apex_frame,
    )
