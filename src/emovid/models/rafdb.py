"""OpenCV Zoo's facial expression network (RAF-DB) in PyTorch, read from its ONNX file without ``onnx``.

OpenCV Zoo's ``facial_expression_recognition`` (Apache-2.0) is a MobileFaceNet trained with "Progressive
Teacher" (Jiang & Deng, semi-supervised; 88.27% on RAF-DB): a face aligned onto the 112x112 ArcFace template
by a 5-point similarity transform, RGB, ``(x / 255 - 0.5) / 0.5``, to 7 logits. It ships as a float32 ONNX
file and as its int8 twin (``RAFDB_FLOAT_WEIGHTS``, ``RAFDB_WEIGHTS`` in :mod:`emovid.weights.files`); either
loads: the int8 one is fetched on first use, the float32 one is used instead when it is in the weights folder.

:func:`load_rafdb_expression` reads the file with :func:`~emovid.models.onnxfile.read_onnx`, checks that the
graph is that MobileFaceNet node by node, and copies its weights into :class:`RafdbExpressionNet`, a plain
``nn.Module``. The float32 file loads as a float network. The int8 file is statically quantised (onnxruntime's
``QLinearConv``, ``QLinearAdd``, ``QLinearMatMul``: int8 weights with one scale per tensor, uint8 activations on
fixed grids), and the network computes what onnxruntime computes: each QLinear layer on the integer codes with
the file's integer weights (:class:`Requantize`), each addition as onnxruntime's x86 kernel rounds it
(:class:`QuantizedAdd`), each QuantizeLinear of a float tensor as a rounding to its grid (:class:`FakeQuantize`).
That is bit-exact with onnxruntime on the test faces (``tests/test_rafdb.py``); dequantising the weights,
``(q - zero_point) * scale``, and computing in float32 instead moves the probabilities by up to 0.13.

Face geometry. The network was trained on faces warped so that the eyes, nose tip and mouth corners land on
:data:`RAFDB_TEMPLATE`, and :data:`RAFDB_GEOMETRY` carries that template: with MTCNN's five landmarks the crop is
the same least-squares similarity fit OpenCV Zoo's demo makes. Its ``scale`` and ``shift_y`` are where that
112x112 square lies relative to MTCNN's box, eyes level: the median over the faces of real clips
(``benchmarks/bench_rafdb_alignment.py``, which also measures how far the two framings are apart). They frame the
face when a detector gives no landmarks (Haar), and place the network's window inside the wider crop an ensemble
shares with other members, which is then an approximation of the template fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from emovid.faces.geometry import FaceGeometry
from emovid.models.expression import ExpressionEncoder
from emovid.models.onnxfile import OnnxGraph, OnnxNode, read_onnx
from emovid.models.weights import PathLike
from emovid.weights import WeightsUnavailableError, is_intact, path_of, require
from emovid.weights.files import RAFDB_FLOAT_WEIGHTS, RAFDB_WEIGHTS

# The network's output order (angry, disgust, fearful, happy, neutral, sad, surprised) in emovid's FER names.
RAFDB_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
RAFDB_SIZE = 112
# Where the eyes, nose tip and mouth corners (left as seen first) sit in the 112x112 input: the ArcFace template.
RAFDB_TEMPLATE: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041),
)
# The template fit when there are landmarks; else (and inside a shared crop) its median square in MTCNN face boxes,
# eyes level: 1.24 boxes wide (interquartile range 1.21-1.26), centred 0.089 boxes above the box's centre
# (0.069-0.112), over 544 faces of 34 real clips (benchmarks/bench_rafdb_alignment.py).
RAFDB_GEOMETRY = FaceGeometry(scale=1.24, shift_y=-0.089, align=True, colour="rgb",
                              template=tuple((x / RAFDB_SIZE, y / RAFDB_SIZE) for x, y in RAFDB_TEMPLATE))

# MobileFaceNet (Chen et al. 2018) as the Progressive Teacher code builds it: (expansion, output channels,
# repeats, first stride) per stage of bottlenecks, between a 3x3 stem and a 1x1 widening to 512.
_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))
_STEM = 64
_EMBEDDING = 512


class FakeQuantize(nn.Module):
    """Round float activations to a uint8 grid and back: ``(clamp(round(x / s) + z, 0, 255) - z) * s``.

    What onnxruntime's QuantizeLinear then DequantizeLinear do (``round`` is to nearest, ties to even, in both).
    """

    def __init__(self, scale: float, zero_point: int) -> None:
        super().__init__()
        self.scale, self.zero_point = float(scale), int(zero_point)

    def codes(self, x: Tensor) -> Tensor:
        """The uint8 codes (as floats) of ``x``, a tensor on this grid already."""
        return (x / self.scale).round_().add_(self.zero_point)

    def rounded(self, scaled: Tensor) -> Tensor:
        """Values already divided by the scale, rounded onto the grid and back, in place: ``(q - z) * s``."""
        return scaled.round_().clamp_(-self.zero_point, 255 - self.zero_point).mul_(self.scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.rounded(x / self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}, zero_point={self.zero_point}"


class Requantize(nn.Module):
    """How onnxruntime runs a QLinearConv or QLinearMatMul layer on an input already on a uint8 grid.

    The layer sees the input's codes less their zero point (``round(x / in_scale)``), holds the integer weights
    less theirs and the int32 bias, so it computes onnxruntime's int32 accumulators (float32 holds them exactly
    while they stay below 2**24 in magnitude); they are multiplied by one float32 number per output channel,
    ``in_scale * weight_scale / out_scale`` as onnxruntime rounds it, and rounded half to even onto the output's
    grid. Summing dequantised floats instead lands on the other side of a rounding tie now and then.
    """

    def __init__(self, in_scale: float, multiplier: np.ndarray, out: FakeQuantize) -> None:
        super().__init__()
        self.in_scale, self.out = float(in_scale), out
        self.multiplier: Tensor
        self.register_buffer("multiplier", torch.from_numpy(multiplier.astype(np.float32).reshape(-1)),
                             persistent=False)

    def before(self, x: Tensor) -> Tensor:
        return (x / self.in_scale).round_()

    def after(self, accumulators: Tensor) -> Tensor:
        """(N, C, ...) accumulators to floats on the output grid, in place."""
        scale = self.multiplier.view(-1, *[1] * (accumulators.dim() - 2))  # along the channel dimension
        return self.out.rounded(accumulators.mul_(scale))


class QConv2d(nn.Conv2d):
    """A Conv2d that runs as onnxruntime's QLinearConv when ``requant`` is set (see :class:`Requantize`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requant: Requantize | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.requant is None:
            return super().forward(x)
        return self.requant.after(super().forward(self.requant.before(x)))


