"""Where a synthetic performance goes under each dataset's naming: RAVDESS, CREMA-D, MEAD or a folder per class.

Performances are RAVDESS performances (actor, emotion, intensity, statement, repetition); another naming
writes the same recording under that dataset's name and layout, so every adapter can be tested end to end:

- ``ravdess``: ``Actor_01/02-01-05-02-01-01-01.mp4``.
- ``cremad``: ``1001_IEO_ANG_HI.flv`` (flat, like CREMA-D's ``VideoFlash/``): actor 1000 + n; statement and
  repetition choose one of four sentences; normal intensity is level ``XX``, strong ``HI``. Real CREMA-D video
  is VP6, which FFmpeg decodes but cannot encode, so these files hold FLV1 (Sorenson H.263) video instead.
  Calm and surprised are not CREMA-D emotions and are not written.
- ``mead``: ``M001/video/front/angry/level_3/002.mp4``: odd actors are men (``M``), even ones women (``W``);
  normal intensity is level 1, strong level 3; statement and repetition number the clip. MEAD's contempt is
  drawn with the calm face (the generator has no contempt face of its own), and calm is not written.
- ``folder``: ``angry/actor01_s1_r1_i2.mp4``: a folder per class, names that carry no label.
"""

from __future__ import annotations

from emovid.datasets.cremad import CremadName
from emovid.datasets.mead import MeadName
from emovid.datasets.ravdess import RavdessName

NAMINGS = ("ravdess", "cremad", "mead", "folder")
# RAVDESS emotion code -> the other dataset's emotion, for the emotions it has.
_CREMAD_CODES = {1: "NEU", 3: "HAP", 4: "SAD", 5: "ANG", 6: "FEA", 7: "DIS"}
_MEAD_EMOTIONS = {1: "neutral", 2: "contempt", 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgusted",
                  8: "surprised"}
_CREMAD_SENTENCES = {(1, 1): "IEO", (1, 2): "TIE", (2, 1): "DFA", (2, 2): "IWL"}  # (statement, repetition)


def check_naming(naming: str) -> str:
    if naming not in NAMINGS:
        raise ValueError(f"unknown naming {naming!r}; choose from {', '.join(NAMINGS)}")
    return naming


def expresses(naming: str, emotion: int) -> bool:
    """Whether the naming has a name for the RAVDESS emotion code."""
    if naming == "cremad":
        return emotion in _CREMAD_CODES
    return naming != "mead" or emotion in _MEAD_EMOTIONS


def relative_path(name: RavdessName, naming: str) -> str:
    """The file's path below the output folder under ``naming``."""
    if naming == "ravdess":
        return f"Actor_{name.actor:02d}/{name.filename()}"
    if naming == "cremad":
        sentence = _CREMAD_SENTENCES[name.statement, name.repetition]
        return CremadName(1000 + name.actor, sentence, _CREMAD_CODES[name.emotion],
                          "XX" if name.intensity == 1 else "HI").filename(".flv")
    if naming == "mead":
        actor = f"{'M' if name.actor % 2 else 'W'}{name.actor:03d}"
        clip = (name.statement - 1) * 2 + name.repetition
        return MeadName(actor, "front", _MEAD_EMOTIONS[name.emotion], 1 if name.intensity == 1 else 3, clip).tree_path
    check_naming(naming)
    return (f"{label(name, naming)}/actor{name.actor:02d}_s{name.statement}_r{name.repetition}_"
            f"i{name.intensity}.mp4")


def label(name: RavdessName, naming: str) -> str:
    """The class the file's name says, in emovid's spelling (MEAD's contempt for RAVDESS's calm)."""
    return "contempt" if naming == "mead" and name.emotion == 2 else name.emotion_name
