"""emovid serve: the API in-process and on a real server, limits, tokens, browsers' origins, temporary files,
slow clients, shutdown, and the page in Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

import emovid
from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.datasets.ravdess import VideoSource
from emovid.faces import Face
from emovid.predict import Predictor, predict_timeline, predict_videos, prediction_record, timeline_records
from emovid.serve import Limits
from emovid.serve.app import create_app
from test_score import CLASSES, GREYS, GreyReader
from videos import make_video, truncated_faststart

SPEC = InferenceSpec(model_args={"name": "grey-reader"}, class_names=CLASSES, frames=3,
                     resize={"mode": "naive", "size": 16, "short_side": 16}, crop="center",
                     mean=(0, 0, 0), std=(1, 1, 1), clip_seconds=1.0)
FACE_SPEC = replace(SPEC, crop="face")


@pytest.fixture
def grey() -> Predictor:
    """Says which of three grey levels a clip is nearest: answers we know, no weights."""
    return Predictor(GreyReader(), SPEC)


def grey_video(path: Path, seconds_of: Callable[[float], str], frames: int, noise: int = 0) -> Path:
    """A 30 fps video whose frame at time t is the grey level of class ``seconds_of(t)`` (give or take ``noise``)."""
    def frame(i: int, w: int, h: int) -> np.ndarray:
        level = GREYS[seconds_of(i / 30)] + np.random.default_rng(i).integers(-noise, noise + 1, (h, w, 3))
        return np.clip(level, 0, 255).astype(np.uint8)

    return make_video(path, num_frames=frames, width=64, height=48, bframes=False, frame_fn=frame)


@pytest.fixture(scope="module")
def angry_then_sad(tmp_path_factory) -> Path:
    """2 s: dark (angry) for the first second, light (sad) for the second."""
    return grey_video(tmp_path_factory.mktemp("serve") / "angry_then_sad.mp4",
                      lambda t: "angry" if t < 1 else "sad", 60)


@pytest.fixture(scope="module")
def mostly_angry(tmp_path_factory) -> Path:
    """3 s: angry for two, then sad. Most windows say angry, but the clip's 3 frames (at 0.5, 1.5 and 2.5 s)
    average to a grey nearest happy's: the clip's answer and the mean of the windows disagree."""
    return grey_video(tmp_path_factory.mktemp("serve") / "mostly_angry.mp4",
                      lambda t: "angry" if t < 2 else "sad", 90)


@pytest.fixture(scope="module")
def happy(tmp_path_factory) -> Path:
    """0.5 s of happy's grey: shorter than the model's 1 s clip, so its timeline is one window."""
    return grey_video(tmp_path_factory.mktemp("serve") / "happy.mp4", lambda t: "happy", 15)


@pytest.fixture(scope="module")
def truncated(tmp_path_factory) -> Path:
    """3 s of angry whose file ends after about 60% of it (its header still declares 3 s); noisy, so that the
    frames' bytes, not the header's, make up most of the file."""
    folder = tmp_path_factory.mktemp("serve")
    whole = grey_video(folder / "whole.mp4", lambda t: "angry", 90, noise=25)
    return truncated_faststart(whole, folder / "truncated.mp4", keep=0.6)


class FacesInDarkFrames:
    """A face detector that finds one face, in the middle, in every frame darker than sad's grey."""

    name = "dark-frames"

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        return [[Face((16.0, 8.0, 48.0, 40.0), 1.0)] if f.mean() < 180 else [] for f in frames]


@pytest.fixture
def faces_in_dark_frames(monkeypatch) -> Predictor:
    """The grey reader on face crops, with a face wherever the frame is not sad's light grey."""
    monkeypatch.setattr("emovid.faces.default_detectors", lambda: (FacesInDarkFrames(),))
    return Predictor(GreyReader(), FACE_SPEC)