class QLinear(nn.Linear):
    """A Linear that runs as onnxruntime's QLinearMatMul when ``requant`` is set (see :class:`Requantize`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requant: Requantize | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.requant is None:
            return super().forward(x)
        return self.requant.after(super().forward(self.requant.before(x)))


class Sum(nn.Module):
    """``a + b``: a float graph's Add."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


class QuantizedAdd(Sum):
    """onnxruntime's QLinearAdd of two tensors on their uint8 grids, rounded to the output's grid.

    Its x86 kernel (MLAS ``qladd_avx2.cpp``, any x86 CPU with AVX2) computes, on the input codes ``qa`` and
    ``qb``, ``fma(qa, ra, fma(qb, rb, zc - (ra * za + rb * zb)))`` in float32 with ``ra = sa / sc`` and
    ``rb = sb / sc``: each fused multiply-add rounds once. Summing dequantised values instead lands on the other
    side of a rounding tie now and then, so this computes the same expression, in float64 where one rounding to
    float32 gives the fused result (the products and sums of these 8-bit codes and float32 ratios are exact).
    """

    def __init__(self, a: FakeQuantize, b: FakeQuantize, out: FakeQuantize) -> None:
        super().__init__()
        self.a, self.b, self.out = a, b, out
        ratio_a = np.float32(a.scale) / np.float32(out.scale)
        ratio_b = np.float32(b.scale) / np.float32(out.scale)
        fixed = np.float32(out.zero_point) - (ratio_a * np.float32(a.zero_point) + ratio_b * np.float32(b.zero_point))
        self.ratio_a, self.ratio_b, self.fixed = float(ratio_a), float(ratio_b), float(fixed)  # float32 values

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        wide = torch.float32 if a.device.type == "mps" else torch.float64  # MPS has no float64: ties may differ
        partial = self.b.codes(b).to(wide).mul_(self.ratio_b).add_(self.fixed).float()  # fma(qb, rb, fixed)
        value = self.a.codes(a).to(wide).mul_(self.ratio_a).add_(partial).float()  # fma(qa, ra, partial)
        return torch.round(value).clamp_(0, 255).sub_(self.out.zero_point).mul_(self.out.scale)


