"""facex 1.1.0's facial-expression MobileNetV2 in PyTorch, read from its ``.tflite`` file without TensorFlow.

The MIT-licensed ``facex`` wheel ships ``facex/assets/model_optimized.tflite``: a Keras MobileNetV2 (width 1.0,
BatchNorm folded into the convolutions) with a 7-class softmax head, converted with weight-only ("hybrid")
quantisation: most 1x1 convolution kernels and the head are uint8 bytes read as symmetric int8 with one scale
per tensor, the depthwise kernels asymmetric uint8 behind DEQUANTIZE ops.

This module reads the file with a small FlatBuffer reader (:func:`read_tflite`), checks that the graph is that
MobileNetV2 op by op, and copies the dequantised weights into :class:`FacexExpressionNet`, a plain
``nn.Module``. TFLite runs the hybrid convolutions on activations quantised to int8 per image, and the network
does the same (:func:`_fake_quantize`): given the same input, every layer matches LiteRT's to ~3e-6 (relative).
End to end, that quantisation amplifies float rounding: probabilities match LiteRT's within 1e-3 on confident
faces, but on unconfident ones they can differ by a few 0.01, as much as LiteRT's own kernels (XNNPACK, built-in,
reference) differ from one another.

facex's own pipeline (``facex/core.py``, ``facex/utils.py``): OpenCV BGR2GRAY on the whole frame, Haar cascade
``haarcascade_frontalface_default`` with ``detectMultiScale(gray, 1.1, 4)``, the box cut as is (no margin, the
cascade's boxes are square), ``skimage.transform.resize(crop, (200, 200, 3))``: gray replicated to three
channels, scaled to [0, 1], bilinear, Gaussian anti-aliasing when shrinking. The output is already a softmax.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emovid.faces.geometry import FaceGeometry
from emovid.models.expression import ExpressionEncoder
from emovid.models.weights import PathLike
from emovid.weights import WeightsUnavailableError, require
from emovid.weights.files import FACEX_WEIGHTS

# facex's category order (anger, disgust, fear, happy, neutral, sadness, surprised), in emovid's FER names.
FACEX_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FACEX_SIZE = 200
# facex crops OpenCV's haarcascade_frontalface_default box with no margin. That box is 1.07 face boxes (MTCNN's
# box, measured by benchmarks/bench_detectors.py on real clips) with the same centre; grayscale.
FACEX_GEOMETRY = FaceGeometry(scale=1.07, align=True, colour="gray")
# OpenCV's BGR2GRAY weights (R, G, B); facex feeds a gray crop replicated to three channels.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------------------------------------------
# The tflite FlatBuffer: only the tables and fields this model needs (schema: tensorflow/lite/schema/schema.fbs).
# ---------------------------------------------------------------------------------------------------------------

# BuiltinOperator codes -> names, for the ops a Keras CNN converts to.
_OPCODES = {0: "ADD", 1: "AVERAGE_POOL_2D", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
            9: "FULLY_CONNECTED", 21: "RELU6", 22: "RESHAPE", 25: "SOFTMAX", 34: "PAD", 40: "MEAN"}
# TensorType codes -> numpy dtypes.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
_ACTIVATIONS = {0: "none", 1: "relu", 3: "relu6"}
_PADDINGS = {0: "same", 1: "valid"}
# Per op: (field index in its options table, name, struct format, default); enums decoded afterwards.
_OPTIONS: dict[str, tuple[tuple[int, str, str, int | float], ...]] = {
    "CONV_2D": ((0, "padding", "b", 0), (1, "stride_w", "i", 0), (2, "stride_h", "i", 0),
                (3, "activation", "b", 0), (4, "dilation_w", "i", 1), (5, "dilation_h", "i", 1)),
    "DEPTHWISE_CONV_2D": ((0, "padding", "b", 0), (1, "stride_w", "i", 0), (2, "stride_h", "i", 0),
                          (3, "depth_multiplier", "i", 0), (4, "activation", "b", 0),
                          (5, "dilation_w", "i", 1), (6, "dilation_h", "i", 1)),
    "ADD": ((0, "activation", "b", 0),),
    "FULLY_CONNECTED": ((0, "activation", "b", 0), (2, "keep_num_dims", "b", 0)),
    "SOFTMAX": ((0, "beta", "f", 0.0),),
    "MEAN": ((0, "keep_dims", "b", 0),),
}


@dataclass(frozen=True)
class TfliteTensor:
    """One tensor of the graph; ``data`` is its constant contents (None for activations)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]