def local(app) -> TestClient:
    """A client whose requests name the loopback address, as a browser on this machine does."""
    return TestClient(app, base_url="http://127.0.0.1")


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
    with local(app) as client:
        answer = upload(client, happy, name="../../etc/passwd")
        assert answer.status_code == 200
        (expected,) = predict_videos([VideoSource(happy)], grey)  # what `emovid predict --json` prints
        assert answer.json() == {**prediction_record(expected, CLASSES), "file": "passwd"}
        assert answer.json()["emotion"] == "happy"
        assert list(app.state.upload_dir.iterdir()) == []


def test_timeline_adds_the_windows_to_the_clips_answer(grey, angry_then_sad, mostly_angry):
    with local(create_app(grey)) as client:
        record = upload(client, angry_then_sad, timeline=1).json()
        assert record == {**upload(client, angry_then_sad).json(), "windows": timeline_records(
            predict_timeline(angry_then_sad, grey))}
        assert [(w["start"], w["end"], w["emotion"]) for w in record["windows"]] == [
            (0.0, 1.0, "angry"), (0.5, 1.5, "happy"), (1.0, 2.0, "sad")]  # the middle window straddles the change
        # The headline is the clip's answer, as without timeline=1, even where most windows say otherwise.
        record = upload(client, mostly_angry, timeline=1).json()
        assert record["emotion"] == upload(client, mostly_angry).json()["emotion"] == "happy"
        assert [w["emotion"] for w in record["windows"]] == ["angry", "angry", "angry", "happy", "sad"]


def test_a_truncated_video_says_so_with_and_without_timeline(grey, truncated):
    with local(create_app(grey)) as client:
        plain, timeline = upload(client, truncated).json(), upload(client, truncated, timeline=1).json()
    assert plain["emotion"] == "angry" and plain["declared_seconds"] == 3.0 and 1.0 < plain["decoded_seconds"] < 2.4
    assert plain["warnings"] == [f"decoded {plain['decoded_seconds']:.1f} s of 3.0 s: the file is truncated"]
    assert {k: v for k, v in timeline.items() if k != "windows"} == plain
    assert timeline["windows"][-1]["end"] == pytest.approx(plain["decoded_seconds"], abs=0.05)


def test_no_face_is_said_for_the_clip_and_for_each_window(monkeypatch, mostly_angry, angry_then_sad):
    monkeypatch.setattr("emovid.faces.default_detectors", lambda: (FacesInDarkFrames(),))
    with local(create_app(Predictor(GreyReader(), FACE_SPEC))) as client:
        record = upload(client, mostly_angry, timeline=1).json()
        # A face counts when found in 2 frames of the 3: not in the windows from 1.5 s on, mostly sad's grey.
        assert [w["face_found"] for w in record["windows"]] == [True, True, True, False, False]
        assert record["face_found"] is True and record["warnings"] == ["no face found in 2 of 5 windows"]
        monkeypatch.setattr("emovid.faces.default_detectors", lambda: ())  # a detector that never finds one
        record = upload(client, angry_then_sad, timeline=1).json()
    assert record["face_found"] is False and {w["face_found"] for w in record["windows"]} == {False}
    assert record["warnings"] == ["no face found: the model saw the centre of the frame", "no face found in any window"]


def test_models_and_health(grey):
    with local(create_app(grey, limits=Limits(max_mb=1000 / 2**20, max_seconds=5, workers=1, queue=3))) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/v1/models").json() == {
            "model": "grey-reader", "classes": list(CLASSES), "frames": 3, "clip_seconds": 1.0, "crop": "center",
            "faces": ["main"], "limits": {"max_bytes": 1000, "max_seconds": 5, "workers": 1, "queue": 3},
            "live": False}
        assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_docs_work_offline(grey):
    with local(create_app(grey)) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert {"docs-assets/swagger-ui-bundle.js", "docs-assets/swagger-ui.css", "static/docs.js"} <= set(links)
        for link in links:  # every one on this server: none reaches a CDN
            if link.startswith("data:"):
                continue
            assert "//" not in link and not link.startswith("/"), link
            assert client.get(f"/{link}").status_code == 200, link
        assert client.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")


