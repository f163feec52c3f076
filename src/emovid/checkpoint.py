"""Self-contained checkpoints: the model's weights plus everything inference needs to rebuild it.

A training checkpoint (Lightning's format) carries an ``emovid`` entry, an :class:`InferenceSpec`, so
``predict`` needs only the file: model name and options, class names, frame count, resize and crop,
normalisation and the clip length in seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import emovid

CHECKPOINT_FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint that is missing or cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class InferenceSpec:
    """How to turn a video into the model's input, and what its outputs mean."""

    model_args: dict[str, Any]
    class_names: tuple[str, ...]
    frames: int
    resize: dict[str, Any]  # as emovid.data.video.Resize: mode, size, short_side
    crop: str  # "center" or "face"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip_seconds: float  # how much time a training clip spans, for timeline windows
    face_geometry: dict[str, Any] | None = None  # as emovid.faces.FaceGeometry, for crop "face"; None: its default
    format: int = CHECKPOINT_FORMAT
    emovid_version: str = emovid.__version__

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceSpec:
        values = dict(data)
        for key in ("class_names", "mean", "std"):
            values[key] = tuple(values[key])
        return cls(**values)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, InferenceSpec]:
    """Rebuild a trained model in eval mode on the CPU, and its :class:`InferenceSpec`.

    Raises:
        CheckpointError: the file is missing, not a checkpoint, or from an incompatible version.
    """
    from emovid.models import model_from_args

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    spec_data = checkpoint.get("emovid") if isinstance(checkpoint, dict) else None
    if spec_data is None:
        raise CheckpointError(f"{path}: not an emovid checkpoint (no 'emovid' entry); train one with `emovid train`")
    if spec_data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {spec_data.get('format')} from emovid {spec_data.get('emovid_version')} "
            f"cannot be read by emovid {emovid.__version__} (format {CHECKPOINT_FORMAT}); retrain or use that version"
        )
    spec = InferenceSpec.from_dict(spec_data)
    model = model_from_args(spec.model_args)
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model.eval(), spec