@dataclass(frozen=True)
class TfliteOperator:
    """One node: its op name, tensor indices in and out, and its decoded builtin options."""

    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, int | float | str]


@dataclass(frozen=True)
class TfliteGraph:
    """The first subgraph of a ``.tflite`` file, operators in execution order."""

    tensors: tuple[TfliteTensor, ...]
    operators: tuple[TfliteOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class _Table:
    """A FlatBuffer table at byte ``pos`` of ``buf``: fields by their index in the schema."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _at(self, field: int) -> int | None:
        """Absolute position of a field, None when absent (then it has its default)."""
        if 4 + 2 * field >= self.vsize:
            return None
        offset = struct.unpack_from("<H", self.buf, self.vtable + 4 + 2 * field)[0]
        return self.pos + offset if offset else None

    def scalar(self, field: int, fmt: str, default: int | float = 0) -> int | float:
        at = self._at(field)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _vector(self, field: int) -> tuple[int, int]:
        """(position of the first element, length); (0, 0) when absent."""
        at = self._at(field)
        if at is None:
            return 0, 0
        start = at + struct.unpack_from("<I", self.buf, at)[0]
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def array(self, field: int, dtype: type) -> np.ndarray:
        start, n = self._vector(field)
        return np.frombuffer(self.buf, dtype=np.dtype(dtype).newbyteorder("<"), count=n, offset=start)

    def string(self, field: int) -> str:
        return bytes(self.array(field, np.uint8)).decode("utf-8")

    def table(self, field: int) -> _Table | None:
        at = self._at(field)
        return None if at is None else _Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0])

    def tables(self, field: int) -> list[_Table]:
        start, n = self._vector(field)
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) for p in range(start, start + 4 * n, 4)]


def read_tflite(path: PathLike) -> TfliteGraph:
    """Parse a ``.tflite`` file's first subgraph: tensors (with constant data and quantisation) and operators.

    Raises:
        WeightsUnavailableError: the file is missing, not a tflite FlatBuffer, or truncated; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"tflite file {path} does not exist")
    buf = path.read_bytes()
    if buf[4:8] != b"TFL3":
        raise WeightsUnavailableError(f"{path} is not a tflite model (no TFL3 file identifier)")
    try:
        return _parse_model(buf)
    except (struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise WeightsUnavailableError(f"{path} is a malformed tflite file ({type(exc).__name__}: {exc})") from exc


def _parse_model(buf: bytes) -> TfliteGraph:
    model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    opcodes = []
    for code in model.tables(1):
        # builtin_code (field 3) superseded the byte-sized deprecated_builtin_code (field 0) past 127.
        number = max(int(code.scalar(0, "b")), int(code.scalar(3, "i")))
        opcodes.append(_OPCODES.get(number, f"BUILTIN_{number}"))
    buffers = model.tables(4)
    subgraph = model.tables(2)[0]
    tensors = tuple(_parse_tensor(t, buffers, buf) for t in subgraph.tables(0))
    operators = []
    for op in subgraph.tables(3):
        name = opcodes[int(op.scalar(0, "I"))]
        operators.append(TfliteOperator(name, tuple(op.array(1, np.int32).tolist()),
                                        tuple(op.array(2, np.int32).tolist()), _parse_options(name, op.table(4))))
    return TfliteGraph(tensors, tuple(operators), tuple(subgraph.array(1, np.int32).tolist()),
                       tuple(subgraph.array(2, np.int32).tolist()))


def _parse_tensor(tensor: _Table, buffers: list[_Table], buf: bytes) -> TfliteTensor:
    shape = tuple(tensor.array(0, np.int32).tolist())
    dtype = np.dtype(_DTYPES[int(tensor.scalar(1, "b"))])
    buffer = buffers[int(tensor.scalar(2, "I"))]
    raw = buffer.array(0, np.uint8)
    offset, size = int(buffer.scalar(1, "Q")), int(buffer.scalar(2, "Q"))
    if offset > 1:  # files over 2 GB keep buffers after the FlatBuffer, by offset and size
        raw = np.frombuffer(buf, np.uint8, count=size, offset=offset)
    data = None
    if raw.size:
        data = raw.view(dtype.newbyteorder("<")).reshape(shape)
    quant = tensor.table(4)
    scale = tuple(quant.array(2, np.float32).tolist()) if quant else ()
    zero_point = tuple(quant.array(3, np.int64).tolist()) if quant else ()
    return TfliteTensor(tensor.string(3), shape, dtype, data, scale, zero_point)


def _parse_options(op: str, options: _Table | None) -> dict[str, int | float | str]:
    decoded: dict[str, int | float | str] = {}
    for field, name, fmt, default in _OPTIONS.get(op, ()):
        decoded[name] = default if options is None else options.scalar(field, fmt, default)
    if "padding" in decoded:
        decoded["padding"] = _PADDINGS[int(decoded["padding"])]
    if "activation" in decoded:
        decoded["activation"] = _ACTIVATIONS[int(decoded["activation"])]
    return decoded


# ---------------------------------------------------------------------------------------------------------------
# The network.
# ---------------------------------------------------------------------------------------------------------------

# Keras MobileNetV2 (alpha 1.0) inverted-residual stages: (expansion, output channels, repeats, first stride).
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280


def _fake_quantize(x: Tensor) -> Tensor:
    """TFLite's hybrid kernels' input quantisation: symmetric int8 with one scale per sample, back to float.

    ``round(x * 127 / max|x|) * max|x| / 127``; TFLite rounds ties away from zero, this to even (ties are rare).
    """
    low, high = torch.aminmax(x.flatten(1), dim=1)  # one pass over each sample for its largest magnitude
    peak = torch.maximum(high, -low).view(-1, *[1] * (x.dim() - 1))  # (N, 1, ...) one scale per sample
    peak = peak.where(peak > 0, 1.0)  # an all-zero sample stays zero
    return x.mul(127.0 / peak).round_().clamp_(-127, 127).mul_(peak / 127.0)


class TfConv2d(nn.Conv2d):
    """Conv2d with the Keras MobileNetV2's padding and an optional ReLU6, as TFLite fuses it.

    3x3 stride 1 is 'same' (one pixel each side). Stride 2 is a ZeroPadding2D of one pixel at the bottom and right
    only, then 'valid': Keras' ``correct_pad`` for a model built with an unknown input size, whatever the size
    turns out to be (on an odd side TF 'SAME' would pad both sides). ``quantize_input`` marks a hybrid op of the
    tflite file (int8 kernel, float activations): its input is quantised per sample first, as TFLite does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, *,
                 depthwise: bool = False, relu6: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel, stride, groups=in_channels if depthwise else 1)
        self.relu6 = relu6
        self.quantize_input = False
        half = (kernel - 1) // 2
        # F.pad order: (left, right, top, bottom)
        self.pads = (half, half, half, half) if stride == 1 else (0, kernel - 2, 0, kernel - 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.quantize_input:
            x = _fake_quantize(x)
        if self.stride == (1, 1):  # symmetric: the convolution pads, with no padded copy of its input
            x = F.conv2d(x, self.weight, self.bias, 1, self.pads[0], 1, self.groups)
        else:
            x = super().forward(F.pad(x, self.pads))
        return x.clamp_(0.0, 6.0) if self.relu6 else x  # ReLU6 in place: the output is the convolution's own


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (absent at expansion 1), 3x3 depthwise, linear 1x1 projection, skip."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = TfConv2d(in_channels, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = TfConv2d(hidden, hidden, 3, stride, depthwise=True)
        self.project = TfConv2d(hidden, out_channels, relu6=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class HybridLinear(nn.Linear):
    """Linear layer that, like :class:`TfConv2d`, can quantise its input as TFLite's hybrid kernels do."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.quantize_input = False

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_fake_quantize(x) if self.quantize_input else x)


