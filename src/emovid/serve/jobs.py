"""Predictions off the event loop: a bounded pool of worker threads, and the job each upload becomes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from emovid.data.source import VideoSource
from emovid.data.video import VideoError, open_video
from emovid.predict import (
    Failure,
    Prediction,
    Predictor,
    as_failure,
    predict_timeline,
    predict_videos,
    prediction_record,
    timeline_records,
)
from emovid.serve.upload import error

T = TypeVar("T")


class InferencePool:
    """At most ``workers`` predictions at a time, each in its own thread, and ``queue`` more requests waiting.

    A request holds a :meth:`slot` from before its upload is read until its answer is ready, so uploads in
    progress count as waiting too: the server never holds more than ``workers + queue`` uploads at once. It
    then waits for its :meth:`turn` on the event loop (not in the executor's queue), so a request whose client
    has gone away meanwhile can step aside without costing a worker.
    """

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers = workers
        self.capacity = workers + queue
        self.admitted = 0  # only touched on the event loop's thread, so no lock
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="emovid-predict")
        self._turns = asyncio.Semaphore(workers)
        self._seconds = 1.0  # a running mean of job durations, for Retry-After

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``workers + queue`` places; HTTP 503 with ``Retry-After`` when all are taken."""
        if self.admitted >= self.capacity:
            exc = error(503, "the server is busy; try again later")
            exc.headers = {"Retry-After": str(self.retry_after())}
            raise exc
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
        """``job()`` in a worker thread; call it during a :meth:`turn`, so a thread is free."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, job)

    def _timed(self, job: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return job()
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - start)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def predict_upload(predictor: Predictor, path: Path, name: str, *, timeline: bool, max_seconds: float) -> dict:
    """The record ``emovid predict --json`` gives for one video (``--timeline``: with its windows), as ``name``.

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
        if timeline:
            result = predict_timeline(source, predictor)
            mean = Prediction(name, result.mean(), {})  # the video's prediction, as the CLI's --timeline gives it
            return {**prediction_record(mean, names), "windows": timeline_records(result)}
        (clip,) = predict_videos([source], predictor, batch_size=1)
    except VideoError as exc:
        clip = as_failure(exc, source)
    if isinstance(clip, Failure):
        # The reason leaves out the file it is about, but an unexpected error's text may hold our path.
        raise error(422, clip.reason.replace(str(path), name), file=name)
    return prediction_record(replace(clip, source=name), names)
