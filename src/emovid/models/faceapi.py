"""face-api.js's FaceExpressionNet in PyTorch, read from its tfjs weights without TensorFlow.

The MIT-licensed npm package ``@vladmandic/face-api`` 1.7.15 ships the net as a tfjs weights manifest and one
binary shard (:data:`FACEAPI_WEIGHTS`, kept side by side in :func:`~emovid.weights.weights_dir`). The
weights are uint8-quantised; :func:`read_tfjs_weights` dequantises them exactly as tfjs does.

The net (``src/faceExpressionNet``, ``src/faceFeatureExtractor``) is four dense blocks of 3x3 convolutions,
each block halving the size (112 -> 56 -> 28 -> 14 -> 7) and widening to 32, 64, 128 and 256 channels, then
a 7x7 average pool, one fully connected layer and a softmax over :data:`FACEAPI_EXPRESSION_CLASSES`. A block's
first convolution (a full 3x3 in block 0, depthwise-separable in the others) has stride 2 and TensorFlow
'same' padding, which pads only the bottom and right on an even size; the next three are separable, stride 1,
and each one reads the ReLU of the sum of the earlier outputs.

Face geometry. face-api feeds the expression net one face at a time, cut from the image this way
(``globalApi/extractFacesAndComputeResults.ts``, ``dom/extractFaces.ts``, ``dom/NetInput.ts``):

- The box: with ``.withFaceLandmarks()`` (the usual chain, and the one the demos use), the min box of the 68
  landmarks grown by 20% of its width and of its height (10% on each side), axis-aligned, no rotation
  (``FaceLandmarks.align()``, ``minBoxPadding`` 0.2); without landmarks, the detector's box as it is,
  no margin (SSD MobileNet v1 by default, or the Tiny Face Detector). The box is floored to whole pixels
  and clipped at the image borders, so a face at an edge gives a smaller, non-square crop.
- The crop is RGB, 0-255, and is padded to a square with zeros (black) centred on its short side
  (``padToSquare(..., isCenterImage=true)``: ``round(diff / 2)`` rows or columns after, the rest before),
  then resized to 112x112 with ``tf.image.resizeBilinear(alignCorners=false, halfPixelCenters=false)``:
  the legacy TensorFlow sampling ``src = dst * in / out``, not the half-pixel one of
  ``F.interpolate(align_corners=False)``. An image or canvas input goes through the canvas instead
  (``imageToSquare``: longest side scaled to 112 by ``drawImage``, centred on a black square), so browsers
  differ slightly in the resampling.
- Normalisation: ``(pixel - mean_rgb) / 255`` with :data:`FACEAPI_MEAN_RGB`; there is no std.

face-api's age-gender net reads the same crop and normalisation at 112x112, its face recognition net at 150x150.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emovid.faces.geometry import FaceGeometry
from emovid.models.expression import ExpressionEncoder
from emovid.models.weights import PathLike
from emovid.weights import WeightsUnavailableError, require
from emovid.weights.files import FACEAPI_EXPRESSION_BIN, FACEAPI_EXPRESSION_MANIFEST

# face-api's FACE_EXPRESSION_LABELS (neutral, happy, sad, angry, fearful, disgusted, surprised) in the net's
# output order, under emovid's FER-style names.
FACEAPI_EXPRESSION_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
FACEAPI_INPUT_SIZE = 112
# Subtracted on the 0-255 scale before the division by 255 (FaceFeatureExtractor.forwardInput).
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
# The landmark box grows by this fraction of its width and of its height, half on each side.
FACEAPI_LANDMARK_BOX_PADDING = 0.2
# The box around face-api's 68 landmarks (brows to chin, jaw line to jaw line) is about MTCNN's face box; with
# the 20% padding face-api adds, the crop is 1.2 face boxes, in colour.
FACEAPI_GEOMETRY = FaceGeometry(scale=1.0 + FACEAPI_LANDMARK_BOX_PADDING, align=True, colour="rgb")


# tfjs dtypes this reader handles: stored type -> numpy type (quantised entries store the quantisation dtype).
_TFJS_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def read_tfjs_weights(manifest_path: PathLike) -> dict[str, Tensor]:
    """Every tensor of a tfjs weights manifest, dequantised to float32, by its tfjs name.

    Each group's shards (``paths``, relative to the manifest) are concatenated and its weights read in order.
    A quantised uint8/uint16 weight is ``value * scale + min``; a float16 one is widened.

    Raises:
        WeightsUnavailableError: the manifest or a shard is missing, or they do not fit each other.
    """
    path = Path(manifest_path)
    if not path.is_file():
        raise WeightsUnavailableError(f"tfjs weights manifest {path} does not exist")
    try:
        groups = json.loads(path.read_text())
        tensors: dict[str, Tensor] = {}
        for group in groups:
            shards = [path.parent / shard for shard in group["paths"]]
            missing = [str(shard) for shard in shards if not shard.is_file()]
            if missing:
                raise WeightsUnavailableError(f"tfjs weights shard {missing[0]} (named by {path}) does not exist")
            data = b"".join(shard.read_bytes() for shard in shards)
            offset = 0
            for entry in group["weights"]:
                tensors[entry["name"]], offset = _read_entry(entry, data, offset)
            if offset != len(data):
                raise ValueError(f"the weights take {offset} bytes but the shards hold {len(data)}")
    except WeightsUnavailableError:
        raise
    except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise WeightsUnavailableError(f"malformed tfjs weights manifest {path}: {_one_line(exc)}") from exc
    return tensors


def _read_entry(entry: dict[str, Any], data: bytes, offset: int) -> tuple[Tensor, int]:
    """One manifest entry's float32 tensor from the group's bytes at ``offset``, and the offset after it."""
    shape = [int(d) for d in entry["shape"]]
    quantization = entry.get("quantization")
    stored = quantization["dtype"] if quantization else entry["dtype"]
    if entry["dtype"] != "float32" or stored not in _TFJS_DTYPES:
        raise ValueError(f"{entry['name']}: unsupported dtype {entry['dtype']} stored as {stored}")
    count = math.prod(shape)
    end = offset + count * np.dtype(_TFJS_DTYPES[stored]).itemsize
    if end > len(data):
        raise ValueError(f"{entry['name']} runs past the end of the shards ({end} > {len(data)} bytes)")
    values = np.frombuffer(data, dtype=_TFJS_DTYPES[stored], count=count, offset=offset)
    if quantization and stored in ("uint8", "uint16"):
        # tfjs computes in float64 and stores float32 (io.decodeWeights).
        values = values * float(quantization["scale"]) + float(quantization["min"])
    return torch.from_numpy(values.astype(np.float32).reshape(shape)), end


class SeparableConv(nn.Module):
    """tfjs ``separableConv2d`` then a bias: a 3x3 depthwise convolution (no bias), then a 1x1 one."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        padding = 0 if stride == 2 else 1  # stride 2 pads asymmetrically in forward
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride, padding, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(_pad_same_stride2(x) if self.stride == 2 else x))


