"""face-api.js's expression net: the tfjs weights reader, the layout mapping, and parity with face-api in node."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emovid.models.faceapi import (
    FaceExpressionNet,
    load_faceapi_expression,
    read_tfjs_weights,
)
from emovid.weights import WeightsUnavailableError, path_of
from emovid.weights.files import FACEAPI_WEIGHTS

GOLDEN = Path(__file__).parent / "data" / "faceapi_golden.npz"


def write_tfjs(folder: Path, entries: list[tuple[str, np.ndarray, dict | None]], shards: int = 1) -> Path:
    """A tfjs manifest and its shards for (name, stored values, quantization or None) in ``folder``."""
    data = b"".join(values.tobytes() for _, values, _ in entries)
    cut = [len(data) * i // shards for i in range(shards + 1)]
    paths = [f"w.bin.{i}" for i in range(shards)]
    for i, name in enumerate(paths):
        (folder / name).write_bytes(data[cut[i] : cut[i + 1]])
    weights = [
        {"name": name, "shape": list(values.shape), "dtype": "float32"} | ({"quantization": q} if q else {})
        for name, values, q in entries
    ]
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps([{"paths": paths, "weights": weights}]))
    return manifest


def tfjs_entries(net: FaceExpressionNet) -> list[tuple[str, np.ndarray, None]]:
    """``net``'s weights as face-api's float32 tfjs entries: its names and TensorFlow layouts."""
    entries = []
    for key, value in net.state_dict().items():
        value = value.numpy()
        scope, kind = key.replace(".depthwise", "").replace(".pointwise", "").rsplit(".", 1)
        name = scope.replace(".", "/")
        if kind == "bias":
            entries.append((f"{name}/bias", value, None))
        elif scope == "fc":
            entries.append(("fc/weights", value.T, None))
        elif ".depthwise." in key:
            entries.append((f"{name}/depthwise_filter", value.transpose(2, 3, 0, 1), None))
        else:
            kind = "pointwise_filter" if ".pointwise." in key else "filters"
            entries.append((f"{name}/{kind}", value.transpose(2, 3, 1, 0), None))
    return [(name, np.ascontiguousarray(v, np.float32), q) for name, v, q in entries]


def test_reader_dequantises_every_dtype_across_shards(tmp_path):
    u8 = np.array([[0, 1], [128, 255]], np.uint8)
    u16 = np.array([0, 65535, 7], np.uint16)
    f16 = np.array([0.5, -2.25], np.float16)
    f32 = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    manifest = write_tfjs(
        tmp_path,
        [
            ("a/u8", u8, {"dtype": "uint8", "scale": 0.5, "min": -1.0}),
            ("a/u16", u16, {"dtype": "uint16", "scale": 0.25, "min": 2.0}),
            ("b/f16", f16, {"dtype": "float16"}),
            ("b/f32", f32, None),
        ],
        shards=3,
    )
    tensors = read_tfjs_weights(manifest)
    assert {name: tuple(t.shape) for name, t in tensors.items()} == {
        "a/u8": (2, 2), "a/u16": (3,), "b/f16": (2,), "b/f32": (1, 2, 3)
    }  # fmt: skip
    assert all(t.dtype == torch.float32 for t in tensors.values())
    np.testing.assert_array_equal(tensors["a/u8"], u8 * 0.5 - 1.0)
    np.testing.assert_array_equal(tensors["a/u16"], u16 * 0.25 + 2.0)
    np.testing.assert_array_equal(tensors["b/f16"], [0.5, -2.25])
    np.testing.assert_array_equal(tensors["b/f32"], f32)


def test_tfjs_layouts_map_onto_the_net(tmp_path):
    torch.manual_seed(0)
    net = FaceExpressionNet().eval()
    loaded = load_faceapi_expression(write_tfjs(tmp_path, tfjs_entries(net)))
    faces = torch.rand(2, 3, 112, 112)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.logits(faces), net.logits(faces), rtol=0, atol=1e-5)


def test_random_weights_give_probabilities():
    net = FaceExpressionNet().eval()
    with torch.inference_mode():
        probs = net(torch.rand(3, 3, 112, 112))
    assert probs.shape == (3, len(net.classes)) and torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    assert sorted(net.classes) == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    with pytest.raises(ValueError, match="112"):
        net(torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize(
    "manifest_text",
    ["not json", '[{"paths": ["w.bin.0"]}]', '[{"paths": ["w.bin.0"], "weights": [{"name": "x", "shape": [9]}]}]'],
)
def test_malformed_manifest_names_the_file(tmp_path, manifest_text):
    manifest = write_tfjs(tmp_path, [("x", np.zeros(4, np.float32), None)])
    manifest.write_text(manifest_text)
    with pytest.raises(WeightsUnavailableError, match="manifest.json") as info:
        read_tfjs_weights(manifest)
    assert "\n" not in str(info.value)


def test_missing_or_unfitting_files_name_the_file(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="nowhere.json"):
        load_faceapi_expression(tmp_path / "nowhere.json")
    manifest = write_tfjs(tmp_path, [("x", np.zeros(4, np.float32), None)])
    (tmp_path / "w.bin.0").unlink()
    with pytest.raises(WeightsUnavailableError, match="w.bin.0"):
        read_tfjs_weights(manifest)
    (tmp_path / "w.bin.0").write_bytes(b"\0" * 8)  # half the bytes the manifest asks for
    with pytest.raises(WeightsUnavailableError, match="manifest.json"):
        read_tfjs_weights(manifest)
    manifest = write_tfjs(tmp_path, [("dense0/conv0/bias", np.zeros(5, np.float32), None)])
    with pytest.raises(WeightsUnavailableError, match="manifest.json.*dense0/conv0/bias"):
        load_faceapi_expression(manifest)


def test_packaged_manifest_shapes(user_weights):
    user_weights(*FACEAPI_WEIGHTS)
    path = path_of(FACEAPI_WEIGHTS[0])
    manifest = json.loads(path.read_text())
    shapes = {entry["name"]: tuple(entry["shape"]) for group in manifest for entry in group["weights"]}
    tensors = read_tfjs_weights(path)
    assert {name: tuple(t.shape) for name, t in tensors.items()} == shapes


def test_matches_faceapi_js(user_weights):
    user_weights(*FACEAPI_WEIGHTS)
    golden = np.load(GOLDEN)
    assert tuple(golden["labels"]) == ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
    net = load_faceapi_expression()
    assert not net.training
    faces = torch.from_numpy(golden["faces"]).permute(0, 3, 1, 2).float() / 255  # (N, 112, 112, 3) -> (N, 3, ...)
    with torch.inference_mode():
        logits, probs = net.logits(faces), net(faces)
    np.testing.assert_allclose(probs.numpy(), golden["probs"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), golden["logits"], rtol=0, atol=1e-4)
