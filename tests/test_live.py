"""Live streams: the per-frame scorer against predict's path, the /v1/live WebSocket (checks, limits, dropping stale
frames), `emovid live` on a file, and the page's camera in Chromium fed by a clip."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from torch import nn

import emovid
import emovid.serve.live
from emovid.analysis import frame_analysis
from emovid.cli import main
from emovid.data.video import open_video
from emovid.live import LiveScorer, live_answers
from emovid.predict import Predictor, predict_records
from emovid.serve import Limits
from emovid.serve.app import create_app
from emovid.serve.live import RateCap, decode_frame, jpeg_size
from test_score import CLASSES, GREYS, GreyReader
from test_serve import SPEC, FacesInDarkFrames, browser_page, grey_video, holds, live_server, local, wait_until


class GreyFrames(nn.Module):
    """GreyReader frame by frame: each frame's logits say which class's grey its mean brightness is nearest."""

    frame_pooling = "logits"

    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        return GreyReader()(frames[:, None])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.frame_scores(clips.flatten(0, 1)).unflatten(0, clips.shape[:2]).mean(dim=1)


@pytest.fixture
def grey_frames() -> Predictor:
    """A frame-level model on centre crops whose answers we know, with no weights."""
    return Predictor(GreyFrames(), SPEC)


@pytest.fixture
def grey_faces(monkeypatch) -> Predictor:
    """The same on face crops, with a face wherever the frame is darker than sad's grey."""
    for module in ("emovid.faces", "emovid.analysis", "emovid.live"):
        monkeypatch.setattr(f"{module}.default_detectors", lambda: (FacesInDarkFrames(),))
    return Predictor(GreyFrames(), replace(SPEC, crop="face"))


@pytest.fixture(scope="module")
def angry_then_sad(tmp_path_factory) -> Path:
    """4 s: dark (angry, a face) for the first 1.5 s, light (sad, no face) after."""
    return grey_video(tmp_path_factory.mktemp("live") / "angry_then_sad.mp4", lambda t: "angry" if t < 1.5 else "sad",
                      120)


@pytest.fixture(scope="module")
def happy(tmp_path_factory) -> Path:
    return grey_video(tmp_path_factory.mktemp("live") / "happy.mp4", lambda t: "happy", 30)


def jpeg(grey: int, width: int = 64, height: int = 48) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), grey, np.uint8))
    assert ok
    return data.tobytes()


# --- the scorer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("predictor", ["grey_frames", "grey_faces"])
def test_the_scorer_takes_predicts_per_frame_path(request, predictor, angry_then_sad):
    """Fed the frames predict --timeline samples, at their times, each frame's probabilities are the analysis's."""
    predictor = request.getfixturevalue(predictor)
    analysis = frame_analysis(angry_then_sad, predictor, detect_every=1)
    frames = analysis.frames
    assert frames is not None
    with open_video(angry_then_sad) as reader:
        full = reader.frames_at(frames.indices.tolist())  # at full size: the scorer brings them to the working size
    scorer = LiveScorer(predictor, detect_every=1)
    answers = [scorer.push(frame, float(t)) for frame, t in zip(full, frames.times, strict=True)]
    np.testing.assert_allclose([a.probabilities for a in answers], frames.probabilities, atol=1e-5)
    if predictor.spec.crop == "face":
        assert [a.face_found for a in answers] == frames.face_found.tolist()
        assert answers[0].box is not None and answers[-1].box is None
    # The moment's emotion pools the frames of the last 1.5 s as FrameResults pools a window.
    last = [i for i, t in enumerate(frames.times) if t > frames.times[-1] - 1.5]
    np.testing.assert_allclose(answers[-1].window, frames.pool(np.array(last)), atol=1e-5)
    assert answers[-1].window_frames == len(last)
    assert CLASSES[int(answers[0].window.argmax())] == "angry" and CLASSES[int(answers[-1].window.argmax())] == "sad"


def test_the_track_carries_the_face_between_detections(grey_faces, angry_then_sad):
    """Detecting every third frame, the frames between are cut where the last detection found the face."""
    seen: list[int] = []

    class Counting(FacesInDarkFrames):
        def detect(self, frames):
            seen.append(len(frames))
            return super().detect(frames)

    scorer = LiveScorer(grey_faces, detect_every=3, detectors=[Counting()])
    with open_video(angry_then_sad) as reader:
        answers = [scorer.push(frame, i / 30) for i, frame in reader.stream(range(0, 40, 4))]
    assert len(seen) == 4  # frames 0, 3, 6, 9 of the 10 pushed
    assert all(a.face_found for a in answers) and all(a.box == answers[0].box for a in answers)
    # Frames of another size (a camera that changed resolution): the boxes of the old size are forgotten, and the
    # detector looks at once.
    wider = np.zeros((48, 96, 3), np.uint8)
    answer = scorer.push(wider, 2.0)
    assert len(seen) == 5 and answer.face_found and answer.box == (16 / 96, 8 / 48, 48 / 96, 40 / 48)


