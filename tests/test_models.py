"""The model zoo: shapes over the whole registry, gradients, weights, options and the registry itself.

No test touches the network: "pretrained" weights are random torchvision state dicts saved to tmp files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.error import URLError

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.video import r3d_18

from emovid.models import (
    WeightsUnavailableError,
    create_model,
    list_models,
    model_from_args,
    model_normalization,
    model_options,
    register_model,
)

MODELS = list_models()
VIDEO_RESNETS = ("r3d18", "r2plus1d18", "mc3-18")
FRAME_2D = (
    "early-fusion-cnn",
    "early-fusion-resnet18",
    "late-fusion-resnet18",
    "cnn-lstm",
    "temporal-attention",
)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
KINETICS = ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989))
BATCH = 2


def frames_option(name: str, num_frames: int) -> dict[str, int]:
    """num_frames for the models that take it (the early-fusion ones), nothing for the others."""
    return {"num_frames": num_frames} if "num_frames" in model_options(name) else {}


def build(name: str, num_frames: int = 6, **options: Any) -> nn.Module:
    return create_model(name, **frames_option(name, num_frames), **options)


def clip(num_frames: int = 6, size: int = 112, batch: int = BATCH) -> torch.Tensor:
    return torch.randn(batch, num_frames, 3, size, size)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision ResNet-18 state dict standing in for the ImageNet weights."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet18().state_dict(), path)
    return path


def test_registry_holds_the_zoo() -> None:
    assert set(VIDEO_RESNETS + FRAME_2D) <= set(MODELS)


@pytest.mark.parametrize("num_frames", [6, 10, 16])
@pytest.mark.parametrize("name", MODELS)
def test_logits_shape_for_any_clip_length(name: str, num_frames: int) -> None:
    model = build(name, num_frames, num_classes=5).eval()
    with torch.no_grad():
        logits = model(clip(num_frames))
    assert logits.shape == (BATCH, 5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_logits_shape_at_224(name: str) -> None:
    model = build(name).eval()
    with torch.no_grad():
        logits = model(clip(6, 224, batch=1))  # one clip: 224 is the slow end
    assert logits.shape == (1, 8)
    assert torch.isfinite(logits).all()


def _with_freeze(names: list[str]) -> list[tuple[str, bool]]:
    return [(n, False) for n in names] + [(n, True) for n in names if "freeze_backbone" in model_options(n)]


@pytest.mark.parametrize(("name", "freeze"), _with_freeze(MODELS))
def test_gradients_reach_every_trainable_parameter(name: str, freeze: bool) -> None:
    options = {"freeze_backbone": True} if freeze else {}
    model = build(name, **options).train()
    model(clip(6, 64)).logsumexp(dim=1).sum().backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.any(), pname
        else:
            assert p.grad is None, pname


@pytest.mark.parametrize(
    ("name", "trainable"),
    [
        ("early-fusion-resnet18", {"resnet.conv1", "resnet.fc"}),
        ("late-fusion-resnet18", {"head"}),
        ("cnn-lstm", {"lstm", "head"}),
        ("temporal-attention", {"project", "cls_token", "positions", "transformer", "head"}),
        ("r3d18", {"net.fc"}),
        ("r2plus1d18", {"net.fc"}),
        ("mc3-18", {"net.fc"}),
    ],
)
def test_freeze_backbone_leaves_only_new_layers_trainable(name: str, trainable: set[str]) -> None:
    model = build(name, freeze_backbone=True)
    for pname, p in model.named_parameters():
        assert p.requires_grad == any(pname == t or pname.startswith(t + ".") for t in trainable), pname


def test_frame_encoder_models_share_resnet18_minus_fc() -> None:
    reference = resnet18()
    backbone = count(reference) - count(reference.fc)
    late = build("late-fusion-resnet18", num_classes=8)
    assert count(late.encoder) == backbone
    assert count(late) == backbone + 512 * 8 + 8
    lstm = build("cnn-lstm", hidden_size=32)
    assert count(lstm.encoder) == backbone
    assert count(lstm.lstm) == 4 * 32 * (512 + 32 + 2)  # four gates: input and hidden weights, two biases


@pytest.mark.parametrize(
    ("name", "arch"), [("r3d18", "r3d_18"), ("r2plus1d18", "r2plus1d_18"), ("mc3-18", "mc3_18")]
)
def test_video_resnets_match_torchvision_with_a_new_fc(name: str, arch: str) -> None:
    from torchvision.models import video

    reference = getattr(video, arch)()
    expected = count(reference) - count(reference.fc) + 512 * 8 + 8
    assert count(build(name)) == expected


def test_widened_conv1_takes_three_channels_per_frame() -> None:
    reference = resnet18()
    for num_frames in (6, 10):
        model = build("early-fusion-resnet18", num_frames)
        assert model.resnet.conv1.in_channels == 3 * num_frames
        assert model.resnet.conv1.weight.shape == (64, 3 * num_frames, 7, 7)
        widened = 64 * 3 * num_frames * 49 - 64 * 3 * 49
        assert count(model) == count(reference) + widened - count(reference.fc) + 512 * 8 + 8


def test_inflated_conv1_reproduces_the_pretrained_response(resnet18_file: Path) -> None:
    pretrained = resnet18()
    pretrained.load_state_dict(torch.load(resnet18_file, weights_only=True))
    num_frames = 6
    model = build("early-fusion-resnet18", num_frames, weights_path=resnet18_file, conv1_init="inflate")
    frame = torch.randn(BATCH, 3, 112, 112)
    same_frames = frame.unsqueeze(1).expand(-1, num_frames, -1, -1, -1)  # (B, T, C, H, W)
    with torch.no_grad():
        expected = pretrained.conv1(frame)
        got = model.resnet.conv1(same_frames.flatten(1, 2))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # Every pretrained layer after conv1 was loaded too.
    torch.testing.assert_close(model.resnet.layer4.state_dict(), pretrained.layer4.state_dict())


def test_early_fusion_rejects_another_clip_length() -> None:
    model = build("early-fusion-cnn", 6)
    with pytest.raises(ValueError, match="num_frames=6"):
        model(clip(10))


def test_local_resnet18_weights_round_trip(resnet18_file: Path) -> None:
    saved = torch.load(resnet18_file, weights_only=True)
    for name in ("late-fusion-resnet18", "cnn-lstm", "temporal-attention"):
        loaded = build(name, weights_path=resnet18_file).encoder.resnet.state_dict()
        saved_backbone = {k: v for k, v in saved.items() if not k.startswith("fc.")}
        assert loaded.keys() == saved_backbone.keys()
        for key, tensor in saved_backbone.items():
            assert torch.equal(loaded[key], tensor), (name, key)


def test_local_r3d18_weights_round_trip(tmp_path: Path) -> None:
    saved = r3d_18().state_dict()
    path = tmp_path / "r3d_18.pth"
    torch.save(saved, path)
    loaded = build("r3d18", weights_path=path).net.state_dict()
    for key, tensor in saved.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], tensor), key


def test_weights_for_another_architecture_are_refused(resnet18_file: Path) -> None:
    with pytest.raises(ValueError, match="not a VideoResNet state dict"):
        build("r3d18", weights_path=resnet18_file)


def test_missing_local_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        build("late-fusion-resnet18", weights_path=tmp_path / "nope.pth")


@pytest.mark.parametrize(
    ("name", "file", "url"),
    [
        (
            "late-fusion-resnet18",
            "resnet18-f37072fd.pth",
            "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        ),
        ("r3d18", "r3d_18-b3b3357e.pth", "https://download.pytorch.org/models/r3d_18-b3b3357e.pth"),
    ],
)
def test_offline_error_says_what_to_download_and_where(
    name: str, file: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache, so torch.hub must download

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsUnavailableError) as info:
        build(name, pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert file in message and url in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "--weights PATH" in message and "name resolution" in message


def test_early_fusion_cnn_has_no_pretrained_weights() -> None:
    with pytest.raises(ValueError, match="from scratch"):
        build("early-fusion-cnn", pretrained=True)


def test_cnn_lstm_reads_frames_in_order_late_fusion_does_not() -> None:
    x = clip(6, 64)
    reversed_x = x.flip(1)
    with torch.no_grad():
        for name in ("cnn-lstm", "temporal-attention"):
            model = build(name).eval()
            assert not torch.allclose(model(x), model(reversed_x), atol=1e-5), name
        late = build("late-fusion-resnet18").eval()
        torch.testing.assert_close(late(x), late(reversed_x), rtol=1e-4, atol=1e-5)


def test_bidirectional_lstm_classifies_both_final_states() -> None:
    model = build("cnn-lstm", hidden_size=16, num_layers=2, bidirectional=True).eval()
    assert model.head[-1].in_features == 32
    with torch.no_grad():
        assert model(clip(6, 64)).shape == (BATCH, 8)


def test_temporal_attention_clip_length_limit() -> None:
    model = build("temporal-attention", max_frames=8).eval()
    with torch.no_grad():
        assert model(clip(8, 64)).shape == (BATCH, 8)
        with pytest.raises(ValueError, match="max_frames=8"):
            model(clip(9, 64))


# Non-default options that change the architecture, so a rebuild that ignored them would not load.
SHAPING_OPTIONS: dict[str, dict[str, Any]] = {
    "cnn-lstm": {"hidden_size": 32, "num_layers": 2, "bidirectional": True},
    "temporal-attention": {"embed_dim": 64, "num_layers": 1, "num_heads": 2, "max_frames": 12},
    "early-fusion-resnet18": {"conv1_init": "inflate", "freeze_backbone": True},
}


@pytest.mark.parametrize("name", MODELS)
def test_rebuild_from_saved_args(name: str) -> None:
    options = SHAPING_OPTIONS.get(name, {"dropout": 0.2} if "dropout" in model_options(name) else {})
    model = build(name, 10, num_classes=3, **options).eval()
    args = json.loads(json.dumps(model.emovid_args))  # what a checkpoint stores must be plain data
    assert args["name"] == name and args["num_classes"] == 3 and options.items() <= args.items()
    assert set(args) == {"name", "num_classes", *model_options(name)}  # defaults written out
    rebuilt = model_from_args(args).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = clip(10, 64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_normalisation_is_known_before_building(name: str) -> None:
    assert model_normalization(name, **frames_option(name, 6)) == build(name).input_spec


@pytest.mark.parametrize(
    ("name", "expected"), [(n, KINETICS) for n in VIDEO_RESNETS] + [(n, IMAGENET) for n in FRAME_2D]
)
def test_normalisation_follows_the_weights(name: str, expected: tuple) -> None:
    mean, std = model_normalization(name, **frames_option(name, 6))
    assert (mean, std) == expected


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("r3d18")(lambda **kwargs: nn.Identity())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'r4d'.*late-fusion-resnet18"):
        create_model("r4d")


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValueError, match="no option.*'hidden'.*hidden_size"):
        create_model("cnn-lstm", hidden=3)
