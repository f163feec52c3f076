"""HSEmotion / EmotiEffLib AffectNet EfficientNets through timm, loaded from a file the user downloaded.

The models of Savchenko's HSEmotion (now EmotiEffLib; ``models/affectnet_emotions/*.pt``) are timm
``tf_efficientnet_b0_ns`` / ``tf_efficientnet_b2_ns`` (TensorFlow-style 'same' padding, BatchNorm epsilon
1e-3), pretrained on VGGFace2 and fine-tuned on AffectNet: ``enet_b0_8_best_afew``, ``enet_b0_8_best_vgaf``
and ``enet_b0_8_va_mtl`` are ``arch="tf_efficientnet_b0"`` (224 x 224 input), ``enet_b2_8`` and
``enet_b2_7`` are ``arch="tf_efficientnet_b2"`` (260 x 260). ``efficientnet_b0`` has the same parameter
names but other padding, so its outputs would be wrong; a pickled file is checked against ``arch``.
Heads have 8 classes (:data:`AFFECTNET_CLASSES`), 7 (the same without contempt) or, for ``*_va_mtl``, 10
(the 8 classes, then valence and arousal). Input is an RGB face crop normalised with ImageNet's mean and std.

A file can be either of:

- the whole pickled model, as HSEmotion distributes it (``torch.save(model)``). It is read with torch's
  ``weights_only`` unpickler, allowing only PyTorch and timm module classes, so it cannot run arbitrary
  code; module paths of older timm releases (``timm.models.layers.*``, ``timm.models.efficientnet_blocks``)
  are mapped to today's. The weights then go into a fresh timm model, so the timm release that pickled it
  does not matter. A head wrapped as ``nn.Sequential(nn.Linear)`` (``classifier.0.*``) is accepted.
- a state dict of that model, ``torch.save(model.state_dict(), path)``, possibly under a ``"state_dict"``
  or ``"model"`` key or with DataParallel's ``module.`` prefixes.

Needs timm: ``pip install "emovid[timm]"``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from emovid.models.late_fusion import LateFusion
from emovid.models.registry import register_model
from emovid.models.weights import InputSpec, PathLike, WeightsUnavailableError

AFFECTNET_CLASSES = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
HSEMOTION_INPUT_SPEC = InputSpec(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# Where older timm releases kept what timm 1.x has elsewhere (prefix -> prefix).
_MOVED_MODULES = {
    "timm.models.layers.": "timm.layers.",
    "timm.models.efficientnet_blocks": "timm.models._efficientnet_blocks",
    "timm.models.efficientnet_builder": "timm.models._efficientnet_builder",
}


def read_hsemotion_file(path: PathLike) -> tuple[dict[str, Tensor], nn.Module | None]:
    """The state dict in an HSEmotion file, with timm's key names, and the pickled model if it holds one.

    Raises:
        WeightsUnavailableError: no such file.
        ValueError: the file holds something other than module classes and tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} does not exist")
    with torch.serialization.safe_globals(_module_classes_in(path)):
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        obj = obj.get("state_dict", obj.get("model", obj))
    pickled = obj if isinstance(obj, nn.Module) else None
    state = pickled.state_dict() if pickled is not None else obj
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: neither a model nor a state dict")
    # DataParallel prefixes; HSEmotion's heads are nn.Sequential(nn.Linear), timm's a bare nn.Linear.
    return {re.sub(r"^classifier\.0\.", "classifier.", k.removeprefix("module.")): v for k, v in state.items()}, pickled


def _module_classes_in(path: Path) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """The classes a pickled model names, for torch's safe_globals; refuses anything but torch.nn and timm modules."""
    allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = []
    for name in torch.serialization.get_unsafe_globals_in_checkpoint(path):
        # Today's location first: importing timm's deprecated aliases would warn.
        moved = [new + name.removeprefix(old) for old, new in _MOVED_MODULES.items() if name.startswith(old)]
        found = next((obj for obj in map(_import, [*moved, name]) if obj is not None), None)
        if not (isinstance(found, type) and issubclass(found, nn.Module)):
            raise ValueError(
                f"{path}: refusing to unpickle {name} (only torch.nn and timm modules are allowed, and this timm "
                f"must have it); re-save the weights with torch.save(model.state_dict(), PATH)"
            )
        allowed.append((found, name))  # registered under the name the file uses
    return allowed


