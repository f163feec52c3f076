"""``emovid serve``: a web page and a JSON API for video emotion recognition, on :mod:`emovid.predict`.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install 'emovid[serve]'``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from emovid.predict import Predictor
from emovid.serve.app import create_app

__all__ = ["TOKEN_ENV", "check_host", "create_app", "is_loopback", "run"]

TOKEN_ENV = "EMOVID_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_host(host: str, token: str | None) -> None:
    """Raises ValueError when ``host`` is reachable from other machines and no token guards the API."""
    if not is_loopback(host) and not token:
        raise ValueError(f"--host {host} lets other machines in: give an API token with --token or ${TOKEN_ENV}")


def run(predictor: Predictor, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
        **limits: Any) -> None:
    """Serve the page and the API until interrupted; ``limits`` as :func:`create_app` takes them."""
    import torch
    import uvicorn

    check_host(host, token)
    app = create_app(predictor, token=token, **limits)
    # Each worker thread runs one clip at a time: more intra-op threads than cores per worker only contend.
    torch.set_num_threads(max(1, torch.get_num_threads() // app.state.pool.workers))
    uvicorn.run(app, host=host, port=port, log_level="info")