def test_content_is_decided_by_decoding_not_by_the_name(grey, happy, tmp_path):
    corrupt = tmp_path / "clip.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    app = create_app(grey)
    with local(app) as client:
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
    with local(create_app(grey)) as client:
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
    app = create_app(grey, limits=Limits(max_mb=(size - 1) / 2**20))
    with local(app) as client:
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
    with local(create_app(grey, limits=Limits(max_mb=size / 2**20))) as client:
        assert upload(client, angry_then_sad).status_code == 200


def test_too_long_videos_get_422(grey, angry_then_sad):
    with local(create_app(grey, limits=Limits(max_seconds=1.5))) as client:
        answer = upload(client, angry_then_sad)
    assert answer.status_code == 422
    assert answer.json() == {"file": "angry_then_sad.mp4",
                             "error": "the video lasts 2.0 s, longer than this server's limit of 1.5 s"}


def test_token_guards_the_api_but_not_the_page_or_health(grey, happy):
    with TestClient(create_app(grey, token="s3cret")) as client:  # with a token, any Host name is answered
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
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
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
    assert main(["serve", "--host", "0.0.0.0", "--port", "9001", "--max-mb", "2", "--workers", "3", "--upload-idle",
                 "2.5", "--allowed-host", "box.lan", "--cors", "https://app.example"]) == 0
    assert calls == [(grey, {"host": "0.0.0.0", "port": 9001, "token": "from-env", "allowed_hosts": ["box.lan"],
                             "cors": ["https://app.example"], "limits": Limits(max_mb=2, workers=3, upload_idle=2.5)})]


