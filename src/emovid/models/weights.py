"""Pretrained backbone weights: download through torchvision, a local file offline, and input normalisation.

Every pretrained backbone is a stock torchvision model, so weights load strictly into that model before
emovid replaces its head. A local file is therefore a plain torchvision state dict, for example
``torch.save(torchvision.models.resnet18(weights="DEFAULT").state_dict(), "resnet18.pth")``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torchvision.models import WeightsEnum

from emovid.weights import WeightsUnavailableError

PathLike = str | os.PathLike[str]
RGB = tuple[float, float, float]


class InputSpec(NamedTuple):
    """How a model wants its clips: float RGB in [0, 1], then ``(x - mean) / std`` per channel."""

    mean: RGB
    std: RGB


def input_spec_of(weights: WeightsEnum) -> InputSpec:
    """The normalisation torchvision's preset transforms use with these weights."""
    preset = weights.transforms()
    return InputSpec(mean=tuple(preset.mean), std=tuple(preset.std))


def load_backbone_weights(
    model: nn.Module, weights: WeightsEnum, *, pretrained: bool, weights_path: PathLike | None
) -> None:
    """Load weights into a stock torchvision model, in place.

    Args:
        model: the unmodified torchvision model the weights belong to.
        weights: where ``pretrained`` downloads from (and caches in ``torch.hub.get_dir()/checkpoints``).
        pretrained: download (or reuse the cached copy of) ``weights``.
        weights_path: a local torchvision-format state dict; used instead of the download when given.

    Raises:
        WeightsUnavailableError: the download failed or ``weights_path`` does not exist.
        ValueError: the state dict does not fit ``model``.
    """
    if weights_path is not None:
        state = _read_local(Path(weights_path))
        source = str(weights_path)
    elif pretrained:
        state = _download(weights)
        source = _file_name(weights)
    else:
        return
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # lists missing, unexpected and mis-shaped keys, over many lines
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 300 else detail[:300] + "..."
        raise ValueError(f"{source} is not a {type(model).__name__} state dict: {detail}") from exc


def offline_message(weights: WeightsEnum, reason: object) -> str:
    """One line naming the missing file, where it comes from and the two ways to provide it."""
    name = _file_name(weights)
    why = " ".join(str(reason).split())  # keep the message on one line
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"cannot get pretrained weights {name} ({why}); download {weights.url} into {folder}/ "
        f"on a machine with internet, or pass --weights PATH (weights_path=PATH) to a local copy"
    )


def _file_name(weights: WeightsEnum) -> str:
    return weights.url.rsplit("/", 1)[-1]


def _download(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad hash or cached file, RuntimeError
        raise WeightsUnavailableError(offline_message(weights, exc)) from exc


def _read_local(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} does not exist")
    return torch.load(path, map_location="cpu", weights_only=True)
