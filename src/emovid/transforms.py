"""Clip transforms: pure functions and small modules on uint8 clips of layout (T, C, H, W).

Augmentation draws its random parameters once per clip, so every frame of a clip gets the same crop,
flip and colour jitter (torchvision's v2 transforms do that for a :class:`tv_tensors.Video`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from emovid.data.video import uniform_indices


def normalize(clips: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips (..., C, H, W) to float, scaled to [0, 1], then standardised per channel."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=clips.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=clips.device).view(-1, 1, 1)
    return (clips.float() / 255.0 - mean_t) / std_t


def subsample_frames(clip: torch.Tensor, frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Take ``frames`` of the clip's T frames, spread uniformly.

    With a generator (training), each index moves randomly within its segment: temporal jitter. Without
    one (evaluation), the centre of each segment is taken, so the result is deterministic.
    """
    total = clip.shape[0]
    if total == frames:
        return clip
    if generator is None:
        return clip[torch.from_numpy(uniform_indices(total, frames))]
    starts = torch.arange(frames) * total / frames
    offsets = torch.rand(frames, generator=generator) * total / frames
    return clip[(starts + offsets).long().clamp_(max=total - 1)]


class ClipAugment(nn.Module):
    """Train-time augmentation of a uint8 (T, C, H, W) clip, the same for every frame of the clip.

    One random resized crop (back to the clip's size), one horizontal flip, one colour jitter.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.6, 1.0),
        flip: bool = True,
        jitter: float = 0.3,
    ) -> None:
        super().__init__()
        steps: list[nn.Module] = [v2.RandomResizedCrop(size, scale=scale, ratio=(0.85, 1.18), antialias=True)]
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        if jitter:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 6))
        self.pipeline = v2.Compose(steps)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.pipeline(tv_tensors.Video(clip)).as_subclass(torch.Tensor)


class TrainClipTransform(nn.Module):
    """What a training clip goes through: temporal jitter down to ``frames``, then optional augmentation."""

    def __init__(self, frames: int, size: int, augment: bool) -> None:
        super().__init__()
        self.frames = frames
        self.augment = ClipAugment(size) if augment else None

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        # torch's global RNG is seeded per DataLoader worker by Lightning's seed_everything(workers=True).
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ())))
        clip = subsample_frames(clip, self.frames, generator)
        return self.augment(clip) if self.augment is not None else clip


class EvalClipTransform(nn.Module):
    """Validation and test clips: the deterministic uniform subset of frames, never augmented."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return subsample_frames(clip, self.frames)
