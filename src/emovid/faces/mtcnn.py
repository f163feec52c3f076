"""MTCNN (Zhang et al. 2016): a three-stage face detector that also gives five landmarks.

PNet scans an image pyramid for 12 px face windows, RNet re-scores their 24 px crops and ONet their 48 px
crops, each stage regressing the boxes; ONet also places the eyes, nose tip and mouth corners. The weights
are the MIT-licensed ones in the ``facenet-pytorch`` 2.6.0 wheel (converted from the authors' Caffe models);
the cascade follows that package's, batched over the frames of a clip, with two deliberate differences:
boxes are in continuous pixel coordinates (pixel i spans [i, i + 1)) rather than the Matlab original's
1-based inclusive ones, and crops that stick out of the image are padded with black as in the original,
where facenet-pytorch stretches the part inside the image. On tests/data/astronaut.jpg both give the same
single face, boxes and landmarks within 2 px of each other's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms, roi_align

from emovid.faces.detection import Face
from emovid.weights import require
from emovid.weights.files import MTCNN_WEIGHTS

FACTOR = 0.709  # pyramid step: each level's side is 0.709 of the previous one's (area halves)
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each stage needs
WINDOW = 12  # PNet's window in pixels of the pyramid level; it slides with stride 2


def _normalise(pixels: Tensor) -> Tensor:
    """[0, 255] to about [-1, 1], as the nets were trained."""
    return (pixels - 127.5) * 0.0078125


def _flatten_caffe(x: Tensor) -> Tensor:
    """(N, C, H, W) to (N, W * H * C): the dense layers were converted from Caffe, which reads (W, H, C)."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12 x 12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised images (N, 3, H, W) to box offsets (N, 4, h, w) and face probabilities (N, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refine net: re-scores 24 x 24 crops and regresses their boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised crops (N, 3, 24, 24) to box offsets (N, 4) and face probabilities (N,)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))  # (N, 64, 3, 3)
        x = self.prelu4(self.dense4(_flatten_caffe(x)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net: final scores, boxes and five landmarks from 48 x 48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised crops (N, 3, 48, 48) to box offsets (N, 4), landmarks (N, 10) and probabilities (N,).

        Landmarks are fractions of the crop: five x, then five y.
        """
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))  # (N, 128, 3, 3)
        x = self.prelu5(self.dense5(_flatten_caffe(x)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)[:, 1]


def load_mtcnn_nets(device: str | torch.device = "cpu") -> tuple[PNet, RNet, ONet]:
    """The three nets with the facenet-pytorch weights from :func:`emovid.weights.weights_dir`, in eval mode.

    Raises:
        WeightsUnavailableError: a file is missing (the message says how to get it) or is not the right one.
    """
    nets = (PNet(), RNet(), ONet())
    for net, weights in zip(nets, MTCNN_WEIGHTS, strict=True):
        # require() checks the SHA-256, so the file is facenet-pytorch's own.
        net.load_state_dict(torch.load(require(weights), map_location="cpu", weights_only=True))
        # channels_last: PNet's few-channel convolutions run about twice as fast on CPU.
        net.to(device).to(memory_format=torch.channels_last).eval()
    return nets


def pyramid_scales(height: int, width: int, min_face: float, factor: float = FACTOR) -> list[float]:
    """Scales at which PNet's 12 px window sees faces from ``min_face`` pixels up to the image's short side."""
    scale = WINDOW / min_face
    short = min(height, width) * scale
    scales = []
    while short >= WINDOW:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def regress(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Move each edge of boxes (K, 4) by offsets (K, 4), given as fractions of the box's width and height."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def square(boxes: Tensor) -> Tensor:
    """Boxes (K, 4) grown to squares of their longer side about the same centre (the nets take square crops)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], dim=1)


