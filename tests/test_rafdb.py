"""OpenCV Zoo's RAF-DB expression network: the ONNX reader, the loader, parity with onnxruntime, bad files.

The parity reference is ``tests/data/rafdb_golden.npz`` (made once by ``tests/data/make_rafdb_golden.py`` with
onnxruntime on the int8 file); tests that read that file skip when it is not in emovid's weights folder. The
structure tests build the same MobileFaceNet from graphs made here (a random network exported to ONNX, and that
graph quantised by onnxruntime as OpenCV Zoo's int8 twin was), so they run on a machine without weights.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from conftest import load_with_user_weights
from emovid.faces.detection import Face
from emovid.faces.geometry import cut_face
from emovid.labels import canonical_emotion
from emovid.models.onnxfile import read_onnx
from emovid.models.rafdb import (
    RAFDB_GEOMETRY,
    FakeQuantize,
    QuantizedAdd,
    RafdbExpressionNet,
    Requantize,
    load_rafdb_expression,
)
from emovid.weights import WEIGHTS_DIR_ENV, WeightsUnavailableError, path_of
from emovid.weights.files import RAFDB_FLOAT_WEIGHTS, RAFDB_WEIGHTS

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "rafdb_golden.npz"
# The int8 file's output grid: its logits are multiples of this (label_scale) from a zero point.
OUTPUT_STEP = 0.11482813


@pytest.fixture(scope="module")
def weights() -> Path:
    return load_with_user_weights(lambda: path_of(RAFDB_WEIGHTS), RAFDB_WEIGHTS)


def _onnx_matches(path: Path) -> None:
    """read_onnx gives what the onnx package gives: nodes in order, attributes, every constant."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    graph, model = read_onnx(path), onnx.load(str(path))
    assert [(n.op, n.inputs, n.outputs, n.domain) for n in graph.nodes] == [
        (n.op_type, tuple(n.input), tuple(n.output), n.domain) for n in model.graph.node]
    for mine, theirs in zip(graph.nodes, model.graph.node, strict=True):
        expected = {a.name: onnx.helper.get_attribute_value(a) for a in theirs.attribute}
        assert mine.attributes == {k: tuple(v) if isinstance(v, list) else v for k, v in expected.items()}
    assert len(graph.initializers) == len(model.graph.initializer)
    for tensor in model.graph.initializer:
        expected = numpy_helper.to_array(tensor)
        found = graph.initializers[tensor.name]
        assert found.dtype == expected.dtype and np.array_equal(found, expected), tensor.name


def _logits(net: RafdbExpressionNet, faces: np.ndarray) -> np.ndarray:
    """The network's logits for uint8 RGB faces (N, 112, 112, 3)."""
    with torch.no_grad():
        return net.logits(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255).numpy()


# --- OpenCV Zoo's file ----------------------------------------------------------------------------------------


def test_file_is_the_released_one(weights: Path) -> None:
    assert weights.stat().st_size == RAFDB_WEIGHTS.size
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == RAFDB_WEIGHTS.sha256


def test_reader_matches_the_onnx_package(weights: Path) -> None:
    _onnx_matches(weights)
    graph = read_onnx(weights)
    assert graph.inputs == {"data": (1, 3, 112, 112)} and graph.outputs == {"label": (1, 7)}
    assert Counter(n.op for n in graph.nodes) == {"QLinearConv": 49, "QuantizeLinear": 35, "DequantizeLinear": 35,
                                                  "PRelu": 33, "QLinearAdd": 13, "Conv": 1, "Flatten": 1,
                                                  "QLinearMatMul": 1}


def test_matches_onnxruntime(weights: Path) -> None:
    golden = np.load(GOLDEN)
    net = load_rafdb_expression(weights)
    logits, reference = _logits(net, golden["faces"]), golden["logits"]
    # The network computes onnxruntime's integers (int32 accumulators, its float32 requantisation and QLinearAdd
    # arithmetic), so here it gives onnxruntime's logits bit for bit. Allow one step of the output grid (0.115):
    # another convolution algorithm that rounds a float32 sum differently could flip one code at a rounding
    # tie somewhere. One step is at most 0.115 / 4 ~ 0.03 of probability; the answer must not change.
    assert np.abs(logits - reference).max() <= OUTPUT_STEP * 1.01, np.round((logits - reference) / OUTPUT_STEP)
    assert (logits.argmax(axis=1) == reference.argmax(axis=1)).all()
    with torch.no_grad():
        probs = net(torch.from_numpy(golden["faces"]).permute(0, 3, 1, 2).float() / 255).numpy()
    assert np.abs(probs - torch.from_numpy(reference).softmax(dim=1).numpy()).max() <= 0.03


def test_int8_file_is_computed_as_onnxruntime_does(weights: Path) -> None:
    net = load_rafdb_expression(weights)
    # One Requantize per QLinearConv (49) and QLinearMatMul (1), one QuantizedAdd per QLinearAdd (12 residual
    # additions and the classifier's bias), and a FakeQuantize per QuantizeLinear (35: the input, the float
    # Conv's output, 32 PReLU outputs, the classifier's input).
    assert sum(isinstance(m, Requantize) for m in net.modules()) == 50
    assert sum(isinstance(m, QuantizedAdd) for m in net.modules()) == 13
    standalone = [getattr(m, name) for m in net.modules() for name in ("input_q", "out_q", "act_q", "in_q")
                  if isinstance(getattr(m, name, None), FakeQuantize)]
    assert len(standalone) == 35


