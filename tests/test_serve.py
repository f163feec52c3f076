"""emovid serve: the API in-process and on a real server, limits, tokens, temporary files, and the page in Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.datasets.ravdess import VideoSource
from emovid.predict import Predictor, predict_timeline, predict_videos, prediction_record, timeline_records
from emovid.serve import create_app
from test_score import CLASSES, GREYS, GreyReader
from videos import make_video

SPEC = InferenceSpec(model_args={"name": "grey-reader"}, class_names=CLASSES, frames=3,
                     resize={"mode": "naive", "size": 16, "short_side": 16}, crop="center",
                     mean=(0, 0, 0), std=(1, 1, 1), clip_seconds=1.0)


@pytest.fixture
def grey() -> Predictor:
    """Says which of three grey levels a clip is nearest: answers we know, no weights."""
    return Predictor(GreyReader(), SPEC)


@pytest.fixture(scope="module")
def angry_then_sad(tmp_path_factory) -> Path:
    """2 s at 30 fps: dark (angry) for the first second, light (sad) for the second."""
    path = tmp_path_factory.mktemp("serve") / "angry_then_sad.mp4"
    return make_video(path, num_frames=60, width=64, height=48, bframes=False, frame_fn=lambda i, w, h: np.full(
        (h, w, 3), GREYS["angry"] if i < 30 else GREYS["sad"], np.uint8))


@pytest.fixture(scope="module")
def happy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "happy.mp4"
    return make_video(path, num_frames=15, width=48, height=32, bframes=False,
                      frame_fn=lambda i, w, h: np.full((h, w, 3), GREYS["happy"], np.uint8))


def wait_until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread, on a loopback socket bound here (so no port race); yield its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: _answers(f"{url}/healthz"), "the server to answer /healthz")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive(), "the server did not stop"


def upload(client, path: Path, name: str | None = None, **params):
    with open(path, "rb") as f:
        return client.post("/v1/predict", params=params, files={"file": (name or path.name, f, "video/mp4")})


# --- the API in-process ------------------------------------------------------------------------------------


def test_predict_answers_what_the_cli_gives_under_the_clients_name(grey, happy):
    app = create_app(grey)
    with TestClient(app) as client:
        answer = upload(client, happy, name="../../etc/passwd")
        assert answer.status_code == 200
        (expected,) = predict_videos([VideoSource(happy)], grey)  # what `emovid predict --json` prints
        assert answer.json() == {**prediction_record(expected, CLASSES), "file": "passwd"}
        assert answer.json()["emotion"] == "happy"
        assert list(app.state.upload_dir.iterdir()) == []


def test_timeline_has_the_windows_in_seconds(grey, angry_then_sad):
    with TestClient(create_app(grey)) as client:
        record = upload(client, angry_then_sad, timeline=1).json()
    timeline = predict_timeline(angry_then_sad, grey)
    assert record["windows"] == timeline_records(timeline)
    assert [(w["start"], w["end"], w["emotion"]) for w in record["windows"]] == [
        (0.0, 1.0, "angry"), (0.5, 1.5, "happy"), (1.0, 2.0, "sad")]  # the middle window straddles the change
    assert record["probabilities"] == pytest.approx({c: 1 / 3 for c in CLASSES}, abs=1e-5)  # the mean of the windows


def test_models_and_health(grey):
    with TestClient(create_app(grey, max_bytes=1000, max_seconds=5, workers=1, queue=3)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/v1/models").json() == {
            "model": "grey-reader", "classes": list(CLASSES), "frames": 3, "clip_seconds": 1.0, "crop": "center",
            "limits": {"max_bytes": 1000, "max_seconds": 5, "workers": 1, "queue": 3}}
        assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200


def test_content_is_decided_by_decoding_not_by_the_name(grey, happy, tmp_path):
    corrupt = tmp_path / "clip.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    app = create_app(grey)
    with TestClient(app) as client:
        assert upload(client, happy, name="notes.txt").json()["emotion"] == "happy"
        answer = upload(client, corrupt)
        (failure,) = predict_videos([VideoSource(corrupt)], grey)  # the CLI's one-line reason
        assert answer.status_code == 422
        assert answer.json() == {"file": "clip.mp4", "error": failure.reason}
        assert "not a readable video" in failure.reason and str(tmp_path) not in failure.reason
        empty = client.post("/v1/predict", files={"file": ("e.mp4", b"")})
        assert (empty.status_code, empty.json()["error"]) == (422, "empty file (0 bytes)")
        assert list(app.state.upload_dir.iterdir()) == []


def test_malformed_requests_get_one_line_json(grey, happy):
    with TestClient(create_app(grey)) as client:
        wrong_field = client.post("/v1/predict", files={"video": ("a.mp4", happy.read_bytes())})
        assert (wrong_field.status_code, wrong_field.json()) == (422, {"error": "no complete file in the form field "
                                                                                "'file'"})
        raw = client.post("/v1/predict", content=happy.read_bytes(), headers={"content-type": "video/mp4"})
        assert raw.status_code == 415 and "multipart/form-data" in raw.json()["error"]
        cut = client.post("/v1/predict", content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nab",
                          headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert cut.status_code == 422  # the part never ends: not a complete file
        bad = client.post("/v1/predict?timeline=maybe", files={"file": ("a.mp4", b"x")})
        assert bad.status_code == 422 and bad.json()["error"].startswith("timeline: ")
        assert client.get("/v1/nothing").json() == {"error": "Not Found"}
        assert client.get("/v1/predict").status_code == 405


def test_oversized_uploads_get_413_declared_or_not(grey, angry_then_sad):
    size = angry_then_sad.stat().st_size
    app = create_app(grey, max_bytes=size - 1)
    with TestClient(app) as client:
        answer = upload(client, angry_then_sad)
        assert answer.status_code == 413 and "limit" in answer.json()["error"]
        body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n" + \
            angry_then_sad.read_bytes() + b"\r\n--b--\r\n"
        # A chunked body declares no length: the server counts what it writes.
        chunked = client.post("/v1/predict", content=iter([body[:1000], body[1000:]]),
                              headers={"content-type": "multipart/form-data; boundary=b"})
        assert chunked.status_code == 413
        huge = client.post("/v1/predict", content=b"x", headers={
            "content-type": "multipart/form-data; boundary=b", "content-length": str(size + 2**20)})
        assert huge.status_code == 413
        assert list(app.state.upload_dir.iterdir()) == []
    with TestClient(create_app(grey, max_bytes=size)) as client:
        assert upload(client, angry_then_sad).status_code == 200


def test_too_long_videos_get_422(grey, angry_then_sad):
    with TestClient(create_app(grey, max_seconds=1.5)) as client:
        answer = upload(client, angry_then_sad)
    assert answer.status_code == 422
    assert answer.json() == {"file": "angry_then_sad.mp4",
                             "error": "the video lasts 2.0 s, longer than this server's limit of 1.5 s"}


def test_token_guards_the_api_but_not_the_page_or_health(grey, happy):
    with TestClient(create_app(grey, token="s3cret")) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            denied = client.get("/v1/models", headers=headers)
            assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        client.headers["Authorization"] = "Bearer wrong"
        assert upload(client, happy).status_code == 401
        client.headers["Authorization"] = "Bearer s3cret"
        assert upload(client, happy).json()["emotion"] == "happy"
        assert client.get("/v1/models").status_code == 200


class Broken(GreyReader):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of luck")


def test_a_model_error_is_a_500_in_json_and_leaves_no_file(happy):
    app = create_app(Predictor(Broken(), SPEC))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = upload(client, happy)
        assert list(app.state.upload_dir.iterdir()) == []
    assert (answer.status_code, answer.json()) == (500, {"error": "internal error (RuntimeError)"})
    assert not app.state.upload_dir.exists()  # its own folder goes at shutdown


# --- the command -------------------------------------------------------------------------------------------


def test_cli_refuses_an_open_address_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("EMOVID_TOKEN", raising=False)
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: pytest.fail("loaded a model before refusing"))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 lets other machines in: give an API token" in capsys.readouterr().err


def test_cli_hands_its_options_to_the_library(monkeypatch, grey):
    calls: list[tuple[Predictor, dict]] = []
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: grey)
    monkeypatch.setattr("emovid.serve.run", lambda predictor, **options: calls.append((predictor, options)))
    monkeypatch.setenv("EMOVID_TOKEN", "from-env")
    assert main(["serve", "--host", "0.0.0.0", "--port", "9001", "--max-mb", "2", "--workers", "3"]) == 0
    assert calls == [(grey, {"host": "0.0.0.0", "port": 9001, "token": "from-env", "max_bytes": 2 * 2**20,
                             "max_seconds": 120, "workers": 3, "queue": None})]


# --- a real server -----------------------------------------------------------------------------------------


class HeldGrey(GreyReader):
    """GreyReader that holds each clip until released, so a test knows a worker is busy."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.started.set()
        assert self.release.wait(timeout=30)
        return super().forward(clips)