def nms_min(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float) -> Tensor:
    """Greedy NMS per group with overlap measured over the smaller box, so a box inside another goes.

    MTCNN's last stage uses it; torchvision has IoU NMS only. The few boxes left by then make a loop cheap.

    Returns:
        Indices of the kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # Shift each group's boxes apart so that boxes of different groups never overlap.
    boxes = boxes + (groups.to(boxes) * (boxes.max() + 1))[:, None]
    areas = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        corner0 = torch.maximum(boxes[best, :2], boxes[rest, :2])
        corner1 = torch.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = (corner1 - corner0).clamp(min=0).prod(dim=1) / torch.minimum(areas[best], areas[rest])
        order = rest[overlap <= threshold]
    return torch.stack(keep)


def _crops(images: Tensor, boxes: Tensor, image_of: Tensor, size: int) -> Tensor:
    """Normalised size x size crops (K, 3, size, size) of boxes (K, 4) in images (N, 3, H, W) of pixels.

    RoIAlign averages a grid of samples per output pixel (about as area interpolation does) and reads zero, black,
    outside the image: the original MTCNN's padding.
    """
    rois = torch.cat([image_of[:, None].to(boxes), boxes], dim=1)
    return _normalise(roi_align(images, rois, output_size=size, sampling_ratio=-1, aligned=True))


@torch.no_grad()
def run_cascade(
    images: Tensor,
    nets: tuple[PNet, RNet, ONet],
    min_face: float,
    thresholds: Sequence[float] = THRESHOLDS,
    factor: float = FACTOR,
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """MTCNN on a batch of same-sized images.

    Args:
        images: float RGB pixels in [0, 255], (N, 3, H, W).
        nets: PNet, RNet, ONet, on the images' device.
        min_face: smallest face side looked for, in pixels.
        thresholds: the face probability each stage needs.
        factor: pyramid step.

    Returns:
        Per image: boxes (K, 4) as x0, y0, x1, y1 in its pixels, scores (K,), landmarks (K, 5, 2) as x, y of the
        left eye, right eye, nose tip, left and right mouth corners (as seen in the image).
    """
    pnet, rnet, onet = nets
    n, _, height, width = images.shape
    empty = (images.new_zeros(0, 4), images.new_zeros(0), images.new_zeros(0, 5, 2))

    # Stage 1: PNet on every pyramid level, all images at once; NMS per level and image, then per image.
    level_results: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []  # boxes, scores, offsets, image per level
    for scale in pyramid_scales(height, width, min_face, factor):
        level_h, level_w = math.ceil(height * scale), math.ceil(width * scale)
        level_offsets, probs = pnet(_normalise(F.interpolate(images, size=(level_h, level_w), mode="area")))
        hits = (probs >= thresholds[0]).nonzero()  # (K, 3): image, row, column of the window's cell
        cells = hits[:, [2, 1]].to(images).repeat(1, 2)  # (K, 4): column, row, column, row
        level_scale = images.new_tensor([level_w / width, level_h / height]).repeat(2)
        level_boxes = (2 * cells + images.new_tensor([0, 0, WINDOW, WINDOW])) / level_scale
        level_scores = probs[hits[:, 0], hits[:, 1], hits[:, 2]]
        keep = batched_nms(level_boxes, level_scores, hits[:, 0], 0.5)
        level_results.append((level_boxes[keep], level_scores[keep],
                              level_offsets.permute(0, 2, 3, 1)[hits[keep, 0], hits[keep, 1], hits[keep, 2]],
                              hits[keep, 0]))
    if sum(len(level[0]) for level in level_results) == 0:  # no window passed, or the image is below min_face
        return [empty] * n
    boxes, scores, offsets, image_of = (torch.cat(v) for v in zip(*level_results, strict=True))
    keep = batched_nms(boxes, scores, image_of, 0.7)
    boxes, image_of = square(regress(boxes[keep], offsets[keep])), image_of[keep]

    # Stage 2: RNet on 24 px crops.
    offsets, scores = rnet(_crops(images, boxes, image_of, 24))
    passed = scores > thresholds[1]
    boxes, scores, offsets, image_of = boxes[passed], scores[passed], offsets[passed], image_of[passed]
    keep = batched_nms(boxes, scores, image_of, 0.7)
    boxes, image_of = square(regress(boxes[keep], offsets[keep])), image_of[keep]
    if len(boxes) == 0:
        return [empty] * n

    # Stage 3: ONet on 48 px crops; the landmarks are placed in the box ONet saw, before its regression.
    offsets, points, scores = onet(_crops(images, boxes, image_of, 48))
    passed = scores > thresholds[2]
    boxes, scores, offsets, points, image_of = (v[passed] for v in (boxes, scores, offsets, points, image_of))
    size = boxes[:, 2:] - boxes[:, :2]  # (K, 2) width, height
    landmarks = boxes[:, None, :2] + points.view(-1, 2, 5).transpose(1, 2) * size[:, None]  # (K, 5, 2)
    boxes = regress(boxes, offsets)
    keep = nms_min(boxes, scores, image_of, 0.7)
    boxes, scores, landmarks, image_of = boxes[keep], scores[keep], landmarks[keep], image_of[keep]
    return [(boxes[image_of == i], scores[image_of == i], landmarks[image_of == i]) for i in range(n)]


class MtcnnDetector:
    """MTCNN behind the :class:`~emovid.faces.detection.FaceDetector` protocol, with five landmarks per face.

    Frames wider than ``detect_width`` are shrunk to it first (INTER_AREA) and the results mapped back to the
    frame's pixels. Frames of one size are detected together, ``batch_size`` at a time.

    ``min_face`` sets the cost: PNet's largest pyramid level is ``12 / min_face`` pixels on the short side
    whatever ``detect_width``, which only needs to keep the smallest face above PNet's 12 px window
    (``min_face * short side >= 12``) and sets how sharp RNet's and ONet's crops are. On the real clips of
    ``benchmarks/bench_detectors.py``, 0.05 found one more frame of 544 than 0.1, at over twice the cost.

    Args:
        min_face: smallest face looked for, as a fraction of the frame's short side; never below PNet's 12 px
            window at the detection size, so the pyramid never enlarges the image.
        thresholds: face probability needed by PNet, RNet and ONet (MTCNN's standard 0.6, 0.7, 0.7).
        detect_width: frames are detected at most this wide.
        device: where the nets run.
        batch_size: frames per forward pass; bounds memory on long clips.

    Raises:
        WeightsUnavailableError: the weight files are missing or broken.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face: float = 0.1,
        thresholds: Sequence[float] = THRESHOLDS,
        detect_width: int = 480,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if not 0 < min_face <= 1:
            raise ValueError(f"min_face is a fraction of the frame's short side in (0, 1], got {min_face}")
        self.min_face = min_face
        self.thresholds = tuple(thresholds)
        self.detect_width = detect_width
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.nets = load_mtcnn_nets(self.device)

    def at_smallest_size(self, width: int, height: int) -> MtcnnDetector:
        """This detector (the same nets) shrinking ``width`` x ``height`` frames as far as its smallest face allows:
        until a face of ``min_face`` fills the 24 px crops RNet re-scores PNet's proposals from.

        PNet's pyramid is the same at any detection size; a smaller image makes the shrinking, the conversion to
        floats and the later stages cheaper. Shrinking down to PNet's 12 px window loses faces: on 34 real clips
        at 5 frames a second, detecting one frame in 3, the face was found on 868 of 982 frames there, 891 at
        this size and 882 at the default 480 px wide.
        """
        detector = copy.copy(self)
        scale = 2 * WINDOW / self.min_face / min(width, height)
        detector.detect_width = min(self.detect_width, width, math.ceil(width * scale))
        return detector

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each uint8 RGB (H, W, C) frame, in that frame's pixels, by decreasing score.

        Boxes are MTCNN's (brow to chin, not square) and may reach past the frame's edges with the face.
        """
        found: list[list[Face]] = [[] for _ in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                for i, faces in zip(batch, self._detect_same_size([frames[i] for i in batch]), strict=True):
                    found[i] = faces
        return found

    def _detect_same_size(self, frames: list[np.ndarray]) -> list[list[Face]]:
        height, width = frames[0].shape[:2]
        small_w = min(width, self.detect_width)
        small_h = max(1, round(height * small_w / width))
        if small_w != width:
            frames = [cv2.resize(f, (small_w, small_h), interpolation=cv2.INTER_AREA) for f in frames]
        # (N, H, W, 3) uint8 -> (N, 3, H, W) float pixels, stored channels-last as the nets are
        images = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).float()
        images = images.contiguous(memory_format=torch.channels_last)
        min_face = max(float(WINDOW), self.min_face * min(small_h, small_w))
        to_frame = np.array([width / small_w, height / small_h], np.float32)
        faces = []
        for boxes, scores, landmarks in run_cascade(images, self.nets, min_face, self.thresholds):
            corners = boxes.cpu().numpy().reshape(-1, 2, 2) * to_frame
            points = landmarks.cpu().numpy() * to_frame
            faces.append(
                [
                    Face(tuple(box.ravel().tolist()), float(score), marks.astype(np.float32))
                    for box, score, marks in zip(corners, scores.tolist(), points, strict=True)
                ]
            )
        return faces
