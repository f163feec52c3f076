"""Predictions off the event loop: a bounded pool of worker threads, and the job each complete upload becomes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

from fastapi import HTTPException

from emovid.data.source import VideoSource
from emovid.data.video import VideoError, open_video
from emovid.predict import (
    Failure,
    Predictor,
    as_failure,
    predict_timeline,
    predict_videos,
    prediction_record,
    timeline_facts,
    timeline_records,
)
from emovid.records import people_record
from emovid.serve.upload import error
from emovid.timeline import FaceMode

T = TypeVar("T")


class InferencePool:
    """At most ``workers`` predictions at a time, each in its own thread, and ``queue`` more requests waiting.

    A request takes a :meth:`slot` once its upload is complete on disk and keeps it until its answer is ready,
    so the server never holds more than ``workers + queue`` videos waiting for or in prediction. It then waits
    for its :meth:`turn` on the event loop, so a request whose client has gone away meanwhile can step aside
    without costing a worker.
    """

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers = workers
        self.capacity = workers + queue
        self.admitted = 0  # only touched on the event loop's thread, so no lock
        self._turns = asyncio.Semaphore(workers)
        self._seconds = 1.0  # a running mean of job durations, for Retry-After
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []

    def check(self) -> None:
        """HTTP 503 with ``Retry-After`` when every place is taken: say so before an upload is received."""
        if self.admitted >= self.capacity:
            raise error(503, "the server is busy; try again later", headers={"Retry-After": str(self.retry_after())})

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``workers + queue`` places; HTTP 503 with ``Retry-After`` when all are taken."""
        self.check()
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def retry_after(self) -> int:
        """Seconds until the requests in hand are likely done: a place will be free by then."""
        return max(1, math.ceil(self._seconds * self.admitted / self.workers))

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait until a worker is free, and keep it while inside."""
        async with self._turns:
            yield

    async def run(self, job: Callable[[], T]) -> T:
        """``job()`` in a worker thread; call it during a :meth:`turn`, so a worker is free.

        The threads are daemons: a server told to stop at once does not wait for a prediction nobody will read.
        They are started on first use and kept (a thread per job would leave each one's allocations behind).
        """
        if not self._threads:
            self._threads = [threading.Thread(target=self._work, name=f"emovid-predict-{i}", daemon=True)
                             for i in range(self.workers)]
            for thread in self._threads:
                thread.start()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(job, loop, answer))
        return await answer

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            start = time.perf_counter()
            try:
                outcome: tuple[Any, BaseException | None] = (item.call(), None)
            except BaseException as exc:  # handed to the awaiting request, which raises it
                outcome = (None, exc)
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for this answer
                item.loop.call_soon_threadsafe(_settle, item.answer, *outcome)

    def shutdown(self) -> None:
        """Let the worker threads end once their current job is done."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []


@dataclass(frozen=True)
class _Job:
    call: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future


def _settle(answer: asyncio.Future, result: object, exc: BaseException | None) -> None:
    if answer.cancelled():  # the request stopped waiting (the server is shutting down)
        return
    if exc is not None:
        answer.set_exception(exc)
    else:
        answer.set_result(result)


def predict_upload(predictor: Predictor, path: Path, name: str, *, timeline: bool, max_seconds: float,
                   faces: FaceMode = "main") -> dict:
    """The record ``emovid predict --json`` gives for one video, as ``name``; with ``timeline``, also its windows.

    The record's emotion is always the clip's, as without ``timeline``; ``windows`` come from
    :func:`~emovid.predict.predict_timeline`, and its warnings join the clip's. With ``faces="all"``, the record
    of ``emovid predict --faces all --json`` (:func:`~emovid.records.people_record`), each face with a
    ``thumbnail``: a small JPEG of it as a data URL.

    Raises:
        HTTPException: 422 with the CLI's one-line reason for a video that cannot be read, or one longer than
            ``max_seconds``.
    """
    source = VideoSource(path)
    names = predictor.spec.class_names
    try:
        with open_video(source) as reader:
            seconds = reader.info.duration
        if seconds > max_seconds:
            raise error(422, f"the video lasts {seconds:.1f} s, longer than this server's limit of {max_seconds:g} s",
                        file=name)
        if faces == "all":
            return _people_upload(predictor, source, name, timeline)
        (clip,) = predict_videos([source], predictor, batch_size=1)
        if isinstance(clip, Failure):
            raise _unreadable(clip, path, name)
        record = prediction_record(replace(clip, source=name), names)
        if timeline:
            result = predict_timeline(source, predictor)
            extra = [w for w in timeline_facts(result)["warnings"] if w not in record["warnings"]]
            record = {**record, "warnings": record["warnings"] + extra, "windows": timeline_records(result)}
        return record
    except VideoError as exc:
        raise _unreadable(as_failure(exc, source), path, name) from None


def _people_upload(predictor: Predictor, source: VideoSource, name: str, timeline: bool) -> dict:
    from emovid.annotate import face_thumbnails
    from emovid.people import people_analysis

    try:
        result = people_analysis(source, predictor)
    except VideoError:
        raise
    except ValueError as exc:  # a model that cannot score faces frame by frame
        raise error(422, str(exc), file=name) from None
    record = people_record(replace(result, source=name), windows=timeline)
    thumbnails = face_thumbnails(source, result)
    for face in record["faces"]:
        jpeg = thumbnails.get(face["track"])
        face["thumbnail"] = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode() if jpeg else None
    return record


def _unreadable(failure: Failure, path: Path, name: str) -> HTTPException:
    # The reason leaves out the file it is about, but an unexpected error's text may hold our path.
    return error(422, failure.reason.replace(str(path), name), file=name)
