"""The model registry: names to keyword-only builders, and building, rebuilding and describing models.

Each family module registers its builders with :func:`register_model`; ``emovid/models/__init__.py``
imports every family module, so importing anything from ``emovid.models`` fills the registry.

A builder takes ``num_classes``, ``pretrained`` and ``weights_path`` plus its own keyword options and
returns a module that maps a float clip (B, T, C, H, W) to logits (B, num_classes) and has an
``input_spec`` attribute (:class:`~emovid.models.weights.InputSpec`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from emovid.models.weights import InputSpec, PathLike

ModelBuilder = Callable[..., nn.Module]
ARGS_ATTRIBUTE = "emovid_args"  # set on every model create_model builds

_MODELS: dict[str, ModelBuilder] = {}
_COMMON = ("num_classes", "pretrained", "weights_path")


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator that registers a builder under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def wrapper(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = builder
        return builder

    return wrapper


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def model_options(name: str) -> tuple[str, ...]:
    """The keyword options ``name`` takes besides num_classes, pretrained and weights_path.

    Lets generic code ask, for example, whether a model needs ``num_frames``.
    """
    params = inspect.signature(_builder(name)).parameters
    return tuple(p for p in params if p not in _COMMON)


def create_model(
    name: str,
    *,
    num_classes: int = 8,
    pretrained: bool = False,
    weights_path: PathLike | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered model.

    The result carries ``input_spec`` and ``emovid_args``: name, num_classes and every option with
    defaults filled in (not the weights source), which :func:`model_from_args` turns back into the
    same architecture.

    Args:
        name: a name from :func:`list_models`.
        num_classes: size of the logits.
        pretrained: start the backbone from its published weights (downloaded once, then cached).
        weights_path: a local torchvision-format state dict of the backbone, for offline machines;
            it implies ``pretrained``.
        **options: model options, see :func:`model_options`; plain values only, so they can be saved.

    Raises:
        ValueError: unknown name or option.
        WeightsUnavailableError: pretrained weights cannot be downloaded or found.
    """
    accepted = model_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {unknown}; its options are {list(accepted)}")
    builder = _MODELS[name]
    model = builder(num_classes=num_classes, pretrained=pretrained, weights_path=weights_path, **options)
    # Defaults are written out so a checkpoint rebuilds the same model even if a default changes later.
    defaults = {
        p.name: p.default
        for p in inspect.signature(builder).parameters.values()
        if p.name in accepted and p.default is not p.empty
    }
    setattr(model, ARGS_ATTRIBUTE, {"name": name, "num_classes": num_classes, **defaults, **options})
    return model


def model_args(model: nn.Module) -> dict[str, Any]:
    """The name and options :func:`create_model` built ``model`` with: what rebuilds it from a checkpoint."""
    args = getattr(model, ARGS_ATTRIBUTE, None)
    if not isinstance(args, dict):
        raise ValueError(f"{type(model).__name__} was not built by emovid.models.create_model (no {ARGS_ATTRIBUTE})")
    return dict(args)


def model_input_spec(model: nn.Module) -> InputSpec:
    """The normalisation (mean, std) a registered model's weights expect."""
    spec = getattr(model, "input_spec", None)
    if not isinstance(spec, InputSpec):
        raise ValueError(f"{type(model).__name__} has no input_spec: register models through emovid.models")
    return spec


def model_from_args(args: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from its ``emovid_args`` (e.g. read from a checkpoint), with random weights."""
    kwargs = dict(args)
    return create_model(kwargs.pop("name"), **kwargs)


def model_normalization(name: str, **options: Any) -> InputSpec:
    """The (mean, std) clips for ``name`` must be normalised with, without building real weights.

    Args:
        name: a name from :func:`list_models`.
        **options: options the model needs to be built (``num_frames`` for the early-fusion models).
    """
    # Parameters on the meta device take no memory and no init time; only the attribute is needed.
    with torch.device("meta"):
        return model_input_spec(create_model(name, **options))


def _builder(name: str) -> ModelBuilder:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]
