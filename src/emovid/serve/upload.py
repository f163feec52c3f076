"""Uploads: a multipart body streamed into a server-named temporary file, within a size limit, a deadline and an
idle timeout, and the places that bound how many are received at once.

The client's file name is kept for display only (the ``file`` of the answer); it never reaches the filesystem.
Whether the bytes are a video is for the decoder to say, not the name or the declared content type.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

FIELD = "file"  # the form field that carries the video
FRAMING_BYTES = 64 * 1024  # room in a body for the multipart boundaries, part headers and small extra fields
MAX_NAME = 200  # characters of the client's file name kept for display


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: object) -> HTTPException:
    """An HTTP error whose JSON body is ``{**extra, "error": message}`` (the CLI's records name the file first)."""
    return HTTPException(status, {**extra, "error": message}, headers=headers)


class UploadPlaces:
    """At most ``total`` uploads received at once, and ``per_client`` of them from one client address.

    Only touched on the event loop's thread, so no lock.
    """

    def __init__(self, total: int, per_client: int, retry_after: float) -> None:
        self.total = total
        self.per_client = per_client
        self.retry_after = max(1, math.ceil(retry_after))
        self.by_client: Counter[str] = Counter()

    @property
    def receiving(self) -> int:
        return sum(self.by_client.values())

    @contextlib.contextmanager
    def place(self, client: str) -> Iterator[None]:
        """Hold a place while receiving; HTTP 429 over the client's share, 503 when every place is taken."""
        if self.by_client[client] >= self.per_client:
            raise error(429, f"this client is already sending {self.per_client} uploads; wait for one to finish",
                        headers={"Retry-After": str(self.retry_after)})
        if self.receiving >= self.total:
            raise error(503, "the server is receiving as many uploads as it can; try again later",
                        headers={"Retry-After": str(self.retry_after)})
        self.by_client[client] += 1
        try:
            yield
        finally:
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]


@contextlib.contextmanager
def temporary_upload(folder: Path) -> Iterator[Path]:
    """A new empty file with a server-chosen name in ``folder``, removed on leaving, whatever happened."""
    fd, name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".bin")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def display_name(raw: bytes) -> str:
    """The client's file name, reduced to something safe to show: no folders, no control characters."""
    text = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if c.isprintable()).strip()
    return text[:MAX_NAME] or "upload"


class _FormParts:
    """python-multipart callbacks: the headers of each part, and the bytes of the first ``FIELD`` part."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self.in_file = False
        self.found = False  # the file part has begun
        self.complete = False  # ... and ended
        self.filename = b""
        self.pending = bytearray()  # file bytes parsed but not yet written

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = not self.found and options.get(b"name") == FIELD.encode()
        if self.in_file:
            self.found = True
            self.filename = options.get(b"filename", b"")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending += data[start:end]

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.complete = True


async def receive_upload(request: Request, out: BinaryIO, *, max_bytes: int, timeout: float, idle: float) -> str:
    """Stream the request's multipart body, writing its ``file`` part to ``out``; return the client's file name.

    Raises:
        HTTPException: 413 over ``max_bytes``; 408 past ``timeout`` seconds in all, or ``idle`` seconds without a
            byte; 400 for a malformed body or a client that went away; 415 when the body is not multipart; 422
            without a ``file`` part.
    """
    limit = max_bytes + FRAMING_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refuse before reading a byte
        raise _too_large(max_bytes)
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise error(415, f"send the video as multipart/form-data in a field named {FIELD!r}")
    parts = _FormParts()
    parser = MultipartParser(boundary, {name: getattr(parts, name) for name in (  # type: ignore[arg-type]
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
        "on_part_data", "on_part_end")})
    received = written = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in _chunks(request, idle):
                received += len(chunk)
                if received > limit:  # chunked bodies declare no length: count them
                    raise _too_large(max_bytes)
                parser.write(chunk)
                if parts.pending:
                    written += len(parts.pending)
                    if written > max_bytes:
                        raise _too_large(max_bytes)
                    # A write of at most one chunk (~64 KiB) lands in the page cache: cheaper than a thread hop.
                    out.write(parts.pending)
                    parts.pending.clear()
        parser.finalize()
    except _Idle:
        raise error(408, f"the upload sent nothing for {idle:g} s") from None
    except TimeoutError:
        raise error(408, f"the upload took longer than {timeout:g} s") from None
    except ClientDisconnect:
        raise error(400, "the client closed the connection during the upload") from None
    except MultipartParseError as exc:
        raise error(400, f"malformed multipart body ({exc})") from None
    if not parts.complete:
        raise error(422, f"no complete file in the form field {FIELD!r}")
    return display_name(parts.filename)


class _Idle(Exception):
    """The client sent nothing for its idle timeout."""


async def _chunks(request: Request, idle: float) -> AsyncIterator[bytes]:
    """The request body's chunks; :class:`_Idle` when the next one takes more than ``idle`` seconds."""
    stream = request.stream()
    while True:
        with anyio.move_on_after(idle) as wait:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
        if wait.cancelled_caught:
            raise _Idle
        yield chunk


def _too_large(max_bytes: int) -> HTTPException:
    return error(413, f"the upload is larger than this server's limit of {max_bytes / 2**20:g} MiB")
