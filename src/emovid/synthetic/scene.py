"""A synthetic scene with several people: cartoon faces that enter, show an emotion, leave and may come back.

For tests and benchmarks of multi-person tracking: every pixel and every ground-truth face box is a pure
function of (people, format, seed). Each person is the generator's cartoon actor (:mod:`emovid.synthetic.face`)
performing its own emotion (:func:`emovid.synthetic.motion.clip_motion`), placed at its own x and size, on
one shared camera (background, light, noise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from emovid.data.atomic import write_bytes_atomic
from emovid.datasets.ravdess import EMOTIONS, NUM_ACTORS, RavdessName
from emovid.synthetic.clip import ClipFormat, Look
from emovid.synthetic.encode import encode_video
from emovid.synthetic.face import FaceState, Identity, Palette, draw_face, face_box
from emovid.synthetic.motion import ACTIONS, ActorStyle, ClipMotion, clip_motion

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, as emovid.faces uses them
PERFORMANCE_SECONDS = 3.5  # each person's own performance; beyond it the apex is held and the head keeps moving


@dataclass(frozen=True)
class Person:
    """One person in a scene, visible for ``enter <= t < leave`` and, if ``back`` is given, again for
    ``back[0] <= t < back[1]`` (seconds).

    Attributes:
        actor: RAVDESS actor (1-24): the look, as in the generated datasets.
        emotion: RAVDESS emotion code (1-8), performed strongly (neutral: normal intensity).
        x: face centre when the person enters, as a fraction of the frame width; the head sways around it.
        size: face half-height as a fraction of the frame height (about, each take varies it by 5%).
    """

    actor: int
    emotion: int
    x: float
    enter: float = 0.0
    leave: float = math.inf
    size: float = 0.2
    back: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.actor <= NUM_ACTORS or not 1 <= self.emotion <= len(EMOTIONS):
            raise ValueError(f"actor must be 1-{NUM_ACTORS} and emotion 1-{len(EMOTIONS)}, got {self}")
        if not 0 < self.x < 1 or not 0 < self.size < 0.5:
            raise ValueError(f"x must be in (0, 1) and size in (0, 0.5), got {self}")
        starts_ends = [t for interval in self.intervals for t in interval]
        if starts_ends != sorted(starts_ends) or len(set(starts_ends)) != len(starts_ends) or self.enter < 0:
            raise ValueError(f"enter < leave < back[0] < back[1] must hold, got {self}")

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        """The (enter, leave) intervals in seconds, in order."""
        return ((self.enter, self.leave),) + ((self.back,) if self.back else ())

    def visible(self, t: float) -> bool:
        """Whether the person is in the frame at time ``t``."""
        return any(a <= t < b for a, b in self.intervals)


@dataclass(frozen=True)
class PersonTruth:
    """Where one person is: its visible spans and its face box in every frame it is visible in.

    Attributes:
        person: index in the scene's people.
        spans: (first, last) time of the frames it is visible in, per interval it appears in (an interval
            between two frames gives none).
        boxes: frame index -> face box ``x0, y0, x1, y1`` (see :func:`~emovid.synthetic.face.face_box`).
    """

    person: int
    spans: tuple[tuple[float, float], ...]
    boxes: dict[int, Box]

    @property
    def first_seen(self) -> float:
        return self.spans[0][0]

    @property
    def last_seen(self) -> float:
        return self.spans[-1][1]


@dataclass(frozen=True)
class Scene:
    """People in one shared frame: their looks and performances, and the camera.

    Build it with :meth:`build`; frames are BGR uint8, like the generator's clips.
    """

    people: tuple[Person, ...]
    fmt: ClipFormat
    identities: tuple[Identity, ...]
    motions: tuple[ClipMotion, ...]
    look: Look

    @classmethod
    def build(cls, people: tuple[Person, ...] | list[Person], fmt: ClipFormat, seed: int = 0) -> Scene:
        """The scene, a pure function of its arguments. People are drawn in list order (later ones in front)."""
        people = tuple(people)
        length = max(2, round(PERFORMANCE_SECONDS * fmt.fps))
        identities, motions = [], []
        for k, person in enumerate(people):
            identity = replace(Identity.sample(seed, person.actor), size=person.size)
            intensity = 1 if person.emotion == 1 else 2
            name = RavdessName(2, 1, person.emotion, intensity, 1, 1, person.actor)
            rng = np.random.default_rng([seed, k, person.actor, person.emotion, 3])
            style = ActorStyle.sample(seed, person.actor)
            identities.append(identity)
            motions.append(clip_motion(identity, style, name, length, fmt.fps, fmt.width / fmt.height, rng))
        look = Look.sample(fmt, np.random.default_rng([seed, 4]))
        return cls(people, fmt, tuple(identities), tuple(motions), look)

    def time(self, i: int) -> float:
        """Time of frame ``i`` in seconds."""
        return i / self.fmt.fps

    def state(self, k: int, i: int) -> FaceState | None:
        """Person ``k``'s face in frame ``i``, or None when it is not in the frame.

        The performance starts when the person first enters. Past its apex the expression holds there, while
        the head, eyes and mouth keep moving through the performance forwards and backwards, so a long scene
        shows the emotion all along with no jump.
        """
        person, motion = self.people[k], self.motions[k]
        if not person.visible(self.time(i)):
            return None
        local = max(0, i - math.ceil(person.enter * self.fmt.fps - 1e-9))
        n = len(motion.x)
        j = local % (2 * n - 2)
        j = j if j < n else 2 * n - 2 - j  # forwards, then backwards: no jump at the ends
        held = motion.state(min(local, motion.apex_frame))
        moving = motion.state(j)
        expression = {name: getattr(held, name) for name in ACTIONS}  # facial actions and head pitch
        return replace(moving, x=person.x + float(motion.x[j] - motion.x[0]), **expression)

    def boxes(self, i: int) -> dict[int, Box]:
        """Face box of each person visible in frame ``i``, by person index."""
        fmt = self.fmt
        states = {k: self.state(k, i) for k in range(len(self.people))}
        return {k: face_box(self.identities[k], s, fmt.width, fmt.height) for k, s in states.items() if s}

    def frame(self, i: int, noise: bool = True) -> np.ndarray:
        """Frame ``i`` (H, W, 3) uint8 BGR, with or without sensor noise and exposure drift."""
        canvas = self.look.background.copy()
        for k, identity in enumerate(self.identities):
            state = self.state(k, i)
            if state is not None:
                draw_face(canvas, identity, Palette.lit(identity, self.look.light, self.look.side_light), state)
        if not noise:
            return canvas
        canvas = cv2.convertScaleAbs(canvas, alpha=float(self.look.exposure[i]))
        k = i % len(self.look.noise_up)
        return cv2.subtract(cv2.add(canvas, self.look.noise_up[k]), self.look.noise_down[k])

    def frames(self) -> np.ndarray:
        """All frames (T, H, W, 3) uint8 BGR."""
        return np.stack(list(self.stream()))

    def stream(self) -> Iterator[np.ndarray]:
        """The frames (H, W, 3) uint8 BGR one at a time, in order: a long scene never held in memory."""
        return (self.frame(i) for i in range(self.fmt.num_frames))

    def truth(self) -> list[PersonTruth]:
        """Each person's ground truth, in the order of :attr:`people`; people never visible have no spans."""
        per_frame = [self.boxes(i) for i in range(self.fmt.num_frames)]
        truths = []
        for k, person in enumerate(self.people):
            boxes = {i: found[k] for i, found in enumerate(per_frame) if k in found}
            spans = []
            for a, b in person.intervals:
                inside = [self.time(i) for i in boxes if a <= self.time(i) < b]
                if inside:
                    spans.append((inside[0], inside[-1]))
            truths.append(PersonTruth(k, tuple(spans), boxes))
        return truths


def write_scene(path: Path, scene: Scene) -> list[PersonTruth]:
    """Write the scene as a video-only H.264 MP4 (atomically) and return its ground truth.

    Frames are rendered and encoded one at a time (only the encoded bytes are held), so a minute at 1280x720 is
    fine.
    """
    write_bytes_atomic(path, encode_video(scene.stream(), scene.fmt.fps))
    return scene.truth()
