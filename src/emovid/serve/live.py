"""The live WebSocket ``/v1/live``: JPEG frames in, the emotion of the newest frame out.

A client sends each frame as one binary message (a JPEG image) at the rate it chooses. The server scores one frame
at a time per connection, always the newest: a frame that arrives while another is scored waits in a single place,
and the next one to arrive takes that place (the one it replaces is dropped, never decoded). So a client faster
than the model gets fewer answers, each about its latest frame, never a growing queue; every answer says how many
frames were dropped since the previous one, and the page lowers its rate on that. Frames are decoded in memory
and never written anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import cv2
import numpy as np
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from emovid.live import LiveScorer
from emovid.serve.limits import Limits

PROTOCOL = "emovid.live"  # the subprotocol the page asks for, and the server answers with
TOKEN_PROTOCOL = "emovid.token."  # + the API token in unpadded base64url: how a browser sends it (see docs/live.md)
MAX_SIDE = 4096  # pixels a frame may have on its longer side: a small JPEG can declare a huge image
IDLE = 4408  # close codes of our own (4000-4999), after the HTTP statuses they mirror
BAD_FRAME = 4422
TOO_LARGE = 1009  # the standard "message too big"


class FrameError(ValueError):
    """A frame that is not a JPEG image the server takes; the message is one line."""


def offered_token(websocket: WebSocket) -> str:
    """The token a client offers: ``Authorization: Bearer TOKEN`` (any client but a browser), or the subprotocol
    ``emovid.token.<base64url of TOKEN>`` (a browser's WebSocket cannot send headers); "" without one."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for offered in websocket.scope.get("subprotocols", []):
        if offered.startswith(TOKEN_PROTOCOL):
            encoded = offered.removeprefix(TOKEN_PROTOCOL)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ""
    return ""


def token_matches(websocket: WebSocket, token: str | None) -> bool:
    return token is None or hmac.compare_digest(offered_token(websocket).encode(), token.encode())


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, read without decoding; None when there is none."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big")
        at += 2 + length
    return None


def decode_frame(data: bytes) -> np.ndarray:
    """A JPEG image to uint8 RGB (H, W, 3), in memory; FrameError when it is not one or is larger than
    :data:`MAX_SIDE` (checked from its header, before decoding)."""
    size = jpeg_size(data)
    if size is None:
        raise FrameError("a frame must be a JPEG image")
    if max(size) > MAX_SIDE or min(size) < 1:
        raise FrameError(f"a frame of {size[0]}x{size[1]} pixels: at most {MAX_SIDE} on a side")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameError("a frame is not a readable JPEG image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class LivePlaces:
    """At most ``total`` live connections at once, and as many threads scoring their frames (one each).

    A connection scores on a thread of its own rather than on the upload workers'
    (:class:`~emovid.serve.jobs.InferencePool`): an upload holds its worker for seconds, a frame needs one now, or
    it is stale. Only touched on the event loop's thread, so no lock.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.open = 0
        self._threads: anyio.CapacityLimiter | None = None

    @property
    def threads(self) -> anyio.CapacityLimiter:
        """Bounds the threads scoring frames (made on first use: it needs the running event loop)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.total)
        return self._threads

    def full(self) -> bool:
        return self.open >= self.total


@dataclass
class _Frame:
    number: int  # 1 for the connection's first frame
    time: float  # seconds since the connection opened, when it arrived
    data: bytes


class Newest:
    """The newest frame waiting to be scored: one place, which a newer frame takes (the older is dropped)."""

    def __init__(self) -> None:
        self.frame: _Frame | None = None
        self.dropped = 0  # since the last frame taken
        self._ready = asyncio.Event()

    def put(self, frame: _Frame) -> None:
        if self.frame is not None:
            self.dropped += 1
        self.frame = frame
        self._ready.set()

    def drop(self) -> None:
        """Count a frame dropped unread (over the rate cap)."""
        self.dropped += 1

    async def take(self) -> tuple[_Frame, int]:
        """Wait for a frame; it and the frames dropped since the last one taken."""
        await self._ready.wait()
        self._ready.clear()
        frame, dropped = self.frame, self.dropped
        assert frame is not None
        self.frame, self.dropped = None, 0
        return frame, dropped


class RateCap:
    """A token bucket: ``rate`` frames a second, and bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = max(1.0, rate)
        self._at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


async def live_session(websocket: WebSocket, scorer: LiveScorer, limits: Limits,
                       limiter: anyio.CapacityLimiter) -> None:
    """Serve one accepted connection until the client closes it, goes idle, or breaks a rule.

    First a ``ready`` message (the classes, the window, the limits); then, per frame scored, an ``answer``: the frame's
    number, ``dropped`` (frames dropped since the previous answer), the :meth:`~emovid.live.LiveAnswer.record`, and
    ``seconds`` spent scoring it. The model runs on a thread, ``limiter`` bounding them across connections.
    """
    names = scorer.predictor.spec.class_names
    await websocket.send_json({"type": "ready", "classes": list(names), "window": scorer.window,
                               "max_fps": limits.live_fps, "max_bytes": limits.live_max_bytes,
                               "idle": limits.live_idle})
    newest = Newest()
    start = time.monotonic()

    def score(frame: _Frame) -> dict:
        began = time.perf_counter()
        answer = scorer.push(decode_frame(frame.data), frame.time)
        return {**answer.record(names), "seconds": round(time.perf_counter() - began, 4)}

    async def receive() -> tuple[int, str] | None:
        cap = RateCap(limits.live_fps)
        count = 0
        while True:
            with anyio.move_on_after(limits.live_idle) as idle:
                message = await websocket.receive()
            if idle.cancelled_caught:
                return IDLE, f"no frame for {limits.live_idle:g} s"
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes")
            if data is None:
                return BAD_FRAME, "send each frame as a binary message holding a JPEG image"
            if len(data) > limits.live_max_bytes:
                return TOO_LARGE, f"a frame of {len(data)} bytes: at most {limits.live_max_bytes}"
            count += 1
            if cap.allow():
                newest.put(_Frame(count, time.monotonic() - start, data))
            else:
                newest.drop()

    async def answer() -> tuple[int, str] | None:
        while True:
            frame, dropped = await newest.take()
            try:
                record = await anyio.to_thread.run_sync(score, frame, limiter=limiter)
            except FrameError as exc:
                return BAD_FRAME, f"frame {frame.number}: {exc}"
            try:
                await websocket.send_json({"type": "answer", "frame": frame.number, "dropped": dropped, **record})
            except WebSocketDisconnect:
                return None

    closing: list[tuple[int, str]] = []

    async def until_done(work: Callable[[], Awaitable[tuple[int, str] | None]], scope: anyio.CancelScope) -> None:
        """Run one side; when it ends, for whatever reason, end the other."""
        reason = await work()
        if reason is not None:
            closing.append(reason)
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(until_done, receive, group.cancel_scope)
        group.start_soon(until_done, answer, group.cancel_scope)
    if closing:
        await websocket.close(*closing[0])


def denial(status: int, message: str) -> JSONResponse:
    """The HTTP answer that refuses a WebSocket handshake, one line of JSON like every other error."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status, headers=headers)