def test_the_scorer_refuses_clip_level_models_and_times_that_go_back(grey_frames):
    with pytest.raises(ValueError, match="clip-level model: live needs a frame-level one"):
        LiveScorer(Predictor(GreyReader(), SPEC))
    scorer = LiveScorer(grey_frames)
    scorer.push(np.zeros((48, 64, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="frame times must increase"):
        scorer.push(np.zeros((48, 64, 3), np.uint8), 1.0)


def test_a_file_as_a_stream_gives_an_answer_a_second(grey_faces, angry_then_sad):
    threads: list[int] = []

    class Counting(GreyFrames):
        def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
            threads.append(torch.get_num_threads())
            return super().frame_scores(frames)

    before = torch.get_num_threads()
    answers = list(live_answers(angry_then_sad, replace(grey_faces, model=Counting()), every=1.0))
    assert set(threads) == {1} and torch.get_num_threads() == before  # one torch thread while it reads
    assert [round(a.time) for a in answers] == [0, 1, 2, 3]
    # At 2 s the last 1.5 s hold angry and sad frames: their mean logits are nearest happy, between the two.
    assert [CLASSES[int(a.window.argmax())] for a in answers] == ["angry", "angry", "happy", "sad"]
    assert [a.face_found for a in answers] == [True, True, False, False]


# --- `emovid live` -----------------------------------------------------------------------------------------------


def test_cli_prints_a_line_a_second_or_json_lines(monkeypatch, capsys, grey_faces, angry_then_sad):
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: grey_faces)
    assert main(["live", str(angry_then_sad)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["     time  emotion     probability  face",
                     "    0.0 s  angry             1.000  face",
                     "    1.0 s  angry             1.000  face",
                     "    2.0 s  happy             1.000  no face in view",
                     "    3.0 s  sad               1.000  no face in view"]
    assert main(["live", str(angry_then_sad), "--json", "--window", "0.5"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["time"], r["emotion"], r["face_found"], r["window"]["seconds"]) for r in records] == [
        (0.0, "angry", True, 0.5), (1.0, "angry", True, 0.5), (2.0, "sad", False, 0.5), (3.0, "sad", False, 0.5)]
    assert records[0]["face_box"] == [0.25, 0.1667, 0.75, 0.8333]


def test_ctrl_c_ends_the_cli_cleanly_with_what_was_printed(monkeypatch, capsys, angry_then_sad):
    class Interrupted(GreyFrames):
        calls = 0

        def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 8:  # the frame at 1.4 s, after the lines of 0 and 1 s
                raise KeyboardInterrupt
            return super().frame_scores(frames)

    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: Predictor(Interrupted(), SPEC))
    assert main(["live", str(angry_then_sad)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3 and captured.err == ""


def test_cli_says_what_is_wrong_in_one_line(monkeypatch, capsys, grey_frames, tmp_path):
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: grey_frames)
    assert main(["live", str(tmp_path / "nothing.mp4")]) == 2
    missing = tmp_path / "nothing.mp4"
    assert capsys.readouterr().err == f"emovid live: error: {missing}: no such file, camera or stream URL\n"
    monkeypatch.setattr("emovid.cli._load_predictor", lambda args: Predictor(GreyReader(), SPEC))
    assert main(["live", str(tmp_path)]) == 2
    assert "clip-level model: live needs a frame-level one" in capsys.readouterr().err


# --- frames over the WebSocket ----------------------------------------------------------------------------------


def test_frames_are_jpeg_images_checked_before_decoding():
    data = jpeg(GREYS["happy"], 64, 48)
    assert jpeg_size(data) == (64, 48) and decode_frame(data).shape == (48, 64, 3)
    with pytest.raises(ValueError, match="a frame must be a JPEG image"):
        decode_frame(b"\x89PNG\r\n" + data)
    huge = data.replace((48).to_bytes(2, "big") + (64).to_bytes(2, "big"), (9000).to_bytes(2, "big") * 2, 1)
    with pytest.raises(ValueError, match="a frame of 9000x9000 pixels: at most 4096 on a side"):
        decode_frame(huge)


def test_the_rate_cap_lets_a_second_s_worth_through_then_its_rate(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("emovid.serve.live.time.monotonic", lambda: clock[0])
    cap = RateCap(5)
    assert [cap.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    clock[0] += 0.4  # two frames' worth
    assert [cap.allow() for _ in range(3)] == [True, True, False]


def test_a_frame_gets_its_emotion_and_the_window_s(grey_frames):
    app = create_app(grey_frames)
    with local(app).websocket_connect(WS, subprotocols=["emovid.live"]) as ws:
        assert ws.accepted_subprotocol == "emovid.live"
        ready = ws.receive_json()
        assert ready == {"type": "ready", "classes": list(CLASSES), "window": 1.5, "max_fps": 15.0,
                         "max_bytes": 512 * 1024, "idle": 10.0}
        ws.send_bytes(jpeg(GREYS["happy"]))
        answer = ws.receive_json()
        assert (answer["type"], answer["frame"], answer["dropped"], answer["emotion"]) == ("answer", 1, 0, "happy")
        assert answer["face_found"] is None and answer["window"] == {"seconds": 1.5, "frames": 1, "face_frames": 0}
        assert answer["frame"] == 1 and set(answer["probabilities"]) == set(CLASSES)


def test_the_socket_refuses_a_foreign_origin_and_a_foreign_host(grey_frames):
    client = local(create_app(grey_frames))
    with pytest.raises(WebSocketDenialResponse) as refused:
        client.websocket_connect(WS, headers={"Origin": "https://evil.example"}).__enter__()
    assert refused.value.status_code == 403 and "cross-origin request from 'https://evil.example'" in \
        refused.value.json()["error"]
    with pytest.raises(WebSocketDenialResponse) as refused:
        client.websocket_connect(WS, headers={"Host": "rebound.example"}).__enter__()
    assert refused.value.status_code == 400
    with client.websocket_connect(WS, headers={"Origin": "http://127.0.0.1"}) as ws:  # the page's own
        assert ws.receive_json()["type"] == "ready"


def test_the_socket_needs_the_token_as_a_header_or_a_subprotocol(grey_frames):
    client = local(create_app(grey_frames, token="s3cret/+="))
    for offer in ({}, {"subprotocols": ["emovid.live"]}, {"headers": {"Authorization": "Bearer wrong"}},
                  {"subprotocols": ["emovid.live", "emovid.token." + _b64("wrong")]},
                  {"subprotocols": ["emovid.live", "emovid.token.%%%"]}):
        with pytest.raises(WebSocketDenialResponse) as refused:
            client.websocket_connect(WS, **offer).__enter__()
        assert (refused.value.status_code, refused.value.json()) == (401, {"error": "missing or wrong API token"})
    for offer in ({"headers": {"Authorization": "Bearer s3cret/+="}},
                  {"subprotocols": ["emovid.live", "emovid.token." + _b64("s3cret/+=")]}):
        with client.websocket_connect(WS, **offer) as ws:
            assert ws.receive_json()["type"] == "ready"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_the_socket_closes_on_a_frame_too_large_or_not_jpeg(grey_frames):
    client = local(create_app(grey_frames, limits=Limits(live_max_kb=1)))
    for message, code, reason in [(jpeg(0, 640, 480) + bytes(2000), 1009, "a frame of"),
                                  (b"GIF89a", 4422, "frame 1: a frame must be a JPEG image")]:
        with client.websocket_connect(WS) as ws:
            ws.receive_json()
            ws.send_bytes(message)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == code and closed.value.reason.startswith(reason)
    with client.websocket_connect(WS) as ws:
        ws.receive_json()
        ws.send_text("hello")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4422


def test_an_idle_connection_is_closed(grey_frames):
    with local(create_app(grey_frames, limits=Limits(live_idle=0.2))).websocket_connect(WS) as ws:
        ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert (closed.value.code, closed.value.reason) == (4408, "no frame for 0.2 s")


def test_live_connections_are_limited_and_given_back(grey_frames):
    app = create_app(grey_frames, limits=Limits(live_connections=1))
    client = local(app)
    with client.websocket_connect(WS) as ws:
        ws.receive_json()
        with pytest.raises(WebSocketDenialResponse) as refused:
            client.websocket_connect(WS).__enter__()
        assert refused.value.status_code == 503 and "1 live connections at once" in refused.value.json()["error"]
    wait_until(lambda: app.state.live_places.open == 0, "the place to be given back")
    with client.websocket_connect(WS) as ws:
        assert ws.receive_json()["type"] == "ready"


def test_a_clip_level_model_is_refused_for_live_and_says_so_in_models():
    client = local(create_app(Predictor(GreyReader(), SPEC)))
    assert client.get("/v1/models").json()["live"] is False
    with pytest.raises(WebSocketDenialResponse) as refused:
        client.websocket_connect(WS).__enter__()
    assert refused.value.status_code == 422


class HeldFrames(GreyFrames):
    """GreyFrames that waits, frame by frame, until the test lets it score."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.go = threading.Semaphore(0)

    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        self.entered.release()
        assert self.go.acquire(timeout=30)
        return super().frame_scores(frames)


def test_a_client_faster_than_the_model_gets_its_newest_frame_scored_next(monkeypatch):
    """While one frame is scored, the frames that arrive are dropped but the newest: its answer comes next, so the
    answer to the last frame sent follows at most one answer later, however many were sent."""
    received: list[int] = []
    put = emovid.serve.live.Newest.put
    monkeypatch.setattr(emovid.serve.live.Newest, "put", lambda self, frame: (put(self, frame),
                                                                               received.append(frame.number)))
    model = HeldFrames()
    app = create_app(Predictor(model, SPEC), limits=Limits(live_fps=1000))
    from websockets.sync.client import connect

    with live_server(app) as url, connect(url.replace("http", "ws") + "/v1/live") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        sent = 0
        for burst in (8, 20):  # two rounds: the drops do not pile up into a lag
            ws.send(jpeg(GREYS["happy"]))
            sent += 1
            assert model.entered.acquire(timeout=10)  # the first of the round is being scored
            for _ in range(burst):
                ws.send(jpeg(GREYS["sad"]))
                sent += 1
            wait_until(lambda last=sent: received[-1:] == [last], "the server to receive every frame sent")
            model.go.release()
            first = json.loads(ws.recv(timeout=10))
            assert (first["frame"], first["emotion"]) == (sent - burst, "happy")
            assert model.entered.acquire(timeout=10)
            model.go.release()
            newest = json.loads(ws.recv(timeout=10))
            assert (newest["frame"], newest["dropped"], newest["emotion"]) == (sent, burst - 1, "sad")


LIVE_SERVER = """
import sys
import torch
from emovid import cli
from emovid.checkpoint import InferenceSpec
from emovid.predict import Predictor

class Frames(torch.nn.Module):
    frame_pooling = "logits"
    def frame_scores(self, frames):
        return torch.zeros(len(frames), 2)

spec = InferenceSpec(model_args={"name": "frames"}, class_names=("a", "b"), frames=3, resize={"mode": "naive",
                     "size": 16, "short_side": 16}, crop="center", mean=(0, 0, 0), std=(1, 1, 1), clip_seconds=1.0)
cli._load_predictor = lambda args: Predictor(Frames(), spec)
sys.exit(cli.main(["serve", "--port", sys.argv[1]]))
"""


def test_ctrl_c_ends_live_connections_and_the_server(tmp_path):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with socket.socket() as probe:  # a free port for the child (it binds within the second)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(emovid.__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", LIVE_SERVER, str(port)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        url = f"ws://127.0.0.1:{port}/v1/live"
        wait_until(lambda: _accepts(port) or child.poll() is not None, "the server to start", 120)
        with connect(url) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(jpeg(128))
            assert json.loads(ws.recv(timeout=10))["frame"] == 1
            child.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert "Traceback" not in child.stderr.read()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the page's camera in Chromium --------------------------------------------------------------------------------


def y4m(video: Path, out: Path) -> Path:
    """``video`` as a .y4m file, which Chromium's fake camera plays in a loop."""
    with av.open(str(video)) as source, av.open(str(out), "w", format="yuv4mpegpipe") as target:
        stream = target.add_stream("rawvideo", rate=30)
        stream.width, stream.height = source.streams.video[0].width, source.streams.video[0].height
        stream.pix_fmt = "yuv420p"
        for frame in source.decode(video=0):
            target.mux(stream.encode(frame.reformat(format="yuv420p")))
        target.mux(stream.encode())
    return out


@contextlib.contextmanager
def camera_page(url: str, clip: Path) -> Iterator[tuple[object, list[str]]]:
    """The page in Chromium, whose camera plays ``clip``."""
    with browser_page(url, args=["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                 f"--use-file-for-fake-video-capture={clip}"]) as (page, problems):
        page.goto(url)
        page.wait_for_selector("#live-start-row:not([hidden])", timeout=20_000)
        yield page, problems


WS = "ws://127.0.0.1/v1/live"  # the TestClient names its host from the URL here, not from its base_url
LABEL = "document.getElementById('live-emotion').textContent"


def test_the_page_shows_the_camera_s_emotion_and_keeps_the_chart(grey_faces, happy, angry_then_sad, tmp_path):
    (expected,) = predict_records([happy], grey_faces)
    camera = y4m(happy, tmp_path / "happy.y4m")
    with live_server(create_app(grey_faces)) as url, camera_page(url, camera) as (page, problems):
        page.click("#live-start")
        holds(page, f"{LABEL} !== ''")
        assert page.text_content("#live-emotion") == expected["emotion"] == "happy"
        assert page.get_attribute("#live-overlay", "data-label").startswith("happy ")
        assert page.locator("#live-bars li").count() == 3
        holds(page, "Number(document.getElementById('live-chart').dataset.points) >= 3")
        page.click("#live-stop")
        holds(page, "document.getElementById('live').dataset.stopped === 'true'")
        points = page.get_attribute("#live-chart", "data-points")
        assert int(points) >= 3 and page.evaluate("document.getElementById('live-video').srcObject") is None
        assert page.text_content("#live-status").startswith("Stopped after")
        assert problems == []
    light = y4m(grey_video(tmp_path / "sad.mp4", lambda t: "sad", 30), tmp_path / "sad.y4m")
    with live_server(create_app(grey_faces)) as url, camera_page(url, light) as (page, problems):
        page.click("#live-start")
        holds(page, f"{LABEL} === 'No face in view'")
        assert page.get_attribute("#live-overlay", "data-label") == "No face in view"
        assert problems == []


def test_the_page_sends_fewer_frames_when_the_server_drops_them(monkeypatch, happy, tmp_path):
    received: list[int] = []
    put = emovid.serve.live.Newest.put
    monkeypatch.setattr(emovid.serve.live.Newest, "put", lambda self, frame: (put(self, frame),
                                                                               received.append(frame.number)))
    release = threading.Event()

    class Slow(GreyFrames):
        def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
            assert release.wait(timeout=30)
            return super().frame_scores(frames)

    app = create_app(Predictor(Slow(), SPEC))
    with live_server(app) as url, camera_page(url, y4m(happy, tmp_path / "happy.y4m")) as (page, problems):
        page.click("#live-start")
        # The first frame is held in the model; the second waits; the third takes its place: one dropped.
        wait_until(lambda: len(received) >= 3, "the page to send three frames")
        release.set()
        holds(page, "Number(document.getElementById('live').dataset.rate) < 5")
        dropped = re.search(r"(\d+) dropped by the server", page.text_content("#live-status"))
        assert page.text_content("#live-emotion") == "happy" and dropped and int(dropped[1]) >= 1
        assert problems == []


def test_the_page_with_a_token_sends_it(grey_frames, happy, tmp_path):
    camera = y4m(happy, tmp_path / "happy.y4m")
    with live_server(create_app(grey_frames, token="t0ken")) as url, camera_page(url, camera) as (page, problems):
        page.fill("#token", "t0ken")
        page.click("#token-form button")
        holds(page, "document.getElementById('model').textContent.includes('grey-reader')")
        page.click("#live-start")
        holds(page, f"{LABEL} === 'happy'")
        assert [p for p in problems if "status of 401" not in p] == []  # the page's loads before it had the token


def test_the_page_agrees_with_predict_on_a_real_face(user_weights, tmp_path):
    """The zero-shot default on a real face (tests/data/astronaut.jpg): the page's label is predict's."""
    from emovid.predictor import load_predictor
    from emovid.weights.files import FACEAPI_WEIGHTS, FACEX_WEIGHTS, FER_WEIGHTS, MTCNN_WEIGHTS
    from test_analysis import astronaut_video

    user_weights(FER_WEIGHTS, *FACEAPI_WEIGHTS, FACEX_WEIGHTS, *MTCNN_WEIGHTS)
    zero_shot = load_predictor()
    clip = astronaut_video(tmp_path / "astronaut.mp4", num_frames=36)
    (expected,) = predict_records([clip], zero_shot)
    with live_server(create_app(zero_shot)) as url, camera_page(url, y4m(clip, tmp_path / "a.y4m")) as (page, problems):
        page.click("#live-start")
        holds(page, "Number(document.getElementById('live').dataset.answers) >= 8")  # a full window's worth
        assert page.text_content("#live-emotion") == expected["emotion"]
        assert problems == []
