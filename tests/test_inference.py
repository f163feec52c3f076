import numpy as np
import pytest
import torch
from torch import nn

from emovid.checkpoint import InferenceSpec
from emovid.inference import (
    InferenceOptions,
    clip_probabilities,
    precision_of,
    probabilities_of_batches,
    resolve_device,
)
from emovid.predict import Predictor

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


class LeftRight(nn.Module):
    """Logits from the left and right halves of the first frame: a mirror swaps them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.stack([x[:, 0, :, :, :half].mean((1, 2, 3)), x[:, 0, :, :, half:].mean((1, 2, 3)),
                            torch.zeros(len(x))], dim=1) * 3


def clips(n: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 2, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_probabilities_normalise_and_tta_averages_the_mirror():
    x = clips()
    plain = clip_probabilities(LeftRight(), x, MEAN, STD)
    mirrored = clip_probabilities(LeftRight(), x.flip(-1), MEAN, STD)
    assert plain.shape == (3, 3) and torch.allclose(plain.sum(1), torch.ones(3))
    assert not torch.allclose(plain, mirrored)
    torch.testing.assert_close(clip_probabilities(LeftRight(), x, MEAN, STD, tta=2), (plain + mirrored) / 2)
    normalised = (x.float() / 255 - torch.tensor(MEAN).view(-1, 1, 1)) / torch.tensor(STD).view(-1, 1, 1)
    torch.testing.assert_close(plain, LeftRight()(normalised).softmax(-1))


def test_predictor_and_loader_paths_give_the_same_probabilities():
    x = clips(4)
    spec = InferenceSpec({"name": "left-right"}, ("a", "b", "c"), 2, {"mode": "naive", "size": 8}, "center", MEAN, STD,
                         clip_seconds=1.0)
    options = InferenceOptions(tta=2, device="cpu")
    served = Predictor(LeftRight(), spec, options).probabilities(x.numpy())
    batches = [(x[:3], torch.tensor([0, 1, 2]), {"key": ["p", "q", "r"]}), (x[3:], torch.tensor([1]), {"key": ["s"]})]
    probs, labels, metas = probabilities_of_batches(LeftRight(), batches, MEAN, STD, options, progress=False)
    np.testing.assert_allclose(served, probs, atol=1e-6)
    assert labels.tolist() == [0, 1, 2, 1] and [m["key"] for m in metas] == ["p", "q", "r", "s"]


@pytest.mark.parametrize("kwargs,message", [({"tta": 3}, "tta"), ({"precision": "8"}, "precision"),
                                            ({"batch_size": 0}, "batch size"), ({"device": "tpu9"}, "device")])
def test_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InferenceOptions(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_says_what_to_do():
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU; use --device cpu"):
        resolve_device("cuda")


def test_precision_follows_training():
    assert [precision_of(p) for p in ("bf16-mixed", "16-mixed", "32-true", None)] == ["bf16", "16", "32", "32"]