def test_a_full_server_answers_503_with_retry_after(happy):
    model = HeldGrey()
    app = create_app(Predictor(model, SPEC), workers=1, queue=1)
    with live_server(app) as url:
        results: list[httpx.Response] = []
        posts = [threading.Thread(target=lambda: results.append(upload(httpx.Client(base_url=url, timeout=30), happy)))
                 for _ in range(2)]
        for post in posts:
            post.start()
        wait_until(model.started.is_set, "the first clip to reach the model")
        wait_until(lambda: app.state.pool.admitted == 2, "the second request to queue")
        busy = upload(httpx.Client(base_url=url), happy)
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
        model.release.set()
        for post in posts:
            post.join(timeout=30)
        assert [r.status_code for r in results] == [200, 200]


@pytest.fixture
def served(grey, tmp_path) -> Iterator[tuple[str, Path]]:
    """A live server on the grey predictor, with uploads in a folder the test can watch; 1 s upload deadline."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    app = create_app(grey, upload_dir=folder, upload_timeout=1.0)
    with live_server(app) as url:
        yield url, folder


def _partial_upload(url: str) -> socket.socket:
    """A socket that has sent headers promising 5 MB and the first 200 kB of a video part."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    head = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n")
    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 5000000\r\n\r\n" + head + bytes(200_000))
    return sock


