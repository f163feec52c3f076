"""The FastAPI app: the JSON API over :mod:`emovid.predict`, and the page that uses it."""

from __future__ import annotations

import hmac
import shutil
import tempfile
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovid.live import LiveScorer
from emovid.predict import Predictor
from emovid.serve.jobs import InferencePool, predict_upload
from emovid.serve.limits import Limits
from emovid.serve.live import PROTOCOL, LivePlaces, denial, live_session, token_matches
from emovid.serve.security import LOOPBACK_NAMES, Guard
from emovid.serve.shutdown import Cancellation
from emovid.serve.upload import FIELD, UploadPlaces, error, receive_upload, temporary_upload
from emovid.timeline import FaceMode

STATIC = Path(__file__).parent / "static"
# Swagger UI's script and styles, from the fastapi-offline package (the serve extra): /docs works offline.
SWAGGER = Path(fastapi_offline.__file__).parent / "static"
BEARER = HTTPBearer(auto_error=False, description="the server's API token, when it was started with one")

_UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD], "properties": {FIELD: {"type": "string", "format": "binary"}}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"description": text} for code, text in {
    400: "malformed body, the client went away, or a Host header that does not name this server",
    401: "missing or wrong API token", 403: "a cross-origin request the server was not told to allow (--cors)",
    408: "the upload took too long, or sent nothing for a while", 413: "the upload is too large",
    415: "not multipart/form-data", 422: "not a readable video, or too long; the body says why in one line",
    429: "this client already sends as many uploads as it may", 503: "busy or shutting down: see Retry-After"}.items()}


def create_app(
    predictor: Predictor,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    allowed_hosts: Collection[str] = (),
    cors: Collection[str] = (),
    upload_dir: Path | None = None,
) -> FastAPI:
    """The emovid web app around one loaded predictor.

    Args:
        predictor: the model every request uses.
        token: when given, ``/v1/*`` needs ``Authorization: Bearer <token>``. Without one, only requests whose
            ``Host`` names the loopback address (or one of ``allowed_hosts``) are answered, and cross-origin
            POSTs are refused unless their origin is in ``cors``.
        limits: sizes, times and counts (see :class:`Limits`).
        allowed_hosts: more ``Host`` names to accept without a token (the server's own name, say).
        cors: other origins whose pages may call the API (CORS headers; without a token, their POSTs too).
        upload_dir: where uploads are kept while predicted (default: a new temporary folder, removed at
            shutdown). Files there get server-chosen names and are removed when their request ends.
    """
    limits = limits or Limits()
    pool = InferencePool(limits.worker_count, limits.queue_length)
    places = UploadPlaces(limits.max_uploads, limits.uploads_per_client, retry_after=limits.upload_idle)
    live_places = LivePlaces(limits.live_connections)
    cancellation = Cancellation()
    own_dir = upload_dir is None
    folder = Path(tempfile.mkdtemp(prefix="emovid-serve-")) if upload_dir is None else upload_dir
    spec = predictor.spec
    every_face = _scores_every_face(predictor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)

    app = FastAPI(title="emovid", summary="Emotion recognition in videos from the face alone.",
                  version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.upload_dir = folder
    app.state.pool = pool
    app.state.places = places
    app.state.live_places = live_places
    app.state.cancellation = cancellation
    if cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"])
    app.add_middleware(Guard, hosts=None if token else [*LOOPBACK_NAMES, *allowed_hosts],
                       origins=None if token else cors)

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

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER), name="docs-assets")

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
            "faces": ["main", "all"] if every_face else ["main"],
            "limits": {"max_bytes": limits.max_bytes, "max_seconds": limits.max_seconds, "workers": pool.workers,
                       "queue": pool.capacity - pool.workers},
            "live": predictor.frame_kind is not None,  # /v1/live takes frame-level models only
        }

    @app.post("/v1/predict", summary="The emotion of one uploaded video, as `emovid predict --json` gives it",
              dependencies=[Depends(authorise)], openapi_extra={"requestBody": _UPLOAD_BODY}, responses=_ERRORS)
    async def predict(request: Request, timeline: bool = False, faces: FaceMode = "main") -> dict:
        """Upload the video as the multipart field `file`. The answer is the clip's emotion and probabilities,
        with `face_found` (null: the model does not look for faces), `decoded_seconds` and `declared_seconds`
        (a truncated file declares more than it holds) and `warnings` (one line each). With `timeline=1` it
        adds `windows`: per sliding window (the model's clip length, half of it apart) its start and end in
        seconds, emotion, probabilities and `face_found`; the top-level emotion stays the clip's. With
        `faces=all` (models that list it in /v1/models), every person: `faces`, one per track (number, first and
        last seen, seconds visible, median box, emotion, probabilities, `thumbnail` as a JPEG data URL), the
        top-level emotion the main person's, and with `timeline=1` windows with a `track` (see docs/people.md)."""
        if faces == "all" and not every_face:
            raise error(422, "faces=all needs a frame-level model on face crops; this server's looks at whole clips "
                             "or the centre of the frame")
        pool.check()  # no use receiving a body that could not be predicted
        return await cancellation.run(_receive_and_predict(request, timeline, faces))

    async def _receive_and_predict(request: Request, timeline: bool, faces: FaceMode) -> dict:
        client = request.client.host if request.client else ""
        with temporary_upload(folder) as path:
            with places.place(client), path.open("wb") as out:
                name = await receive_upload(request, out, max_bytes=limits.max_bytes, timeout=limits.upload_timeout,
                                            idle=limits.upload_idle)
            with pool.slot():  # only now that the whole video is on disk
                async with pool.turn():
                    if await request.is_disconnected():  # nobody would read the answer: leave the worker to others
                        raise error(400, "the client went away before its prediction started")
                    return await pool.run(lambda: predict_upload(predictor, path, name, timeline=timeline,
                                                                 max_seconds=limits.max_seconds, faces=faces))

    @app.websocket("/v1/live")
    async def live(websocket: WebSocket) -> None:
        """JPEG frames in, each newest frame's emotion out: see :mod:`emovid.serve.live` and docs/live.md."""
        if not token_matches(websocket, token):
            return await websocket.send_denial_response(denial(401, "missing or wrong API token"))
        if cancellation.cancelled:
            return await websocket.send_denial_response(denial(503, "the server is shutting down"))
        if live_places.full():
            return await websocket.send_denial_response(denial(503, f"the server takes {live_places.total} live "
                                                                    f"connections at once; try again later"))
        try:
            scorer = LiveScorer(predictor)
        except ValueError as exc:
            return await websocket.send_denial_response(denial(422, str(exc)))
        live_places.open += 1
        try:
            await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in websocket.scope["subprotocols"] else None)
            await live_session(websocket, scorer, limits, live_places.threads)
        finally:
            live_places.open -= 1

    return app


def _scores_every_face(predictor: Predictor) -> bool:
    from emovid.people import check_people_model

    try:
        check_people_model(predictor)
    except ValueError:
        return False
    return True
