"""``emovid serve``: a web page and a JSON API for video emotion recognition, on :mod:`emovid.predict`.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart, fastapi-offline): ``pip install 'emovid[serve]'``.
The app itself is :func:`emovid.serve.app.create_app`; this module stays light (no FastAPI, no torch), so the
command line can read its flags from :class:`Limits` without the extra.
"""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from emovid.serve.limits import Limits

if TYPE_CHECKING:
    from emovid.predict import Predictor

__all__ = ["TOKEN_ENV", "Cancelled", "Limits", "check_address", "is_loopback", "run"]

TOKEN_ENV = "EMOVID_TOKEN"


class Cancelled(Exception):
    """A second Ctrl-C stopped the server: requests in flight were answered 503, the upload folder is gone, but
    a prediction may still run in a worker thread. End the process at once (``os._exit``): an interpreter's
    normal exit would tear its libraries down under that thread."""


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_address(host: str, port: int, token: str | None) -> None:
    """Raises ValueError (one line) for a port out of range, or a ``host`` other machines reach without a token."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be 1-65535, got {port}")
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} lets other machines in: give an API token with --token or ${TOKEN_ENV}")


def run(predictor: Predictor, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
        limits: Limits | None = None, allowed_hosts: Collection[str] = (), cors: Collection[str] = ()) -> None:
    """Serve the page and the API until interrupted (arguments as :func:`create_app` takes them).

    Ctrl-C lets the requests in flight finish; a second answers them 503 at once. Uploads live in a temporary
    folder, removed however the server stops.

    Raises:
        ValueError: a bad address (see :func:`check_address`).
        Cancelled: a second Ctrl-C cut requests short.
    """
    import torch
    import uvicorn

    from emovid.serve.app import create_app
    from emovid.serve.security import host_name
    from emovid.serve.shutdown import Server

    check_address(host, port, token)
    limits = limits or Limits()
    folder = Path(tempfile.mkdtemp(prefix="emovid-serve-"))
    try:
        # The address the server was asked to listen on names it too (say --host 127.0.0.2, or ::1).
        bound = f"[{host}]" if ":" in host else host
        app = create_app(predictor, token=token, limits=limits, allowed_hosts=[*allowed_hosts, host_name(bound)],
                         cors=cors, upload_dir=folder)
        # Each worker thread runs one clip at a time: more intra-op threads than cores per worker only contend.
        torch.set_num_threads(max(1, torch.get_num_threads() // app.state.pool.workers))
        # JPEG frames do not compress: no per-message deflate. The protocol refuses a live message well past the
        # frame limit before buffering it; the app names the limit for any over it.
        config = uvicorn.Config(app, host=host, port=port, log_level="info", ws_per_message_deflate=False,
                                ws_max_size=limits.live_max_bytes + 64 * 1024)
        Server(config, app.state.cancellation).run()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if app.state.cancellation.cancelled:
        raise Cancelled