def test_a_cancelled_upload_leaves_no_file(served):
    url, folder = served
    sock = _partial_upload(url)
    wait_until(lambda: any(folder.iterdir()), "the upload to reach its temporary file")
    sock.close()
    wait_until(lambda: not any(folder.iterdir()), "the temporary file to go")
    assert _answers(f"{url}/healthz")


def test_a_stalled_upload_times_out_with_408_and_no_file(served):
    url, folder = served
    with _partial_upload(url) as sock:
        wait_until(lambda: any(folder.iterdir()), "the upload to reach its temporary file")
        sock.settimeout(10)
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408") and "the upload took longer than 1 s" in answer
    wait_until(lambda: not any(folder.iterdir()), "the temporary file to go")


# --- the page in a real browser ----------------------------------------------------------------------------


def test_the_page_shows_the_result_the_chart_and_the_moment(served, angry_then_sad, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    url, _ = served
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith("blob:")
                    else problems.append(f"outside request: {r.url}"))
            page.goto(url)
            page.wait_for_function("document.getElementById('model').textContent.includes('grey-reader')")
            assert page.is_hidden("#token-form") and page.is_hidden("#result")  # no token needed, nothing yet
            page.set_input_files("#file", str(angry_then_sad))
            page.wait_for_selector("#result:not([hidden])", timeout=20_000)
            assert page.text_content("#top-emotion") in CLASSES and page.inner_text("#status") == ""
            assert page.locator("#bars li").count() == 3
            page.wait_for_function("document.getElementById('chart').dataset.windows === '3'")
            assert page.get_attribute("#chart", "data-seconds") == "2.00"
            assert _coloured_pixels(page, "#d92d20") > 50 and _coloured_pixels(page, "#2e90fa") > 50  # angry, sad
            assert page.inner_text("#now") == "angry 100%"  # at 0 s
            page.wait_for_function("document.getElementById('video').readyState >= 1")  # the browser can play it
            page.evaluate("document.getElementById('video').currentTime = 1.9")
            page.wait_for_function("document.getElementById('now').textContent === 'sad 100%'")
            assert problems == []
        finally:
            browser.close()


def _coloured_pixels(page, colour: str) -> int:
    """How many chart pixels are drawn in ``colour`` (#rrggbb), give or take antialiasing."""
    return page.evaluate("""(colour) => {
        const c = document.getElementById('chart');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const want = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] > 200 && want.every((v, k) => Math.abs(data[i + k] - v) < 12)) n++;
        }
        return n;
    }""", colour)