class ConvUnit(nn.Module):
    """A convolution (BatchNorm folded in), optionally a PReLU.

    In an int8 graph the convolution is a QLinearConv (``conv.requant``) or a float Conv whose output is
    quantised (``out_q``), and a PReLU's output may be quantised too (``act_q``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, *,
                 depthwise: bool = False, prelu: bool = True, padding: int | None = None) -> None:
        super().__init__()
        padding = (kernel - 1) // 2 if padding is None else padding
        groups = in_channels if depthwise else 1
        self.conv = QConv2d(in_channels, out_channels, kernel, stride, padding, groups=groups)
        self.out_q: nn.Module = nn.Identity()
        self.prelu = nn.PReLU(out_channels) if prelu else None
        self.act_q: nn.Module = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.out_q(self.conv(x))
        return self.act_q(self.prelu(x)) if self.prelu is not None else x


class Bottleneck(nn.Module):
    """MobileFaceNet's block: 1x1 expansion and 3x3 depthwise (each with PReLU), a linear 1x1 projection, a skip."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvUnit(in_channels, hidden)
        self.depthwise = ConvUnit(hidden, hidden, 3, stride, depthwise=True)
        self.project = ConvUnit(hidden, out_channels, prelu=False)
        self.residual = stride == 1 and in_channels == out_channels
        self.add: Sum = Sum()
        self.project_first = False  # the graph's addition takes the projection as its first operand

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        if not self.residual:
            return y
        return self.add(y, x) if self.project_first else self.add(x, y)


class Classifier(nn.Module):
    """The last layer, 512 -> 7: a product, then the bias (in the int8 graph a QLinearMatMul, then a QLinearAdd)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_q: nn.Module = nn.Identity()
        self.product = QLinear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.add: Sum = Sum()

    def forward(self, x: Tensor) -> Tensor:
        return self.add(self.product(self.in_q(x)), self.bias)


class RafdbExpressionNet(ExpressionEncoder):
    """OpenCV Zoo's MobileFaceNet expression classifier: aligned RGB faces (N, 3, 112, 112) to probabilities (N, 7).

    :func:`load_rafdb_expression` fills it from an ONNX file; built directly it has random weights and no rounding.
    """

    classes: tuple[str, ...] = RAFDB_CLASSES
    input_size: int = RAFDB_SIZE
    geometry: FaceGeometry = RAFDB_GEOMETRY

    def __init__(self) -> None:
        super().__init__()
        self.input_q: nn.Module = nn.Identity()
        self.conv1 = ConvUnit(3, _STEM, 3, 2)
        self.dw_conv1 = ConvUnit(_STEM, _STEM, 3, depthwise=True)
        blocks, channels = [], _STEM
        for expansion, out_channels, repeats, first_stride in _STAGES:
            for i in range(repeats):
                blocks.append(Bottleneck(channels, out_channels, first_stride if i == 0 else 1, expansion))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvUnit(channels, _EMBEDDING)
        side = self.input_size // 16  # four stride-2 layers: 112 -> 7
        self.linear7 = ConvUnit(_EMBEDDING, _EMBEDDING, side, depthwise=True, prelu=False, padding=0)  # global
        self.linear1 = ConvUnit(_EMBEDDING, _EMBEDDING, prelu=False)
        self.fc = Classifier(_EMBEDDING, len(self.classes))

    def logits(self, faces: Tensor) -> Tensor:
        """The network's 7 outputs for float RGB faces (N, 3, 112, 112) in [0, 1], aligned already."""
        if faces.shape[-3:] != (3, self.input_size, self.input_size):
            side = self.input_size
            raise ValueError(f"the RAF-DB network takes (N, 3, {side}, {side}) faces, got {tuple(faces.shape)}")
        return self.graph_forward((faces - 0.5) / 0.5)  # (x / 255 - 0.5) / 0.5 on 0-255 pixels

    def graph_forward(self, data: Tensor) -> Tensor:
        """What the ONNX graph computes: its input ``data`` (N, 3, 112, 112), normalised, to its output ``label``."""
        x = self.blocks(self.dw_conv1(self.conv1(self.input_q(data))))  # (N, 128, 7, 7)
        x = self.linear1(self.linear7(self.conv2(x)))  # (N, 512, 1, 1)
        return self.fc(x.flatten(1))

    def forward(self, faces: Tensor) -> Tensor:
        return self.logits(faces).softmax(dim=1)

    def conv_units(self) -> list[ConvUnit]:
        """Every convolution, in the order the network (and the ONNX graph) computes them."""
        return [m for m in self.modules() if isinstance(m, ConvUnit)]