class FacexExpressionNet(ExpressionEncoder):
    """facex's expression classifier: a Keras MobileNetV2 on a 200x200 gray face, Flatten, Dense, softmax.

    The head flattens the last (6, 6, 1280) feature map, so the input size is fixed. :func:`load_facex_expression`
    fills it from the tflite file; built directly it has PyTorch's random initialisation.
    """

    classes: tuple[str, ...] = FACEX_CLASSES
    input_size: int = FACEX_SIZE
    geometry: FaceGeometry = FACEX_GEOMETRY

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [TfConv2d(3, _STEM_CHANNELS, 3, 2)]
        channels, size = _STEM_CHANNELS, self.input_size // 2
        for expansion, out_channels, repeats, first_stride in _STAGES:
            for i in range(repeats):
                stride = first_stride if i == 0 else 1
                layers.append(InvertedResidual(channels, out_channels, stride, expansion))
                channels, size = out_channels, size // stride
        layers.append(TfConv2d(channels, _LAST_CHANNELS))
        self.features = nn.Sequential(*layers)
        self.feature_size = size  # 6: the spatial side of the map the Dense layer flattens
        self.classifier = HybridLinear(_LAST_CHANNELS * size * size, len(self.classes))
        self.gray_weights: Tensor
        self.register_buffer("gray_weights", torch.tensor(GRAY_WEIGHTS).view(1, 3, 1, 1), persistent=False)

    def forward(self, faces: Tensor) -> Tensor:
        """Class probabilities (N, 7) of float RGB face crops (N, 3, 200, 200) in [0, 1], cut and resized already.

        facex feeds its gray crop replicated to three channels, in [0, 1] with no other scaling.
        """
        if faces.shape[-2:] != (self.input_size, self.input_size):
            side = self.input_size
            raise ValueError(f"facex's network takes {side}x{side} faces, got {tuple(faces.shape)}")
        gray = (faces * self.gray_weights).sum(dim=1, keepdim=True)  # (N, 1, S, S)
        x = self.features(gray.expand(-1, 3, -1, -1))  # (N, 1280, 6, 6)
        # The classifier's columns are in PyTorch's (C, H, W) flatten order (the loader permutes TF's (H, W, C)).
        return self.classifier(x.flatten(1)).softmax(dim=1)

    def tflite_layers(self) -> list[TfConv2d | HybridLinear]:
        """The layers in the tflite file's order: each convolution, then the classifier."""
        convs = [m for m in self.features.modules() if isinstance(m, TfConv2d)]
        return [*convs, self.classifier]