@pytest.mark.parametrize("args,message", [
    (["--port", "99999"], "--port must be 1-65535, got 99999"),
    (["--port", "0"], "--port must be 1-65535, got 0"),
    (["--max-mb", "-1"], "--max-mb must be a number > 0, got -1"),
    (["--max-seconds", "0"], "--max-seconds must be a number > 0, got 0"),
    (["--upload-idle", "0"], "--upload-idle must be a number > 0, got 0"),
    (["--workers", "0"], "--workers must be a number >= 1, got 0"),
    (["--queue", "-1"], "--queue must be a number >= 0, got -1"),
])
def test_cli_checks_its_arguments_before_anything_starts(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: pytest.fail("loaded a model before refusing"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the upload folder would go
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err == f"emovid serve: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


# --- browsers' origins and the security headers ------------------------------------------------------------


class CountingGrey(GreyReader):
    """GreyReader that counts the clips it was given: whether a refused request did any work."""

    def __init__(self) -> None:
        super().__init__()
        self.clips = 0

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        self.clips += len(clips)
        return super().forward(clips)


def test_without_a_token_only_the_loopback_names_are_answered(grey):
    with TestClient(create_app(grey, allowed_hosts=["box.lan"]), base_url="http://127.0.0.1") as client:
        for host in ("localhost:8000", "LOCALHOST", "127.0.0.1", "127.0.0.1:8000", "[::1]:8000", "box.lan:8000"):
            assert client.get("/v1/models", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example:80"):
            refused = client.get("/", headers={"host": host})  # DNS rebinding: the attacker's name, our address
            assert refused.status_code == 400, host
        assert refused.json() == {"error": "the Host header 'localhost.evil.example' does not name this server; "
                                           "start it with --allowed-host localhost.evil.example to accept that name"}


def test_cross_origin_posts_are_refused_unless_allowed(happy):
    model = CountingGrey()
    app = create_app(Predictor(model, SPEC))
    with local(app) as client:
        for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
            client.headers["origin"] = origin
            refused = upload(client, happy)
            assert refused.status_code == 403 and "--cors" in refused.json()["error"], origin
        assert model.clips == 0 and list(app.state.upload_dir.iterdir()) == []  # refused before any work
        client.headers["origin"] = "http://127.0.0.1"  # the page itself
        assert upload(client, happy).status_code == 200
        del client.headers["origin"]  # curl, scripts: no browser, no Origin
        assert upload(client, happy).status_code == 200
    with local(create_app(Predictor(model, SPEC), cors=["https://app.example"])) as client:
        preflight = client.options("/v1/predict", headers={"origin": "https://app.example",
                                                           "access-control-request-method": "POST"})
        assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
        client.headers["origin"] = "https://app.example"
        allowed = upload(client, happy)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
        client.headers["origin"] = "http://evil.example"
        assert upload(client, happy).status_code == 403
    with TestClient(create_app(Predictor(model, SPEC), token="s3cret")) as client:
        # With a token a page cannot send, the token is the guard: no Host or Origin check.
        client.headers.update({"origin": "http://evil.example", "authorization": "Bearer s3cret"})
        assert upload(client, happy).status_code == 200
        del client.headers["authorization"]
        assert upload(client, happy).status_code == 401


def test_every_answer_carries_the_security_headers(grey):
    with local(create_app(grey)) as client:
        answers = [client.get(path) for path in ("/", "/static/app.js", "/docs", "/v1/models", "/nothing")]
        answers.append(client.get("/", headers={"host": "evil.example"}))
        answers.append(client.post("/v1/predict", headers={"origin": "http://evil.example"}))
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 400, 403]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy, answer.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["referrer-policy"] == "no-referrer"


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
    app = create_app(Predictor(model, SPEC), limits=Limits(workers=1, queue=1))
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


def _partial_upload(url: str, source: str = "127.0.0.1", body: int = 200_000) -> socket.socket:
    """A socket from ``source`` that has sent headers promising 5 MB and the first ``body`` bytes of a video
    part, and then sends nothing."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    head = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n")
    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 5000000\r\n\r\n" + head + bytes(body))
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the HTTP answer on ``sock`` (the server closes the connection after it)."""
    sock.settimeout(15)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_slow_clients_cost_their_own_places_only(grey, happy):
    # One worker and one queue place: six slow uploads would have taken them all.
    app = create_app(grey, limits=Limits(workers=1, queue=1, max_uploads=8, uploads_per_client=4, upload_idle=30))
    places = app.state.places
    with live_server(app) as url, contextlib.ExitStack() as stack:
        slow = [stack.enter_context(_partial_upload(url, source, body=1000))
                for source in ["127.0.0.2"] * 4 + ["127.0.0.3", "127.0.0.4"]]
        wait_until(lambda: places.receiving == 6, "six slow uploads to be received")
        with _partial_upload(url, "127.0.0.2", body=10) as fifth:  # one address, past its share
            assert _answer(fifth) == (429, {"error": "this client is already sending 4 uploads; wait for one to "
                                                     "finish"})
        answer = upload(httpx.Client(base_url=url, timeout=30), happy)  # a normal client
        assert answer.status_code == 200 and answer.json()["emotion"] == "happy"
        assert places.receiving == 6 and app.state.pool.admitted == 0
        slow += [stack.enter_context(_partial_upload(url, source, body=1000)) for source in ("127.0.0.5", "127.0.0.6")]
        wait_until(lambda: places.receiving == 8, "eight slow uploads to be received")
        with _partial_upload(url, "127.0.0.7", body=10) as ninth:  # every receiving place taken
            status, body = _answer(ninth)
            assert status == 503 and "receiving as many uploads" in body["error"]
        for sock in slow:
            sock.close()
        wait_until(lambda: places.receiving == 0, "the slow uploads' places to be given back")
        wait_until(lambda: not any(app.state.upload_dir.iterdir()), "their temporary files to go")


@pytest.fixture
def served(grey, tmp_path) -> Iterator[tuple[str, Path]]:
    """A live server on the grey predictor, with uploads in a folder the test can watch; 1 s upload deadline."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    app = create_app(grey, upload_dir=folder, limits=Limits(upload_timeout=1.0))
    with live_server(app) as url:
        yield url, folder


def test_a_cancelled_upload_leaves_no_file(served):
    url, folder = served
    sock = _partial_upload(url)
    wait_until(lambda: any(folder.iterdir()), "the upload to reach its temporary file")
    sock.close()
    wait_until(lambda: not any(folder.iterdir()), "the temporary file to go")
    assert _answers(f"{url}/healthz")


@pytest.mark.parametrize("limits,message", [
    (Limits(upload_timeout=1.0), "the upload took longer than 1 s"),
    (Limits(upload_idle=0.5), "the upload sent nothing for 0.5 s"),
])
def test_a_stalled_upload_times_out_with_408_and_no_file(grey, tmp_path, limits, message):
    app = create_app(grey, upload_dir=tmp_path, limits=limits)
    with live_server(app) as url, _partial_upload(url) as sock:
        wait_until(lambda: any(tmp_path.iterdir()), "the upload to reach its temporary file")
        assert _answer(sock) == (408, {"error": message})
    wait_until(lambda: not any(tmp_path.iterdir()), "the temporary file to go")


# --- stopping a real `emovid serve` --------------------------------------------------------------------------

HELD_SERVER = """
import sys, threading
from pathlib import Path
import torch
from emovid import cli
from emovid.checkpoint import InferenceSpec
from emovid.predict import Predictor

class Held(torch.nn.Module):
    def forward(self, clips):
        Path(sys.argv[1]).touch()
        threading.Event().wait()  # a prediction that never ends

spec = InferenceSpec(model_args={"name": "held"}, class_names=("a", "b"), frames=3, resize={"mode": "naive",
                     "size": 16, "short_side": 16}, crop="center", mean=(0, 0, 0), std=(1, 1, 1), clip_seconds=1.0)
cli._load_predictor = lambda args: Predictor(Held(), spec)
sys.exit(cli.main(["serve", "--port", sys.argv[2]]))
"""


def test_a_second_ctrl_c_answers_503_and_leaves_nothing(happy, tmp_path):
    with socket.socket() as probe:  # a free port for the child (it binds within the second)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url, started, temp = f"http://127.0.0.1:{port}", tmp_path / "started", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(Path(emovid.__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", HELD_SERVER, str(started), str(port)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _answers(f"{url}/healthz") or child.poll() is not None, "the server to start", 120)
        assert child.poll() is None, child.stderr.read()
        (folder,) = temp.iterdir()  # its upload folder
        answers: list[httpx.Response] = []
        predicting = threading.Thread(target=lambda: answers.append(upload(httpx.Client(base_url=url, timeout=60),
                                                                           happy)))
        predicting.start()
        wait_until(started.exists, "the prediction to start")
        with _partial_upload(url, body=1000) as receiving:
            wait_until(lambda: len(list(folder.iterdir())) == 2, "the second upload to be received")
            child.send_signal(signal.SIGINT)  # the first: stop taking requests, let these two finish
            wait_until(lambda: not _answers(f"{url}/healthz"), "the server to stop listening")
            child.send_signal(signal.SIGINT)  # the second: stop now
            assert _answer(receiving) == (503, {"error": "the server is shutting down"})
        predicting.join(timeout=30)
        assert [(a.status_code, a.json()) for a in answers] == [(503, {"error": "the server is shutting down"})]
        assert child.wait(timeout=30) == 130
    finally:
        if child.poll() is None:
            child.kill()
    err = child.stderr.read()
    assert "Traceback" not in err and err.rstrip().endswith("emovid serve: interrupted"), err
    assert list(temp.iterdir()) == []  # the upload folder went with the server


# --- the page in a real browser ----------------------------------------------------------------------------


@contextlib.contextmanager
def browser_page(url: str, args: Sequence[str] = ()) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page, and the problems it meets: script errors, console errors (a CSP violation is one) and
    requests to anywhere but ``url``; ``args`` go to Chromium's command line."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(args))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith(("blob:", "data:"))
                    else problems.append(f"outside request: {r.url}"))
            yield page, problems
        finally:
            browser.close()


def holds(page, expression: str) -> None:
    """Wait until ``expression`` is true in ``page`` (Playwright's wait_for_function evaluates a string in the
    page, which its Content-Security-Policy forbids; evaluate does not)."""
    wait_until(lambda: page.evaluate(expression), expression, timeout=20)


def show(page, url: str, video: Path) -> None:
    """Open the page afresh and upload ``video`` through it; return once the result is shown."""
    page.goto(url)
    holds(page, "document.getElementById('model').textContent.includes('grey-reader')")
    page.set_input_files("#file", str(video))
    page.wait_for_selector("#result:not([hidden])", timeout=20_000)


def test_the_page_shows_the_result_the_chart_and_the_moment(served, angry_then_sad):
    url, _ = served
    with browser_page(url) as (page, problems):
        page.goto(url)
        holds(page, "document.getElementById('model').textContent.includes('grey-reader')")
        assert page.is_hidden("#token-form") and page.is_hidden("#result")  # no token needed, nothing yet
        show(page, url, angry_then_sad)
        assert page.text_content("#top-emotion") == "happy" and page.inner_text("#status") == ""  # the clip's
        assert page.locator("#bars li").count() == 3 and page.locator("#warnings li").count() == 0
        holds(page, "document.getElementById('chart').dataset.windows === '3'")
        assert page.get_attribute("#chart", "data-seconds") == "2.00"
        assert _coloured_pixels(page, "#d92d20") > 50 and _coloured_pixels(page, "#2e90fa") > 50  # angry, sad
        assert page.inner_text("#now") == "angry 100%"  # at 0 s
        holds(page, "document.getElementById('video').readyState >= 1")  # the browser can play it
        page.evaluate("document.getElementById('video').currentTime = 1.9")
        holds(page, "document.getElementById('now').textContent === 'sad 100%'")
        page.goto(f"{url}/docs")  # Swagger UI, from this server alone
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "emovid" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector("#operations-default-predict_v1_predict_post, .opblock-post", timeout=20_000)
        assert problems == []


def test_the_page_tells_the_whole_truth(faces_in_dark_frames, mostly_angry, happy, truncated, tmp_path):
    sad = grey_video(tmp_path / "sad.mp4", lambda t: "sad", 30)  # no face anywhere
    with live_server(create_app(faces_in_dark_frames)) as url, browser_page(url) as (page, problems):
        api = httpx.Client(base_url=url, timeout=30)
        # The headline is what /v1/predict says, though most windows say angry.
        show(page, url, mostly_angry)
        answer = upload(api, mostly_angry, timeline=1).json()
        assert page.text_content("#top-emotion") == upload(api, mostly_angry).json()["emotion"] == "happy"
        assert page.text_content("#top-probability") == f"{100 * answer['probability']:.0f}%"
        # The windows without a face are shaded, and the legend says what the shade means.
        assert page.get_attribute("#chart", "data-no-face") == "2" and _coloured_pixels(page, "#e4e7ec") > 2000
        assert "no face" in page.inner_text("#legend")
        assert page.locator("#warnings li").all_inner_texts() == ["no face found in 2 of 5 windows"]
        # One window: each class's probability drawn in its own colour.
        show(page, url, happy)
        assert page.get_attribute("#chart", "data-windows") == "1"
        assert _coloured_pixels(page, "#f79009") > 50  # happy at the top (it was one grey dot); at 0, sad over angry
        assert _coloured_pixels(page, "#2e90fa") > 50
        # A truncated file: said, and the missing stretch shaded up to the declared length.
        show(page, url, truncated)
        decoded = upload(api, truncated).json()["decoded_seconds"]
        warnings = page.locator("#warnings li").all_inner_texts()
        assert warnings == [f"decoded {decoded:.1f} s of 3.0 s: the file is truncated"]
        assert page.get_attribute("#chart", "data-seconds") == "3.00" and _coloured_pixels(page, "#fee4e2") > 2000
        # No face at all: said instead of an emotion, with the model's guess beside it.
        show(page, url, sad)
        assert page.text_content("#top-emotion") == "No face found" and page.text_content("#top-probability") == ""
        assert page.inner_text("#guess") == "The model's guess from the centre of the frame: sad 100%"
        assert page.get_attribute("#chart", "data-no-face") == "1"
        assert problems == []


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
