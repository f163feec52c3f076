"""A cartoon face: an actor's look (:class:`Identity`), one frame's state (:class:`FaceState`), drawing.

Shapes are built in face coordinates (origin at the centre of the face oval, y down, 1 = half the face
height), moved into the frame by one similarity transform (position, size, roll) and drawn as anti-aliased
polygons with sub-pixel precision, so slow motion stays smooth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

Color = tuple[float, float, float]  # BGR, 0-255

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = 1 << _SHIFT
_AA = cv2.LINE_AA

# BGR skin tones from light to dark; an actor's tone is a point between two neighbours.
_SKIN_TONES = np.array(
    [(196, 224, 255), (167, 194, 241), (138, 172, 224), (96, 134, 198), (70, 102, 161), (50, 72, 110)]
)
# black, dark brown, brown, light brown, blond, auburn, grey
_HAIR_COLORS = np.array(
    [(20, 20, 25), (25, 35, 60), (35, 55, 95), (60, 95, 140), (110, 170, 215), (40, 70, 150), (150, 150, 155)]
)
_IRIS_COLORS = np.array([(30, 45, 70), (40, 70, 100), (120, 100, 60), (90, 110, 80)])

_EYE_XS = np.linspace(-1, 1, 9)
_MOUTH_XS = np.linspace(-1, 1, 13)
_BROW_T = np.linspace(0, 1, 9)[:, None]
_SHADOW_ANGLES = np.linspace(-1.3, 1.3, 14)
_BROW_TAPER = np.interp(_BROW_T[:, 0], [0, 0.4, 1], [1.0, 0.9, 0.45])  # thick inner end, thin tail

MALE_HAIR = ("short", "receding", "swept")
FEMALE_HAIR = ("long", "bob", "bun")


@dataclass(frozen=True)
class Identity:
    """An actor's fixed appearance. Lengths are in face units (1 = half the face height)."""

    size: float  # face half-height as a fraction of the frame height
    place_x: float  # 0 = as far left as the frame allows, 1 = as far right
    place_y: float
    face_width: float  # half-width of the face oval
    jaw: float  # superellipse exponent of the lower face: 2 oval, higher square
    skin: Color
    hair: Color
    hair_style: str
    hair_volume: float
    hair_length: float  # where long hair ends (y)
    hairline: float  # y of the hairline at the centre
    parting: float  # x of the parting or the fringe sweep, -1..1
    eye_spacing: float  # x of each eye centre
    eye_y: float
    eye_size: float  # eye half-width
    iris: Color
    brow_gap: float  # brow height above the eye
    brow_thickness: float
    nose_y: float
    nose_width: float
    mouth_y: float
    mouth_width: float
    lip_thickness: float
    lip_tint: float  # how red the lips are
    stubble: float  # 0 none, about 0.2 heavy
    shirt: Color
    voice: float  # speaking pitch in Hz

    @classmethod
    def sample(cls, seed: int, actor: int) -> Identity:
        """The actor's look, a pure function of (seed, actor); odd actors are male as in RAVDESS."""
        rng = np.random.default_rng([seed, actor, 1])
        male = actor % 2 == 1

        def pick(table: np.ndarray, u: float) -> Color:
            """The colour at ``u`` (0-1) along the table, between two neighbours."""
            i = u * (len(table) - 1)
            lo = int(i)
            c = table[lo] + (i - lo) * (table[min(lo + 1, len(table) - 1)] - table[lo])
            return tuple(float(v) for v in c)  # type: ignore[return-value]

        styles = MALE_HAIR if male else FEMALE_HAIR
        tone = rng.uniform()
        hair_u = rng.uniform(0, 1 - 0.6 * tone)  # darker skin, mostly darker hair
        return cls(
            size=float(rng.uniform(0.25, 0.33)),
            place_x=float(rng.uniform(0.15, 0.85)),
            place_y=float(rng.uniform(0.25, 0.75)),
            face_width=float(rng.uniform(0.76, 0.86) if male else rng.uniform(0.7, 0.8)),
            jaw=float(rng.uniform(2.4, 3.0) if male else rng.uniform(1.8, 2.2)),
            skin=pick(_SKIN_TONES, tone),
            hair=pick(_HAIR_COLORS, hair_u),
            hair_style=styles[int(rng.integers(len(styles)))],
            hair_volume=float(rng.uniform(1.02, 1.1) if male else rng.uniform(1.04, 1.16)),
            hair_length=float(rng.uniform(1.2, 2.0)),
            hairline=float(rng.uniform(-0.68, -0.55) if male else rng.uniform(-0.6, -0.5)),
            parting=float(rng.uniform(-1, 1)),
            eye_spacing=float(rng.uniform(0.29, 0.37)),
            eye_y=float(rng.uniform(-0.14, -0.06)),
            eye_size=float(rng.uniform(0.11, 0.14)),
            iris=pick(_IRIS_COLORS, rng.uniform()),
            brow_gap=float(rng.uniform(0.2, 0.27)),
            brow_thickness=float(rng.uniform(0.055, 0.08) if male else rng.uniform(0.03, 0.05)),
            nose_y=float(rng.uniform(0.22, 0.3)),
            nose_width=float(rng.uniform(0.1, 0.14)),
            mouth_y=float(rng.uniform(0.5, 0.58)),
            mouth_width=float(rng.uniform(0.24, 0.32)),
            lip_thickness=float(rng.uniform(0.035, 0.05) if male else rng.uniform(0.05, 0.07)),
            lip_tint=float(rng.uniform(0.1, 0.25) if male else rng.uniform(0.25, 0.5)),
            stubble=float(rng.choice([0.0, rng.uniform(0.1, 0.22)])) if male else 0.0,
            shirt=tuple(float(v) for v in rng.uniform(15, 55, 3)),  # type: ignore[arg-type]
            voice=float(rng.uniform(95, 140) if male else rng.uniform(170, 240)),
        )

    def place(self, aspect: float, size: float) -> tuple[float, float]:
        """Resting face centre as frame fractions (x of width, y of height) for a frame of this aspect."""
        half_w = size * self.face_width * 1.15 / aspect  # with a little hair either side
        lo_x, hi_x = half_w + 0.02, 1 - half_w - 0.02
        lo_y, hi_y = size * 1.3 + 0.02, 1 - size * 1.05 - 0.02  # hair above, chin below
        x = lo_x + self.place_x * (hi_x - lo_x) if hi_x > lo_x else 0.5
        y = lo_y + self.place_y * (hi_y - lo_y) if hi_y > lo_y else 0.5
        return x, y