def _import(name: str) -> Any:
    """The object a dotted name refers to, if it lives in torch.nn or timm; None otherwise."""
    module, _, attr = name.rpartition(".")
    if not module.startswith(("torch.nn.", "timm.")):
        return None
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def _check_architecture(pickled: nn.Module | None, model: nn.Module, arch: str, path: PathLike) -> None:
    """A pickled model must have ``arch``'s stem: tf_ EfficientNets pad like TensorFlow, the others do not."""
    if pickled is None or not hasattr(pickled, "conv_stem"):
        return
    stem, expected = type(pickled.conv_stem).__name__, type(model.conv_stem).__name__
    if stem != expected:
        hint = "a tf_efficientnet_* arch" if stem == "Conv2dSame" else "an arch without the tf_ prefix"
        raise ValueError(f"{path} holds a model with a {stem} stem, timm {arch} has {expected}: use {hint}")


def _load_strict(model: nn.Module, state: dict[str, Tensor], error: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # lists missing, unexpected and mis-shaped keys, over many lines
        detail = " ".join(str(exc).split())
        raise ValueError(f"{error}: {detail if len(detail) <= 300 else detail[:300] + '...'}") from exc


def load_hsemotion(path: PathLike, arch: str = "tf_efficientnet_b0", num_classes: int = 8) -> nn.Module:
    """An HSEmotion classifier: a timm ``arch`` with ``num_classes`` outputs and the file's weights, in eval mode.

    The model maps ImageNet-normalised RGB faces (N, 3, 224, 224) for b0, 260 for b2, to logits (N, num_classes).

    Raises:
        WeightsUnavailableError: no such file.
        ValueError: the file does not hold that architecture with that many classes.
    """
    import timm

    state, pickled = read_hsemotion_file(path)
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    _check_architecture(pickled, model, arch, path)
    _load_strict(model, state, f"{path} is not a timm {arch} with {num_classes} classes")
    return model.eval()


class HSEmotionFrameEncoder(nn.Module):
    """A timm classifier without its head: ImageNet-normalised RGB frames (N, 3, H, W) to features (N, F)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        model.reset_classifier(0)  # type: ignore[operator]  # timm's API, untyped here
        self.model = model
        self.out_features: int = int(model.num_features)  # type: ignore[arg-type]
        self.input_spec = HSEMOTION_INPUT_SPEC

    def forward(self, frames: Tensor) -> Tensor:
        return self.model(frames)


def hsemotion_encoder(
    *, arch: str = "tf_efficientnet_b0", weights_path: PathLike | None = None
) -> HSEmotionFrameEncoder:
    """A frame encoder from an HSEmotion file (whatever its head size), or with random weights without one."""
    import timm

    if weights_path is None:
        return HSEmotionFrameEncoder(timm.create_model(arch, pretrained=False))
    state, pickled = read_hsemotion_file(weights_path)
    head = state.get("classifier.weight")
    model = timm.create_model(arch, pretrained=False, num_classes=0 if head is None else head.shape[0])
    _check_architecture(pickled, model, arch, weights_path)
    _load_strict(model, state, f"{weights_path} is not a timm {arch}")
    return HSEmotionFrameEncoder(model)


@register_model("late-fusion-hsemotion")
def late_fusion_hsemotion(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    arch: str = "tf_efficientnet_b0",
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> LateFusion:
    """Late fusion over an HSEmotion AffectNet EfficientNet; its file must be given (``--weights PATH``)."""
    if pretrained and weights_path is None:
        raise WeightsUnavailableError(
            "HSEmotion weights are not downloaded by emovid: download e.g. enet_b0_8_best_afew.pt from "
            "EmotiEffLib's models/affectnet_emotions/ and pass --weights PATH (weights_path=PATH)"
        )
    encoder = hsemotion_encoder(arch=arch, weights_path=weights_path)
    return LateFusion(encoder.requires_grad_(not freeze_backbone), num_classes=num_classes, dropout=dropout)