# ---------------------------------------------------------------------------------------------------------------
# From the tflite graph to the network.
# ---------------------------------------------------------------------------------------------------------------


def load_facex_expression(path: PathLike | None = None) -> FacexExpressionNet:
    """facex's expression network with the weights of its tflite file, in eval mode.

    Args:
        path: the ``.tflite`` file; default :data:`FACEX_WEIGHTS` in emovid's weights folder.

    Raises:
        WeightsUnavailableError: the file is missing, malformed, or not facex's MobileNetV2; the message names it.
    """
    path = Path(path) if path is not None else require(FACEX_WEIGHTS)
    graph = read_tflite(path)
    net = FacexExpressionNet()
    try:
        _load_graph(net, graph)
    except ValueError as exc:
        raise WeightsUnavailableError(f"{path} is not facex's MobileNetV2: {exc}") from exc
    # channels_last weights make PyTorch's CPU convolutions ~1.7x faster here, for NCHW inputs too.
    return net.to(memory_format=torch.channels_last).eval()


def _load_graph(net: FacexExpressionNet, graph: TfliteGraph) -> None:
    """Copy the graph's weights into ``net`` after checking, op by op, that they describe the same network."""
    in_shape = graph.tensors[graph.inputs[0]].shape
    out_shape = graph.tensors[graph.outputs[0]].shape
    expected_in = (1, net.input_size, net.input_size, 3)
    if in_shape != expected_in or out_shape != (1, len(net.classes)):
        raise ValueError(f"input {in_shape} and output {out_shape}, expected {expected_in} and (1, 7)")
    ops = [op for op in graph.operators if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    layers = net.tflite_layers()
    if len(ops) != len(layers):
        raise ValueError(f"{len(ops)} convolution and dense ops, expected {len(layers)}")
    produced_by = {out: op for op in graph.operators for out in op.outputs}
    for op, layer in zip(ops, layers, strict=True):
        _check_op(op, layer, graph, produced_by)
        weight, hybrid = _weight(graph, op.inputs[1], produced_by)
        bias = graph.tensors[op.inputs[2]].data
        if bias is None:
            raise ValueError(f"op {op.op} on {graph.tensors[op.inputs[0]].name} has no constant bias")
        if isinstance(layer, HybridLinear):
            # TF flattens (H, W, C); the network flattens (C, H, W).
            side = net.feature_size
            weight = weight.reshape(-1, side, side, _LAST_CHANNELS).transpose(0, 3, 1, 2).reshape(weight.shape[0], -1)
        elif op.op == "DEPTHWISE_CONV_2D":
            weight = weight.transpose(3, 0, 1, 2)  # (1, H, W, C) -> (C, 1, H, W)
        else:
            weight = weight.transpose(0, 3, 1, 2)  # (O, H, W, I) -> (O, I, H, W)
        if layer.bias is None:
            raise ValueError(f"{graph.tensors[op.inputs[1]].name}: its layer has no bias")
        if weight.shape != tuple(layer.weight.shape) or bias.shape != tuple(layer.bias.shape):
            raise ValueError(f"{graph.tensors[op.inputs[1]].name}: shape {weight.shape}, expected "
                             f"{tuple(layer.weight.shape)}")
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        layer.quantize_input = hybrid
    adds = sum(op.op == "ADD" for op in graph.operators)
    residuals = sum(isinstance(m, InvertedResidual) and m.residual for m in net.modules())
    if adds != residuals or graph.operators[-1].op != "SOFTMAX":
        raise ValueError(f"{adds} ADD ops and last op {graph.operators[-1].op}, expected {residuals} and SOFTMAX")


def _check_op(op: TfliteOperator, layer: TfConv2d | HybridLinear, graph: TfliteGraph,
              produced_by: dict[int, TfliteOperator]) -> None:
    """Kind, stride, activation and padding of one op against its layer; raises ValueError on a mismatch."""
    name = graph.tensors[op.inputs[1]].name
    if isinstance(layer, HybridLinear):
        if op.op != "FULLY_CONNECTED" or op.options["activation"] != "none":
            raise ValueError(f"{name}: {op.op} ({op.options}), expected a linear FULLY_CONNECTED")
        return
    assert isinstance(layer, TfConv2d)
    kind = "DEPTHWISE_CONV_2D" if layer.groups > 1 else "CONV_2D"
    activation = "relu6" if layer.relu6 else "none"
    stride = layer.stride[0]
    if (op.op, op.options["activation"], op.options["stride_h"], op.options["stride_w"]) != (
        kind, activation, stride, stride):
        raise ValueError(f"{name}: {op.op} ({op.options}), expected {kind} stride {stride} {activation}")
    if op.options["padding"] == "same":
        if stride != 1:  # TF 'SAME' at stride 2 depends on the input size; the network's padding does not
            raise ValueError(f"{name}: 'same' padding at stride {stride}")
        return
    # 'valid' after a Keras ZeroPadding2D (a PAD op), whose amounts must be the layer's.
    source = produced_by.get(op.inputs[0])
    pads = graph.tensors[source.inputs[1]].data if source is not None and source.op == "PAD" else None
    left, right, top, bottom = layer.pads
    expected = [[0, 0], [top, bottom], [left, right], [0, 0]]
    found = [[0, 0]] * 4 if pads is None else pads.tolist()
    if found != expected:
        raise ValueError(f"{name}: padding {found}, expected {expected}")


def _weight(graph: TfliteGraph, index: int, produced_by: dict[int, TfliteOperator]) -> tuple[np.ndarray, bool]:
    """A kernel as float32 in TF's layout, and whether TFLite runs its op as a hybrid (int8 kernel) op."""
    tensor = graph.tensors[index]
    if tensor.data is None:  # computed at run time: must be a DEQUANTIZE of a constant
        source = produced_by.get(index)
        if source is None or source.op != "DEQUANTIZE":
            raise ValueError(f"{tensor.name} is neither constant nor dequantised from a constant")
        return _dequantize(graph.tensors[source.inputs[0]]), False
    if tensor.dtype == np.float32:
        return tensor.data, False
    if tensor.dtype in (np.int8, np.uint8) and len(tensor.scale) == 1 and tensor.zero_point == (0,):
        # Hybrid kernels read the bytes as symmetric int8 (old converters label them uint8) with one scale.
        return tensor.data.view(np.int8).astype(np.float32) * np.float32(tensor.scale[0]), True
    raise ValueError(f"{tensor.name}: {tensor.dtype} kernel with scales {tensor.scale[:3]} is not supported")


def _dequantize(tensor: TfliteTensor) -> np.ndarray:
    """DEQUANTIZE of a constant: float16 to float32, or ``(q - zero_point) * scale`` (per tensor)."""
    if tensor.data is None:
        raise ValueError(f"{tensor.name} has no data to dequantise")
    if tensor.dtype == np.float16:
        return tensor.data.astype(np.float32)
    if len(tensor.scale) != 1:
        raise ValueError(f"{tensor.name}: per-channel quantisation is not supported")
    return (tensor.data.astype(np.float32) - np.float32(tensor.zero_point[0])) * np.float32(tensor.scale[0])