# ---------------------------------------------------------------------------------------------------------------
# From the ONNX graph to the network.
# ---------------------------------------------------------------------------------------------------------------


def load_rafdb_expression(path: PathLike | None = None) -> RafdbExpressionNet:
    """OpenCV Zoo's expression network with the weights of its ONNX file (float32 or int8), in eval mode.

    Args:
        path: the ``.onnx`` file; default the float32 original when it is in emovid's weights folder, else the
            int8 file (fetched on first use).

    Raises:
        WeightsUnavailableError: the file is missing, malformed, or not this MobileFaceNet; the message names it.
    """
    if path is None:
        path = path_of(RAFDB_FLOAT_WEIGHTS) if is_intact(RAFDB_FLOAT_WEIGHTS) else require(RAFDB_WEIGHTS)
    path = Path(path)
    graph = read_onnx(path)
    net = RafdbExpressionNet()
    try:
        _load_graph(net, graph)
    except (ValueError, KeyError) as exc:
        raise WeightsUnavailableError(f"{path} is not OpenCV Zoo's MobileFaceNet: {exc}") from exc
    return net.eval()


class _Reader:
    """Constants of a graph, and the quantisation parameters its QLinear ops take."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph

    def const(self, name: str) -> np.ndarray:
        if name not in self.graph.initializers:
            raise ValueError(f"{name} is not a constant of the graph")
        return self.graph.initializers[name]

    def quant(self, scale: str, zero_point: str) -> FakeQuantize:
        """The uint8 grid a QuantizeLinear or a QLinear op's output uses (one scale per tensor)."""
        s, z = self.const(scale), self.const(zero_point)
        if s.size != 1 or z.dtype != np.uint8:
            raise ValueError(f"activation quantisation {scale}: {s.size} scales of {z.dtype}, expected one uint8")
        return FakeQuantize(float(s.reshape(())), int(z.reshape(())))

    def integers(self, q: str, zero_point: str, axis: int) -> np.ndarray:
        """``q - zero_point`` as float32, the zero point per tensor or per slice along ``axis``."""
        values, z = self.const(q), self.const(zero_point)
        shape = [1] * values.ndim
        if z.size > 1:
            shape[axis] = z.size
        return values.astype(np.float32) - z.astype(np.float32).reshape(shape)

    def dequantize(self, q: str, scale: str, zero_point: str, axis: int) -> np.ndarray:
        """``(q - zero_point) * scale``, per tensor or per slice along ``axis``."""
        s = self.const(scale).astype(np.float32)
        shape = [1] * self.const(q).ndim
        if s.size > 1:
            shape[axis] = s.size
        return self.integers(q, zero_point, axis) * s.reshape(shape)

    def requantize(self, in_scale: str, weight_scale: str, out_scale: str, out_zero_point: str) -> Requantize:
        """A QLinear op's requantisation: its multiplier ``in_scale * weight_scale / out_scale`` in float32, in
        onnxruntime's order (one per output channel when the weights have one scale per channel)."""
        x_scale = np.float32(self.const(in_scale).reshape(()))
        multiplier = (x_scale * self.const(weight_scale).astype(np.float32)) / np.float32(self.const(out_scale))
        return Requantize(float(x_scale), np.atleast_1d(multiplier), self.quant(out_scale, out_zero_point))