@dataclass(frozen=True)
class FaceState:
    """The face in one frame: pose, facial actions (about -1..1, 0 relaxed), speech, blink and gaze."""

    x: float  # face centre, fraction of the frame width
    y: float  # fraction of the frame height
    size: float  # face half-height, fraction of the frame height
    roll: float = 0.0  # degrees
    yaw: float = 0.0
    pitch: float = 0.0  # head up (+) or down (-)
    smile: float = 0.0
    jaw_drop: float = 0.0
    lip_press: float = 0.0
    lip_stretch: float = 0.0
    brow_raise: float = 0.0
    brow_lower: float = 0.0
    inner_brow: float = 0.0
    eye_open: float = 0.0
    nose_wrinkle: float = 0.0
    speech: float = 0.0
    blink: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0


@dataclass(frozen=True)
class Palette:
    """The colours of one clip: the identity's colours under the clip's lighting."""

    skin: Color
    skin_shadow: Color  # the side of the face away from the light
    shadow_side: int  # -1 left, 1 right, 0 no side light
    shade: Color  # neck and ears, in shadow
    hair: Color
    brow: Color
    lips: Color
    mouth: Color
    eye_white: Color
    iris: Color
    shirt: Color

    @classmethod
    def lit(cls, identity: Identity, light: np.ndarray, side_light: float = 0.0) -> Palette:
        """Colours under a per-channel light gain ``light`` (3,) and a side light that darkens one side of
        the face by ``abs(side_light)`` (negative: the left side in the image)."""

        def c(color: Color | np.ndarray) -> Color:
            return tuple(float(v) for v in np.clip(np.asarray(color) * light, 0, 255))  # type: ignore[return-value]

        skin = np.asarray(identity.skin)
        lips = skin * (1 - identity.lip_tint) + np.array([70.0, 60.0, 170.0]) * identity.lip_tint
        return cls(
            skin=c(skin),
            skin_shadow=c(skin * (1 - abs(side_light))),
            shadow_side=int(np.sign(side_light)),
            shade=c(skin * 0.8),
            hair=c(identity.hair),
            # brows darker than both hair and skin, so fair brows on dark skin still show
            brow=c(np.minimum(np.asarray(identity.hair) * 0.8, skin * 0.5)),
            lips=c(lips * 0.9),
            mouth=c((40, 30, 60)),
            eye_white=c((235, 238, 240)),
            iris=c(identity.iris),
            shirt=c(identity.shirt),
        )


