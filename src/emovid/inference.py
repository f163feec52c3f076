"""One path from uint8 clips to class probabilities: training's validation, ``evaluate`` and ``predict`` all
use :func:`clip_probabilities`, so a model reported with flip test-time augmentation is served with it.

A frame-level model's clip answer is a mean over its frames (:func:`frame_kind`), so :func:`frame_scores` can score
frames one by one, each once, and pool them over any stretch of time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch
from torch import nn

from emovid.progress import progress as progress_bar
from emovid.timeline import ScoreKind
from emovid.transforms import normalize

Precision = Literal["32", "bf16", "16"]
PRECISIONS: tuple[str, ...] = ("32", "bf16", "16")


@dataclass(frozen=True)
class InferenceOptions:
    """How clips go through a model.

    Attributes:
        tta: 1, or 2 to average each clip's probabilities with those of its horizontal mirror.
        device: ``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``32``, or ``bf16`` / ``16`` for autocast on CUDA (CPU always computes in 32 bits).
        batch_size: clips per model call.
    """

    tta: int = 1
    device: str = "auto"
    precision: str = "32"
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.tta not in (1, 2):
            raise ValueError(f"tta must be 1 or 2, got {self.tta}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        resolve_device(self.device)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; a CUDA device on a machine without one is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return device


def precision_of(lightning_precision: str | None) -> str:
    """The inference precision matching a training precision (``bf16-mixed`` -> ``bf16``)."""
    text = (lightning_precision or "32").split("-")[0]
    return text if text in PRECISIONS else "32"


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if device.type != "cuda" or precision == "32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def clip_probabilities(model: nn.Module, clips: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                       tta: int = 1, precision: str = "32") -> torch.Tensor:
    """Class probabilities (B, K), float32 on the clips' device, for uint8 clips (B, T, C, H, W).

    Normalisation happens on the clips' device. With ``tta=2`` the probabilities average the clip and its
    horizontal mirror. Gradients flow unless the caller disables them.
    """
    x = normalize(clips, mean, std)
    with _autocast(clips.device, precision):
        probs = model(x).float().softmax(dim=-1)
        if tta == 2:
            probs = (probs + model(x.flip(-1)).float().softmax(dim=-1)) / 2
    return probs


def frame_kind(model: nn.Module) -> ScoreKind | None:
    """How a model's clip answer comes from its frames' ``model.frame_scores(frames)``, as its ``frame_pooling``
    says: ``probabilities``, their mean; ``logits``, the softmax of their mean; None for a clip-level model (no
    such attribute, or None)."""
    kind = getattr(model, "frame_pooling", None)
    return kind if kind in ("probabilities", "logits") and hasattr(model, "frame_scores") else None


def frame_scores(model: nn.Module, frames: torch.Tensor, mean: Sequence[float], std: Sequence[float], tta: int = 1,
                 precision: str = "32") -> torch.Tensor:
    """A frame-level model's scores (N, V, K), float32, for uint8 frames (N, C, H, W), as :func:`frame_kind` says.

    V is 1, or 2 with ``tta=2``: the frames and their mirror images, pooled apart and averaged after, as
    :func:`clip_probabilities` averages a clip's and its mirror's probabilities.
    """
    if frame_kind(model) is None:
        raise ValueError(f"{type(model).__name__} is not a frame-level model")
    score = cast(Callable[[torch.Tensor], torch.Tensor], model.frame_scores)
    x = normalize(frames, mean, std)
    with _autocast(frames.device, precision):
        views = [score(x).float()] + ([score(x.flip(-1)).float()] if tta == 2 else [])
    return torch.stack(views, dim=1)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any, such as an ONNX session)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.inference_mode()
def probabilities_of_batches(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor, dict]],
                             mean: Sequence[float], std: Sequence[float], options: InferenceOptions,
                             progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Probabilities (N, K), labels (N,) and per-clip metadata for a loader of ``(clips, labels, meta)``.

    The model must already be on ``options.device``.
    """
    device = model_device(model)
    probs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    metas: list[dict] = []
    for clips, batch_labels, batch_meta in progress_bar(batches, desc="evaluate", unit="batch",
                                                        enabled=progress, leave=False):
        p = clip_probabilities(model, clips.to(device, non_blocking=True), mean, std, options.tta, options.precision)
        probs.append(p.cpu())
        labels.append(batch_labels)
        metas.extend({k: (v[i].item() if torch.is_tensor(v) else v[i]) for k, v in batch_meta.items()}
                     for i in range(len(batch_labels)))
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), metas
