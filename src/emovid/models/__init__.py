"""The model zoo: every model maps a float clip (B, T, C, H, W) to logits (B, num_classes).

Build models by name with :func:`create_model`; see :mod:`emovid.models.registry`.
"""

# Importing the family modules runs their @register_model decorators: this is where the registry fills.
from emovid.models import (  # noqa: F401
    cnn_lstm,
    early_fusion,
    fer,
    hsemotion,
    late_fusion,
    temporal_attention,
    video_resnets,
)
from emovid.models.registry import (
    create_model,
    list_models,
    model_args,
    model_from_args,
    model_input_spec,
    model_normalization,
    model_options,
    register_model,
)
from emovid.models.weights import InputSpec, WeightsUnavailableError

__all__ = [
    "InputSpec",
    "WeightsUnavailableError",
    "create_model",
    "model_args",
    "model_input_spec",
    "list_models",
    "model_from_args",
    "model_normalization",
    "model_options",
    "register_model",
]