def _darker(color: Color, amount: float) -> Color:
    k = 1.0 - amount
    return (color[0] * k, color[1] * k, color[2] * k)


def _mix(a: Color, b: Color, t: float) -> Color:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


@lru_cache(maxsize=64)
def _unit_arc(a0: float, a1: float, n: int) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 16) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (radians; 0 = right, pi/2 = down), shape (n, 2)."""
    return _unit_arc(a0, a1, n) * (rx, ry) + (cx, cy)


def face_outline(identity: Identity, n: int = 48) -> np.ndarray:
    """The face oval in face units, shape (n, 2): an ellipse on top, a superellipse jaw below."""
    return _outline_at(identity, np.linspace(0, 2 * np.pi, n, endpoint=False))


def _outline_at(identity: Identity, angles: np.ndarray) -> np.ndarray:
    """Points of the face outline at ``angles`` (radians, 0 = right, pi/2 = down), shape (N, 2)."""
    c, s = np.cos(angles), np.sin(angles)
    p = np.where(s > 0, 2.0 / identity.jaw, 1.0)  # lower half (y > 0) gets the jaw exponent
    return np.stack([identity.face_width * np.sign(c) * np.abs(c) ** p, np.sign(s) * np.abs(s) ** p], axis=1)


def _transform(state: FaceState, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The (2, 2) matrix and (2,) offset taking face units to frame pixels."""
    unit = state.size * height
    angle = np.deg2rad(state.roll)
    squeeze = 1.0 - 0.08 * abs(state.yaw)  # a turned head looks narrower
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return unit * rot @ np.diag([squeeze, 1.0]), np.array([state.x * width, state.y * height])


