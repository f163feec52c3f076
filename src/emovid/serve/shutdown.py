"""Stopping: the first Ctrl-C lets requests in flight finish, the second answers them 503 and stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Iterator
from types import FrameType
from typing import TypeVar

import anyio
import uvicorn

from emovid.serve.upload import error

T = TypeVar("T")
GRACE = 5.0  # seconds requests get to send their 503 after a second Ctrl-C, before the server stops regardless


class Cancellation:
    """The requests in flight, each in a cancel scope, so that one call ends them all with HTTP 503.

    Only touched on the event loop's thread.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._scopes: set[anyio.CancelScope] = set()

    async def run(self, work: Awaitable[T]) -> T:
        """Await a request's work; on :meth:`cancel`, HTTP 503 instead (and its ``with`` blocks unwind)."""
        if self.cancelled:
            raise error(503, "the server is shutting down")
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                return await work
            finally:
                self._scopes.discard(scope)
        raise error(503, "the server is shutting down")

    def cancel(self) -> None:
        self.cancelled = True
        for scope in list(self._scopes):
            scope.cancel()


class Server(uvicorn.Server):
    """uvicorn's server, whose second Ctrl-C answers the requests in flight with 503 rather than dropping them.

    uvicorn alone stops waiting at once: requests die with a plain-text 500 and the app's shutdown never runs.
    Here a second Ctrl-C cancels the requests (they answer JSON 503, their uploads are removed), and uvicorn
    stops waiting for connections once they have answered, or after :data:`GRACE` seconds; a third stops at
    once. Signals are not raised again afterwards (uvicorn's way ends in a KeyboardInterrupt traceback).
    """

    def __init__(self, config: uvicorn.Config, cancellation: Cancellation) -> None:
        super().__init__(config)
        self.cancellation = cancellation
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self.should_exit and sig == signal.SIGINT and not self.cancellation.cancelled and loop is not None:
            # Runs between two bytecodes of the loop's own thread: hand the work to the loop itself.
            loop.call_soon_threadsafe(self.cancellation.cancel)
            loop.call_soon_threadsafe(loop.call_later, GRACE, setattr, self, "force_exit", True)
            return
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is threading.main_thread():  # signals reach only the main thread
            handlers = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)
        else:
            yield

