"""The FastAPI app: the JSON API over :mod:`emovid.predict`, and the page that uses it."""

from __future__ import annotations

import hmac
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovid.data.cache import cpu_workers
from emovid.predict import Predictor
from emovid.serve.jobs import InferencePool, predict_upload
from emovid.serve.upload import FIELD, error, receive_upload, temporary_upload

STATIC = Path(__file__).parent / "static"
MAX_BYTES = 100 * 2**20
MAX_SECONDS = 120.0
UPLOAD_TIMEOUT = 120.0
BEARER = HTTPBearer(auto_error=False, description="the server's API token, when it was started with one")

_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD], "properties": {FIELD: {"type": "string", "format": "binary"}}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"description": text} for code, text in {
    400: "malformed body, or the client went away", 401: "missing or wrong API token",
    408: "the upload took too long", 413: "the upload is too large", 415: "not multipart/form-data",
    422: "not a readable video, or too long; the body says why in one line", 503: "busy: see Retry-After"}.items()}


def create_app(
    predictor: Predictor,
    *,
    token: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
    workers: int | None = None,
    queue: int | None = None,
    upload_timeout: float = UPLOAD_TIMEOUT,
    upload_dir: Path | None = None,
) -> FastAPI:
    """The emovid web app around one loaded predictor.

    Args:
        predictor: the model every request uses.
        token: when given, ``/v1/*`` needs ``Authorization: Bearer <token>``.
        max_bytes: largest accepted video file.
        max_seconds: longest accepted video.
        workers: predictions at a time (default: one per core).
        queue: requests waiting beyond those (default: twice ``workers``); more get HTTP 503.
        upload_timeout: seconds a client has to send its whole upload.
        upload_dir: where uploads are kept while predicted (default: a new temporary folder, removed at
            shutdown). Files there get server-chosen names and are removed when their request ends.
    """
    workers = workers or cpu_workers()
    pool = InferencePool(workers, 2 * workers if queue is None else queue)
    own_dir = upload_dir is None
    folder = Path(tempfile.mkdtemp(prefix="emovid-serve-")) if upload_dir is None else upload_dir
    spec = predictor.spec

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)

    app = FastAPI(title="emovid", summary="Emotion recognition in videos from the face alone.",
                  version="0.1.0", lifespan=lifespan)
    app.state.upload_dir = folder
    app.state.pool = pool

    def authorise(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        given = credentials.credentials if credentials else ""
        if token is not None and not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, {"error": "missing or wrong API token"}, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and the router's own 404 and 405
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        # uvicorn still logs the traceback; the client gets one line of JSON like every other error
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"][1:]) or "request"
        return JSONResponse({"error": f"{where}: {problem['msg']}"}, 422)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", summary="Whether the server is up (no token needed)")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models", summary="The loaded model, its classes and the server's limits",
             dependencies=[Depends(authorise)], responses={401: _ERRORS[401]})
    async def models() -> dict:
        return {
            "model": spec.model_args["name"],
            "classes": list(spec.class_names),
            "frames": spec.frames,
            "clip_seconds": spec.clip_seconds,
            "crop": spec.crop,
            "limits": {"max_bytes": max_bytes, "max_seconds": max_seconds, "workers": pool.workers,
                       "queue": pool.capacity - pool.workers},
        }

    @app.post("/v1/predict", summary="The emotion of one uploaded video, as `emovid predict --json` gives it",
              dependencies=[Depends(authorise)], openapi_extra={"requestBody": _UPLOAD_BODY}, responses=_ERRORS)
    async def predict(request: Request, timeline: bool = False) -> dict:
        """Upload the video as the multipart field `file`. With `timeline=1`, the answer adds `windows`: per
        sliding window (the model's clip length, half of it apart) its start and end in seconds, emotion and
        probabilities; the top-level emotion is then the mean over windows."""
        with pool.slot(), temporary_upload(folder) as path:
            with path.open("wb") as out:
                name = await receive_upload(request, out, max_bytes=max_bytes, timeout=upload_timeout)
            async with pool.turn():
                if await request.is_disconnected():  # nobody would read the answer: leave the worker to others
                    raise error(400, "the client went away before its prediction started")
                return await pool.run(lambda: predict_upload(predictor, path, name, timeline=timeline,
                                                             max_seconds=max_seconds))

    return app
