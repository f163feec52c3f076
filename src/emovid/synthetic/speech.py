"""The syllable rhythm of the two RAVDESS statements, the mouth motion it drives and a speech-like audio.

Times are in seconds. A statement is a fixed sequence of syllables (duration, how wide the vowel opens
the mouth, stress); a performance places it in the clip at some start and tempo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AUDIO_RATE = 16_000  # RAVDESS has 48 kHz; a third of the cost is plenty for these bursts

# (duration s, mouth opening 0-1, stress 0-1, pause after s) at tempo 1; the two statements have the
# same syllable count, so they differ in rhythm: "talk-ing" vs "sit-ting", a pause after different words.
_RHYTHM: dict[int, tuple[tuple[float, float, float, float], ...]] = {
    1: (  # Kids | are | talk | ing | by | the | door
        (0.20, 0.55, 0.8, 0.04),
        (0.12, 0.60, 0.2, 0.03),
        (0.26, 1.00, 1.0, 0.02),
        (0.12, 0.40, 0.1, 0.16),
        (0.18, 0.75, 0.5, 0.03),
        (0.09, 0.35, 0.1, 0.03),
        (0.40, 0.85, 0.9, 0.00),
    ),
    2: (  # Dogs | are | sit | ting | by | the | door
        (0.30, 0.90, 1.0, 0.14),
        (0.11, 0.55, 0.2, 0.03),
        (0.14, 0.45, 0.7, 0.01),
        (0.15, 0.45, 0.2, 0.05),
        (0.20, 0.75, 0.5, 0.03),
        (0.09, 0.35, 0.1, 0.03),
        (0.44, 0.85, 0.9, 0.00),
    ),
}


@dataclass(frozen=True)
class Syllable:
    """One syllable placed in a clip."""

    start: float
    duration: float
    opening: float
    stress: float


def statement_length(statement: int) -> float:
    """Seconds the statement takes at tempo 1."""
    return sum(d + pause for d, _, _, pause in _RHYTHM[statement])


def place_syllables(statement: int, start: float, tempo: float) -> list[Syllable]:
    """The statement's syllables, starting at ``start`` seconds, spoken ``tempo`` times faster than usual."""
    syllables = []
    t = start
    for duration, opening, stress, pause in _RHYTHM[statement]:
        syllables.append(Syllable(t, duration / tempo, opening, stress))
        t += (duration + pause) / tempo
    return syllables


def mouth_envelope(syllables: list[Syllable], times: np.ndarray) -> np.ndarray:
    """Mouth opening from speech (0 closed to about 1 wide) at each time in ``times``."""
    envelope = np.zeros_like(times, dtype=np.float64)
    for s in syllables:
        phase = (times - s.start) / s.duration
        inside = (phase > 0) & (phase < 1)
        # sin^0.7 opens quickly and closes late, like a vowel between two consonants
        bump = np.sin(np.pi * np.clip(phase, 0, 1)) ** 0.7
        envelope = np.where(inside, np.maximum(envelope, s.opening * bump), envelope)
    return envelope


def speech_audio(
    syllables: list[Syllable], seconds: float, f0: float, loudness: float, rng: np.random.Generator
) -> np.ndarray:
    """A mono speech-like signal: one voiced burst per syllable with a falling pitch and a consonant onset.

    Args:
        syllables: where the bursts go.
        seconds: length of the track.
        f0: base pitch in Hz (lower for male voices).
        loudness: peak amplitude scale, about 0.1-0.5.
        rng: the clip's random generator (breath noise, pitch jitter).

    Returns:
        float32 samples in [-1, 1] at :data:`AUDIO_RATE`, shape (num_samples,).
    """
    n = int(round(seconds * AUDIO_RATE))
    audio = rng.normal(0.0, 0.002, n)  # room noise so silences are not digital zero
    harmonics = np.arange(1, 9)[:, None]
    # a fixed vowel-ish spectral shape: energy peaks around the 2nd-4th harmonic
    weights = (1.0 / harmonics) * (1.0 + 1.5 * np.exp(-((harmonics - 3.0) ** 2) / 2.0))
    for s in syllables:
        i0 = max(0, int(s.start * AUDIO_RATE))
        i1 = min(n, int((s.start + s.duration) * AUDIO_RATE))
        if i1 - i0 < 16:
            continue
        t = np.arange(i1 - i0) / AUDIO_RATE
        phase = t / s.duration
        pitch = f0 * (1.0 + 0.12 * s.stress) * (1.0 - 0.15 * phase) * (1.0 + rng.normal(0, 0.02))
        theta = 2 * np.pi * np.cumsum(pitch) / AUDIO_RATE
        voiced = (weights * np.sin(harmonics * theta)).sum(axis=0) / weights.sum()
        envelope = np.sin(np.pi * phase) ** 0.6 * (0.5 + 0.5 * s.opening)
        consonant = rng.normal(0.0, 0.25, i1 - i0) * np.exp(-t / 0.02)
        audio[i0:i1] += loudness * (0.6 + 0.4 * s.stress) * (envelope * voiced + consonant)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