def _load_graph(net: RafdbExpressionNet, graph: OnnxGraph) -> None:
    """Copy the graph's weights into ``net`` after checking, node by node, that they describe the same network.

    The graph's nodes come in the order the network computes them, so convolutions, PReLUs and residual
    additions pair with the network's in turn. A QLinear op keeps its integer weights and becomes its layer's
    :class:`Requantize` or :class:`QuantizedAdd`; a QuantizeLinear of a float tensor becomes a
    :class:`FakeQuantize` after the layer that computed the tensor.
    """
    ((input_name, input_shape),) = graph.inputs.items()
    ((_, output_shape),) = graph.outputs.items()
    side = net.input_size
    if input_shape[1:] != (3, side, side) or output_shape[-1:] != (len(net.classes),):
        raise ValueError(f"input {input_shape} and output {output_shape}, expected (1, 3, {side}, {side}) and (1, 7)")
    read = _Reader(graph)
    consumers = graph.consumers()
    units = net.conv_units()
    prelus = [u for u in units if u.prelu is not None]
    residuals = [b for b in net.blocks if isinstance(b, Bottleneck) and b.residual]
    fc_node: OnnxNode | None = None
    unit_output: dict[str, ConvUnit] = {}  # tensor name -> the unit whose convolution computed it

    def quantized_by(name: str) -> FakeQuantize | None:
        """The grid a float tensor is quantised to, when a QuantizeLinear reads it."""
        node = next((n for n in consumers.get(name, []) if n.op == "QuantizeLinear"), None)
        return None if node is None else read.quant(node.inputs[1], node.inputs[2])

    for node in graph.nodes:
        if node.op in ("Conv", "QLinearConv"):
            if not units:
                raise ValueError(f"more convolutions than the network's {len(net.conv_units())}")
            unit = units.pop(0)
            _load_conv(unit, node, read)
            if node.op == "Conv":
                unit.out_q = quantized_by(node.outputs[0]) or nn.Identity()
            unit_output[node.outputs[0]] = unit
        elif node.op == "PRelu":
            if not prelus:
                raise ValueError("more PRelu nodes than the network has")
            unit = prelus.pop(0)
            if unit.prelu is None:
                raise ValueError("a PRelu where the network has none")
            slope = read.const(node.inputs[1]).reshape(-1)
            if slope.shape != tuple(unit.prelu.weight.shape):
                raise ValueError(f"PRelu {node.inputs[1]}: {slope.shape[0]} slopes for {unit.prelu.num_parameters}")
            with torch.no_grad():
                unit.prelu.weight.copy_(torch.from_numpy(slope.astype(np.float32)))
            unit.act_q = quantized_by(node.outputs[0]) or nn.Identity()
        elif node.op in ("Add", "QLinearAdd") and fc_node is None:
            if not residuals:
                raise ValueError("more additions than the network has residual blocks")
            block = residuals.pop(0)
            operands = (node.inputs[0], node.inputs[3]) if node.op == "QLinearAdd" else node.inputs
            if block.project not in (unit_output.get(operands[0]), unit_output.get(operands[1])):
                raise ValueError(f"addition {node.outputs[0]} does not add its block's projection")
            block.project_first = unit_output.get(operands[0]) is block.project
            if node.op == "QLinearAdd":
                block.add = _quantized_add(node, read)
        elif node.op in ("MatMul", "QLinearMatMul", "Gemm"):
            if fc_node is not None:
                raise ValueError("more than one matrix product")
            fc_node = node
            _load_product(net.fc, node, read)
        elif node.op in ("Add", "QLinearAdd"):  # after the product: the classifier's bias
            _load_bias(net.fc, node, read)
        elif node.op in ("QuantizeLinear", "DequantizeLinear", "Flatten"):
            if node.op == "QuantizeLinear" and node.inputs[0] == input_name:
                net.input_q = read.quant(node.inputs[1], node.inputs[2])
        else:
            raise ValueError(f"unexpected {node.op} node ({node.outputs[0]})")
    if units or prelus or residuals or fc_node is None:
        raise ValueError(f"{len(units)} convolutions, {len(prelus)} PReLUs, {len(residuals)} additions and "
                         f"{0 if fc_node else 1} classifier of the network found no node")