def test_truncated_file_names_it(weights: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    path.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(WeightsUnavailableError, match="truncated.onnx"):
        load_rafdb_expression(path)


# --- without weights --------------------------------------------------------------------------------------------


def test_template_crop_is_opencv_zoos() -> None:
    # The template geometry with MTCNN's landmarks gives the very crop OpenCV Zoo's alignment gives.
    golden = np.load(GOLDEN)
    image = cv2.cvtColor(cv2.imread(str(DATA / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    face = Face(tuple(golden["box"].tolist()), 1.0, golden["landmarks"])
    crop = cut_face(image, face, RAFDB_GEOMETRY, 112)
    assert np.abs(crop.astype(int) - golden["faces"][0].astype(int)).max() <= 1


class _Graph(nn.Module):
    """What the ONNX file computes: the network without its input scaling and softmax."""

    def __init__(self, net: RafdbExpressionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.net.graph_forward(data)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[RafdbExpressionNet, Path, Path]:
    """A random MobileFaceNet, its float32 ONNX export and that graph quantised as OpenCV Zoo's int8 twin was."""
    pytest.importorskip("onnx")
    quantization = pytest.importorskip("onnxruntime.quantization")
    folder = tmp_path_factory.mktemp("rafdb")
    torch.manual_seed(0)
    net = RafdbExpressionNet().eval()
    with torch.no_grad():  # slopes and biases away from their defaults, so a mix-up shows
        for module in net.modules():
            if isinstance(module, nn.PReLU):
                module.weight.uniform_(0.0, 0.5)
            elif isinstance(module, nn.Conv2d) and module.bias is not None:
                module.bias.uniform_(-0.1, 0.1)
    float_path, int8_path = folder / "float.onnx", folder / "int8.onnx"
    torch.onnx.export(_Graph(net), (torch.zeros(1, 3, 112, 112),), str(float_path), dynamo=False,
                      input_names=["data"], output_names=["label"], opset_version=11)

    class Calibration(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"data": rng.uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quantization.quantize_static(str(float_path), str(int8_path), Calibration(),
                                 quant_format=quantization.QuantFormat.QOperator, per_channel=False,
                                 activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8)
    return net, float_path, int8_path


def test_float_graph_loads_exactly(synthetic: tuple[RafdbExpressionNet, Path, Path]) -> None:
    net, float_path, _ = synthetic
    _onnx_matches(float_path)
    loaded = load_rafdb_expression(float_path)
    assert not any(isinstance(m, FakeQuantize) for m in loaded.modules())  # a float graph is not rounded
    faces = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits(faces), net.logits(faces), rtol=0, atol=1e-6)


def test_int8_graph_matches_onnxruntime(synthetic: tuple[RafdbExpressionNet, Path, Path]) -> None:
    ort = pytest.importorskip("onnxruntime")
    _, _, int8_path = synthetic
    _onnx_matches(int8_path)
    graph = read_onnx(int8_path)
    assert {"QLinearConv", "QLinearAdd", "QLinearMatMul", "PRelu"} <= {n.op for n in graph.nodes}
    loaded = load_rafdb_expression(int8_path)
    faces = (np.random.default_rng(1).random((3, 112, 112, 3)) * 255).astype(np.uint8)
    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    data = (faces.astype(np.float32) / 255 - 0.5) / 0.5
    reference = np.stack([session.run(None, {"data": x.transpose(2, 0, 1)[None]})[0][0] for x in data])
    (output,) = [n for n in graph.nodes if n.outputs == ("label",)]
    assert output.op == "DequantizeLinear"
    step = float(graph.initializers[output.inputs[1]])  # this graph's output grid
    # As for OpenCV Zoo's file: onnxruntime's outputs, allowing one step of the output grid for a rounding tie.
    assert np.abs(_logits(loaded, faces) - reference).max() <= step * 1.01


def test_missing_default_file_names_it() -> None:
    with pytest.raises(WeightsUnavailableError, match=RAFDB_WEIGHTS.name) as error:  # the tests' folder is empty
        load_rafdb_expression()
    assert "\n" not in str(error.value)


def test_the_float_original_is_used_when_it_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     synthetic: tuple[RafdbExpressionNet, Path, Path]) -> None:
    _, float_path, _ = synthetic
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    (tmp_path / RAFDB_FLOAT_WEIGHTS.name).write_bytes(float_path.read_bytes())  # not the released bytes
    with pytest.raises(WeightsUnavailableError, match=RAFDB_WEIGHTS.name):
        load_rafdb_expression()  # a float file with the wrong checksum is not used
    monkeypatch.setattr("emovid.models.rafdb.is_intact", lambda weights: weights == RAFDB_FLOAT_WEIGHTS)
    assert not any(isinstance(m, FakeQuantize) for m in load_rafdb_expression().modules())


@pytest.mark.parametrize("content", [b"", b"not a protobuf at all \xff\xff", b"\x3a\xff\xff\xff\x0f"])
def test_garbage_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(content)
    with pytest.raises(WeightsUnavailableError, match="garbage.onnx"):
        load_rafdb_expression(path)


def test_another_network_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    path = tmp_path / "other.onnx"
    other = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.PReLU(8), nn.Flatten(), nn.Linear(8 * 56 * 56, 7)).eval()
    torch.onnx.export(other, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, input_names=["data"],
                      output_names=["label"], opset_version=11)
    with pytest.raises(WeightsUnavailableError, match="other.onnx is not OpenCV Zoo's MobileFaceNet"):
        load_rafdb_expression(path)


def test_random_network_gives_probabilities() -> None:
    net = RafdbExpressionNet().eval()
    assert [canonical_emotion(c) for c in net.classes] == [
        "angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    with torch.no_grad():
        probs = net(torch.rand(2, 3, 112, 112))
    assert probs.shape == (2, 7)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="112"):
        net(torch.rand(1, 3, 96, 96))