class _Painter:
    """Draws face-unit shapes into the frame through one transform."""

    def __init__(self, canvas: np.ndarray, state: FaceState):
        height, width = canvas.shape[:2]
        self.canvas = canvas
        self.unit = state.size * height  # pixels per face unit
        self.matrix, self.origin = _transform(state, width, height)

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Face units to frame pixels (float), (N, 2)."""
        return pts @ self.matrix.T + self.origin

    def _fixed(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.points(pts) * _SCALE).astype(np.int32)

    def fill(self, pts: np.ndarray, color: Color) -> None:
        cv2.fillPoly(self.canvas, [self._fixed(pts)], color, _AA, _SHIFT)

    def line(self, pts: np.ndarray, color: Color, width: float, closed: bool = False) -> None:
        """A polyline ``width`` face units thick (at least one pixel)."""
        thickness = max(1, int(round(width * self.unit)))
        cv2.polylines(self.canvas, [self._fixed(pts)], closed, color, thickness, _AA, _SHIFT)

    def band(self, pts: np.ndarray, widths: np.ndarray, color: Color) -> None:
        """A filled stroke along ``pts`` with a width per point: tapered brows."""
        d = np.gradient(pts, axis=0)
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-9)
        offset = normal * (widths[:, None] / 2)
        self.fill(np.concatenate([pts + offset, (pts - offset)[::-1]]), color)


def face_box(
    identity: Identity, state: FaceState, width: int, height: int
) -> tuple[float, float, float, float]:
    """The box ``(x0, y0, x1, y1)`` of the face oval (not the hair), clipped to the frame.

    In pixel-edge coordinates: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``, so
    ``frame[int(y0):ceil(y1), int(x0):ceil(x1)]`` is the face.
    """
    matrix, origin = _transform(state, width, height)
    pts = face_outline(identity) @ matrix.T + origin + 0.5  # OpenCV draws with pixel centres at integers
    x0, y0 = np.clip(pts.min(axis=0), 0, [width, height])
    x1, y1 = np.clip(pts.max(axis=0), 0, [width, height])
    return float(x0), float(y0), float(x1), float(y1)


def draw_face(canvas: np.ndarray, identity: Identity, palette: Palette, state: FaceState) -> None:
    """Draw the face, hair, neck and shoulders of ``state`` onto ``canvas`` (H, W, 3) uint8 BGR, in place."""
    p = _Painter(canvas, state)
    ident = identity
    # Features sit in front of the face surface, so turning the head moves them sideways and pitching it
    # moves them up or down; the nose sticks out furthest and moves most.
    fx, fy = 0.18 * state.yaw, -0.12 * state.pitch
    _back_hair(p, ident, palette)
    p.fill(np.array([[-0.33, 0.4], [0.33, 0.4], [0.36, 1.6], [-0.36, 1.6]]), palette.shade)  # neck
    p.fill(_arc(0.0, 2.25, 2.1, 0.95, np.pi, 2 * np.pi, 24), palette.shirt)  # shoulders
    if ident.hair_style not in ("long", "bob"):
        for side in (-1, 1):
            p.fill(_arc(side * ident.face_width * 0.97, 0.08, 0.11, 0.2, 0, 2 * np.pi, 12), palette.shade)
    outline = face_outline(ident)
    p.fill(outline, palette.skin)
    if palette.shadow_side:
        # cel shading: a crescent along the outline on the side away from the light
        edge = _outline_at(ident, _SHADOW_ANGLES + (np.pi if palette.shadow_side < 0 else 0.0))
        p.fill(np.concatenate([edge, edge[::-1] * [0.62, 1.0]]), palette.skin_shadow)
    if ident.stubble > 0:
        # A band along the jaw: the outline's lower run (it goes clockwise from the right, so the points
        # below the mouth are contiguous) and the same run pulled in towards the mouth.
        jaw = outline[outline[:, 1] > ident.mouth_y - 0.1]
        centre = np.array([0.0, ident.mouth_y - 0.25])
        inner = centre + (jaw - centre) * np.array([0.75, 0.62])
        p.fill(np.concatenate([jaw, inner[::-1]]), _mix(palette.skin, (60.0, 55.0, 55.0), ident.stubble))
    _forehead(p, ident, palette, state, fx, fy)
    _eyes(p, ident, palette, state, fx, fy)
    _brows(p, ident, palette, state, fx, fy)
    _nose(p, ident, palette, state, fx * 1.4, fy * 1.3)
    _mouth(p, ident, palette, state, fx, fy)
    _front_hair(p, ident, palette, state)


def _back_hair(p: _Painter, ident: Identity, pal: Palette) -> None:
    w, v = ident.face_width, ident.hair_volume
    if ident.hair_style in ("long", "bob"):
        bottom = ident.hair_length if ident.hair_style == "long" else 0.75
        top = _arc(0.0, -0.05, w * 1.22 * v, 1.12 * v, np.pi, 2 * np.pi, 20)
        sides = np.array(
            [[w * 1.25 * v, 0.3], [w * 1.3 * v, bottom], [-w * 1.3 * v, bottom], [-w * 1.25 * v, 0.3]]
        )
        p.fill(np.concatenate([top, sides]), pal.hair)
    elif ident.hair_style == "bun":
        p.fill(_arc(0.15 * ident.parting, -1.05, 0.32, 0.28, 0, 2 * np.pi, 16), pal.hair)


def _front_hair(p: _Painter, ident: Identity, pal: Palette, state: FaceState) -> None:
    w, v, hl = ident.face_width, ident.hair_volume, ident.hairline
    # Looking down shows more of the top of the head: the hairline comes down.
    drop = -0.1 * state.pitch
    cap = _arc(0.0, -0.05, w * 1.06 * v, 1.04 * v, np.pi, 2 * np.pi, 20)
    part = 0.3 * ident.parting
    if ident.hair_style in MALE_HAIR:
        # Short hair hugs the head: the cap ends at the temples and thin sideburns run down to the ears.
        cap = _arc(0.0, -0.05, w * 1.04 * v, 1.03 * v, np.pi + 0.3, 2 * np.pi - 0.3, 20)
        temple = -0.45 if ident.hair_style == "receding" else -0.32
        dip = 0.12 if ident.hair_style == "receding" else 0.0
        sweep = 0.2 * np.sign(ident.parting) if ident.hair_style == "swept" else 0.0  # fringe low on one side
        line = np.array(
            [
                [w * 1.0, -0.02],
                [w * 0.9, -0.02],
                [w * 0.88, temple],
                [w * 0.6, hl + 0.05 - dip + max(-sweep, 0)],
                [part, hl + abs(sweep) * 0.5],
                [-w * 0.6, hl + 0.05 - dip + max(sweep, 0)],
                [-w * 0.88, temple],
                [-w * 0.9, -0.02],
                [-w * 1.0, -0.02],
            ]
        )
    elif ident.hair_style == "bun":
        line = np.array(
            [
                [w * 0.99, -0.15],
                [w * 0.7, hl - 0.02],
                [part, hl - 0.08],
                [-w * 0.7, hl - 0.02],
                [-w * 0.99, -0.15],
            ]
        )
    else:  # long and bob: locks fall beside the face, covering its edge
        lock = min(ident.hair_length, 1.0) if ident.hair_style == "long" else 0.72
        line = np.array(
            [
                [w * 1.1, lock],
                [w * 0.86, lock * 0.6],
                [w * 0.8, -0.2],
                [w * 0.55, hl + 0.08],
                [part, hl - 0.05],
                [-w * 0.55, hl + 0.08],
                [-w * 0.8, -0.2],
                [-w * 0.86, lock * 0.6],
                [-w * 1.1, lock],
            ]
        )
        cap = np.concatenate([[[-w * 1.1 * v, lock]], cap, [[w * 1.1 * v, lock]]])
    line[:, 1] += drop * (line[:, 1] < 0)
    p.fill(np.concatenate([cap, line]), pal.hair)


def _forehead(p: _Painter, ident: Identity, pal: Palette, s: FaceState, fx: float, fy: float) -> None:
    # Raised brows fold the forehead; lowered brows crease the skin between them.
    raise_fold = float(np.clip(s.brow_raise - 0.15, 0, 1))
    if raise_fold > 0.02:
        for k, y in enumerate((-0.52, -0.62)):
            arc = _arc(fx, y + fy + 0.6, 0.32 - 0.05 * k, 0.55, -np.pi * 0.68, -np.pi * 0.32, 8)
            p.line(arc, _darker(pal.skin, 0.3 * raise_fold), 0.018)
    knit = float(np.clip(s.brow_lower - 0.1, 0, 1))
    if knit > 0.02:
        top = ident.eye_y - ident.brow_gap + fy
        for side in (-1, 1):
            x = fx + side * 0.05
            p.line(
                np.array([[x, top - 0.02], [x + side * 0.015, top + 0.1]]),
                _darker(pal.skin, 0.35 * knit),
                0.02,
            )


def _eyes(p: _Painter, ident: Identity, pal: Palette, s: FaceState, fx: float, fy: float) -> None:
    ew = ident.eye_size
    openness = float(np.clip(1.0 + 0.5 * s.eye_open, 0.25, 1.7)) * (1.0 - s.blink)
    up = ew * 0.55 * openness
    # A real smile raises the cheeks and pushes the lower lid up.
    low = ew * 0.35 * openness * (1.0 - 0.45 * float(np.clip(s.smile, 0, 1)))
    xs, bend = _EYE_XS, 1 - _EYE_XS**2
    lid_color = _darker(pal.skin, 0.55)
    for side in (-1, 1):
        ex, ey = side * ident.eye_spacing + fx, ident.eye_y + fy
        if up + low < 0.012:
            p.line(np.stack([ex + ew * xs, ey + 0.01 * bend], axis=1), lid_color, 0.022)
            continue
        upper = np.stack([ex + ew * xs, ey - up * bend**0.7], axis=1)
        lower = np.stack([ex + ew * xs, ey + low * bend], axis=1)[::-1]
        p.fill(np.concatenate([upper, lower]), pal.eye_white)
        centre = np.array([ex + s.gaze_x * ew * 0.45, ey + s.gaze_y * ew * 0.3])
        cx, cy = float(centre[0]), float(centre[1])
        p.fill(_arc(cx, cy, ew * 0.5, ew * 0.5, 0, 2 * np.pi, 14), pal.iris)
        p.fill(_arc(cx, cy, ew * 0.22, ew * 0.22, 0, 2 * np.pi, 10), (20, 20, 20))
        # Skin above and below the lids hides the part of the iris the lids cover.
        p.fill(
            np.concatenate([upper, [[ex + ew * 1.05, ey - ew * 1.3], [ex - ew * 1.05, ey - ew * 1.3]]]),
            pal.skin,
        )
        p.fill(
            np.concatenate([lower, [[ex - ew * 1.05, ey + ew * 1.1], [ex + ew * 1.05, ey + ew * 1.1]]]),
            pal.skin,
        )
        p.line(upper, lid_color, 0.025)
        p.line(lower, _darker(pal.skin, 0.25), 0.012)


def _brows(p: _Painter, ident: Identity, pal: Palette, s: FaceState, fx: float, fy: float) -> None:
    raise_ = max(s.brow_raise, -0.3)
    lower = max(s.brow_lower, -0.3)
    inner = max(s.inner_brow, -0.3)
    ew = ident.eye_size
    for side in (-1, 1):
        ex = side * ident.eye_spacing + fx
        base = ident.eye_y - ident.brow_gap + fy - 0.13 * raise_ + 0.07 * lower
        knit = 0.04 * lower
        ctrl = np.array(
            [
                [ex - side * (ew * 1.05 + knit), base + 0.05 * lower - 0.12 * inner],
                [ex + side * ew * 0.15, base - 0.05 - 0.03 * raise_ - 0.03 * inner],
                [ex + side * ew * 1.4, base + 0.03 + 0.03 * inner],
            ]
        )
        t = _BROW_T
        curve = (1 - t) ** 2 * ctrl[0] + 2 * t * (1 - t) * ctrl[1] + t**2 * ctrl[2]  # quadratic Bezier
        widths = ident.brow_thickness * _BROW_TAPER
        p.band(curve, widths, pal.brow)


def _nose(p: _Painter, ident: Identity, pal: Palette, s: FaceState, fx: float, fy: float) -> None:
    wrinkle = float(np.clip(s.nose_wrinkle, 0, 1.2))
    nw = ident.nose_width * (1 + 0.15 * wrinkle)
    ny = ident.nose_y + fy - 0.04 * wrinkle
    base = np.array(
        [[-nw, ny - 0.03], [-nw * 0.6, ny + 0.02], [0, ny + 0.035], [nw * 0.6, ny + 0.02], [nw, ny - 0.03]]
    )
    p.line(base + [fx, 0.0], _darker(pal.skin, 0.35), 0.02)
    p.line(
        np.array([[fx + 0.05, ident.eye_y + fy + 0.08], [fx + 0.07, ny - 0.06]]),
        _darker(pal.skin, 0.12),
        0.02,
    )
    if wrinkle > 0.05:
        top = ident.eye_y + fy + 0.06
        for dy in (0.0, 0.05):
            p.line(
                np.array([[fx - 0.07, top + dy], [fx, top + dy - 0.02], [fx + 0.07, top + dy]]),
                _darker(pal.skin, 0.35 * wrinkle),
                0.016,
            )
    # The folds from nose to mouth corners deepen with a smile or a sneer.
    fold = 0.05 + 0.25 * float(np.clip(s.smile, 0, 1)) + 0.25 * wrinkle + 0.1 * max(s.lip_stretch, 0)
    corner_y = ident.mouth_y + fy * 0.8 - 0.09 * s.smile
    mw = ident.mouth_width
    for side in (-1, 1):
        pts = np.array(
            [[side * (nw + 0.03), ny - 0.01], [side * (mw + 0.08), ny + 0.1], [side * (mw + 0.06), corner_y]]
        )
        p.line(pts + [fx, 0.0], _darker(pal.skin, fold), 0.016)


def _mouth(p: _Painter, ident: Identity, pal: Palette, s: FaceState, fx: float, fy: float) -> None:
    smile, press = s.smile, float(np.clip(s.lip_press, 0, 1))
    stretch = float(np.clip(s.lip_stretch, 0, 1.2))
    raise_upper = 0.06 * float(np.clip(s.nose_wrinkle, 0, 1.2))
    opening = float(np.clip(s.jaw_drop + s.speech, 0, 1.4))
    round_ = float(np.clip(s.jaw_drop, 0, 1))  # a dropped jaw makes an O, speech barely narrows the mouth
    gap = 0.2 * opening
    mw = ident.mouth_width * (1 + 0.28 * stretch + 0.12 * max(smile, 0) - 0.18 * press)
    mw *= 1 - 0.3 * round_ - 0.08 * opening
    my = ident.mouth_y + fy * 0.8
    corner = my - 0.09 * smile + 0.02 * stretch
    top_in, bottom_in = my - raise_upper - 0.15 * gap, my + 0.85 * gap
    thin = 1 - 0.6 * press - 0.3 * stretch
    xs, bend = _MOUTH_XS, 1 - _MOUTH_XS**2
    x = fx + mw * xs
    upper_in = np.stack([x, corner + (top_in - corner) * bend], axis=1)
    lower_in = np.stack([x, corner + (bottom_in - corner) * bend ** (1 - 0.5 * round_)], axis=1)
    bow = 1 - 0.3 * np.exp(-((xs / 0.18) ** 2))  # the dip of the cupid's bow
    upper_out = upper_in - np.stack([0 * xs, ident.lip_thickness * thin * bend**0.5 * bow], axis=1)
    lower_out = lower_in + np.stack([0 * xs, 1.3 * ident.lip_thickness * thin * bend**0.5], axis=1)
    p.fill(np.concatenate([upper_out, lower_out[::-1]]), pal.lips)
    if gap > 0.004:
        p.fill(np.concatenate([upper_in, lower_in[::-1]]), pal.mouth)
        teeth = min(0.35 * gap * (1 - round_) + 0.04 * max(smile, 0) + 0.3 * raise_upper, 0.9 * gap)
        p.fill(np.concatenate([upper_in, (upper_in + [0, teeth] * bend[:, None])[::-1]]), (225, 230, 232))
    p.line(upper_in, _darker(pal.lips, 0.45 + 0.2 * press), 0.016)