def _load_conv(unit: ConvUnit, node: OnnxNode, read: _Reader) -> None:
    """One Conv (float) or QLinearConv (int8 weights, int32 bias) into ``unit``, after checking its attributes."""
    conv = unit.conv
    if node.op == "QLinearConv":
        # Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias (int32).
        weight = read.integers(node.inputs[3], node.inputs[5], axis=0)
        bias = read.const(node.inputs[8]).astype(np.float32) if len(node.inputs) > 8 else None
        conv.requant = read.requantize(node.inputs[1], node.inputs[4], node.inputs[6], node.inputs[7])
    else:
        weight = read.const(node.inputs[1]).astype(np.float32)
        bias = read.const(node.inputs[2]).astype(np.float32) if len(node.inputs) > 2 and node.inputs[2] else None
    attrs = node.attributes
    kernel = tuple(conv.kernel_size)
    expected = {"group": conv.groups, "strides": tuple(conv.stride), "kernel_shape": kernel,
                "pads": tuple(conv.padding) * 2, "dilations": (1, 1)}
    found = {"group": attrs.get("group", 1), "strides": attrs.get("strides", (1, 1)),
             "kernel_shape": attrs.get("kernel_shape", weight.shape[2:]), "pads": attrs.get("pads", (0, 0, 0, 0)),
             "dilations": attrs.get("dilations", (1, 1))}
    if found != expected or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise ValueError(f"convolution {node.outputs[0]}: {found}, expected {expected}")
    if weight.shape != tuple(conv.weight.shape) or bias is None or bias.shape != (conv.out_channels,):
        raise ValueError(f"convolution {node.outputs[0]}: weight {weight.shape} and bias "
                         f"{None if bias is None else bias.shape}, expected {tuple(conv.weight.shape)} with a bias")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        assert conv.bias is not None
        conv.bias.copy_(torch.from_numpy(bias.reshape(-1)))


def _load_product(fc: Classifier, node: OnnxNode, read: _Reader) -> None:
    """The classifier's weight from MatMul (x @ W), QLinearMatMul (int8 W) or Gemm (x @ W^T + b)."""
    if node.op == "QLinearMatMul":
        # Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point.
        weight = read.integers(node.inputs[3], node.inputs[5], axis=1).T
        fc.in_q = read.quant(node.inputs[1], node.inputs[2])
        fc.product.requant = read.requantize(node.inputs[1], node.inputs[4], node.inputs[6], node.inputs[7])
    elif node.op == "MatMul":
        weight = read.const(node.inputs[1]).astype(np.float32).T
    else:
        attrs = node.attributes
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            raise ValueError(f"Gemm {node.outputs[0]} with {attrs}, expected alpha = beta = 1, A not transposed")
        weight = read.const(node.inputs[1]).astype(np.float32)
        weight = weight if attrs.get("transB", 0) else weight.T
        if len(node.inputs) > 2 and node.inputs[2]:
            _copy(fc.bias, read.const(node.inputs[2]).astype(np.float32).reshape(-1), node)
    _copy(fc.product.weight, weight, node)


def _load_bias(fc: Classifier, node: OnnxNode, read: _Reader) -> None:
    """The classifier's bias from an Add (float) or QLinearAdd (uint8 constant) after the product."""
    if node.op == "QLinearAdd":
        # Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point; the bias is b.
        bias = read.dequantize(node.inputs[3], node.inputs[4], node.inputs[5], axis=0)
        fc.add = _quantized_add(node, read)
    else:
        bias = read.const(node.inputs[1]).astype(np.float32)
    _copy(fc.bias, bias.reshape(-1), node)


def _quantized_add(node: OnnxNode, read: _Reader) -> QuantizedAdd:
    """A QLinearAdd: inputs a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point."""
    inputs = node.inputs
    return QuantizedAdd(read.quant(inputs[1], inputs[2]), read.quant(inputs[4], inputs[5]),
                        read.quant(inputs[6], inputs[7]))


def _copy(parameter: Tensor, value: np.ndarray, node: OnnxNode) -> None:
    if value.shape != tuple(parameter.shape):
        raise ValueError(f"{node.op} {node.outputs[0]}: shape {value.shape}, expected {tuple(parameter.shape)}")
    with torch.no_grad():
        parameter.copy_(torch.from_numpy(np.ascontiguousarray(value)))