class Conv(nn.Conv2d):
    """A full 3x3 convolution with stride 2 and 'same' padding (block 0's first layer)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, 2)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_pad_same_stride2(x))


def _pad_same_stride2(x: Tensor) -> Tensor:
    """TensorFlow 'same' padding of a 3x3, stride-2 convolution on an even size: one row and column, after."""
    return F.pad(x, (0, 1, 0, 1))


class DenseBlock(nn.Module):
    """face-api's ``denseBlock4``: a stride-2 convolution, then three separable ones on running sums."""

    def __init__(self, in_channels: int, out_channels: int, first: bool = False) -> None:
        super().__init__()
        self.conv0 = Conv(in_channels, out_channels) if first else SeparableConv(in_channels, out_channels, 2)
        self.conv1 = SeparableConv(out_channels, out_channels, 1)
        self.conv2 = SeparableConv(out_channels, out_channels, 1)
        self.conv3 = SeparableConv(out_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.conv0(x))
        # Running sums: out1 + out2, then + out3, then + out4; each later layer reads the ReLU of the last sum.
        out = out + self.conv1(out)
        out = out + self.conv2(F.relu(out))
        return F.relu(out + self.conv3(F.relu(out)))


class FaceExpressionNet(ExpressionEncoder):
    """face-api.js's expression net: RGB face crops in [0, 1], (N, 3, 112, 112), to probabilities (N, 7).

    The crop must already be cut, squared and resized as the module docstring describes.
    """

    classes: tuple[str, ...] = FACEAPI_EXPRESSION_CLASSES
    input_size: int = FACEAPI_INPUT_SIZE
    geometry: FaceGeometry = FACEAPI_GEOMETRY

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = DenseBlock(3, 32, first=True)
        self.dense1 = DenseBlock(32, 64)
        self.dense2 = DenseBlock(64, 128)
        self.dense3 = DenseBlock(128, 256)
        self.fc = nn.Linear(256, len(self.classes))
        self.mean_rgb: Tensor
        self.register_buffer("mean_rgb", torch.tensor(FACEAPI_MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        # oneDNN's depthwise and 1x1 convolutions run about a third faster on CPU in channels-last (NHWC).
        self.to(memory_format=torch.channels_last)

    def forward(self, faces: Tensor) -> Tensor:
        return self.logits(faces).softmax(dim=1)

    def logits(self, faces: Tensor) -> Tensor:
        """The fully connected layer's output (N, 7), before face-api's softmax."""
        if faces.shape[1:] != (3, self.input_size, self.input_size):
            raise ValueError(f"expected faces (N, 3, {self.input_size}, {self.input_size}), got {tuple(faces.shape)}")
        # Back to face-api's 0-255 scale so the mean is subtracted as it is there.
        x = ((faces * 255 - self.mean_rgb) / 255).contiguous(memory_format=torch.channels_last)
        x = self.dense3(self.dense2(self.dense1(self.dense0(x))))  # (N, 256, 7, 7)
        features = F.avg_pool2d(x, 7).flatten(1)  # (N, 256)
        return self.fc(features)


def load_faceapi_expression(path: PathLike | None = None) -> FaceExpressionNet:
    """The expression net with face-api's weights, in eval mode.

    Args:
        path: the weights manifest, or the folder holding it and its ``.bin`` shard;
            default :func:`~emovid.weights.weights_dir`.

    Raises:
        WeightsUnavailableError: a file is missing or malformed; the message names it.
    """
    if path is None:
        manifest = require(FACEAPI_EXPRESSION_MANIFEST)
        require(FACEAPI_EXPRESSION_BIN)
    else:
        manifest = Path(path)
        if manifest.is_dir():
            manifest = manifest / FACEAPI_EXPRESSION_MANIFEST.name
    net = FaceExpressionNet()
    state = _state_dict_from_tfjs(read_tfjs_weights(manifest), net, manifest)
    net.load_state_dict(state)
    return net.eval()


def _state_dict_from_tfjs(tensors: dict[str, Tensor], net: FaceExpressionNet, source: Path) -> dict[str, Tensor]:
    """tfjs tensors (HWIO filters, (in, out) fc weights) renamed and transposed to ``net``'s state dict."""
    expected = net.state_dict()
    state: dict[str, Tensor] = {}
    for name, value in tensors.items():
        key, value = _to_torch(name, value, expected)
        if key not in expected or expected[key].shape != value.shape:
            want = tuple(expected[key].shape) if key in expected else "no such parameter"
            raise WeightsUnavailableError(
                f"malformed face-api expression weights {source}: {name} {tuple(value.shape)} does not fit "
                f"{key} ({want})"
            )
        state[key] = value
    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsUnavailableError(f"malformed face-api expression weights {source}: no {', '.join(missing)}")
    return state


def _to_torch(name: str, value: Tensor, expected: dict[str, Tensor]) -> tuple[str, Tensor]:
    """A tfjs weight's key in ``expected`` (``net``'s state dict) and its value in PyTorch's layout."""
    *scope, kind = name.split("/")
    prefix = ".".join(scope)
    if kind in ("filters", "pointwise_filter"):  # (3, 3, in, out) or (1, 1, in, out) -> (out, in, kh, kw)
        key = f"{prefix}.weight" if kind == "filters" else f"{prefix}.pointwise.weight"
        return key, value.permute(3, 2, 0, 1).contiguous()
    if kind == "depthwise_filter":  # (3, 3, in, 1) -> (in, 1, 3, 3)
        return f"{prefix}.depthwise.weight", value.permute(2, 3, 0, 1).contiguous()
    if kind == "weights":  # fc (in, out) -> (out, in)
        return f"{prefix}.weight", value.t().contiguous()
    if kind == "bias":  # a separable layer's bias follows its pointwise convolution
        key = f"{prefix}.bias"
        return (key if key in expected else f"{prefix}.pointwise.bias"), value
    return name, value


def _one_line(exc: BaseException) -> str:
    """An exception as one short line, its type included."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
