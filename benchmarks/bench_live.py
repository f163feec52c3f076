"""Live scoring: frames a second on this machine, latency over the WebSocket, and the server's memory over a session.

1. In process: a :class:`~emovid.live.LiveScorer` with the default zero-shot model on the frames of a real face
   clip at 640 px wide (as the page sends them), one frame at a time, with one torch thread (as ``emovid serve``
   runs each of its threads on a machine of as many cores as workers) and with torch's default: frames scored a
   second, against the batched
   per-frame path of ``predict --timeline`` (:func:`~emovid.analysis.frame_analysis`) on the same clip, measured in
   the same run (the ratio is the figure; the machine is shared).
2. ``emovid serve`` started here; one WebSocket client sends the clip's frames as JPEGs (quality 0.8, as the page)
   at ``--fps`` (default 5) for ``--seconds`` (default 300): latency from a frame sent to its answer (median, p95),
   answers a second, frames the server dropped, and the server's resident memory every ``--every`` seconds.
3. The same client at the per-connection cap (15 frames a second) for ``--burst`` seconds (default 30): what a
   client faster than the model gets (answers a second, dropped frames, latency of the frames answered).

    python benchmarks/bench_live.py [--seconds 300] [--fps 5] [--burst 30] [--clip PATH] [--model zero-shot]

Linux only (memory from /proc). The default clip is a real face from /work/shared/realfaces when it is there (for
measuring only), else bench_predict's 720p clip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_predict import all_frames
from bench_serve import clip_4s, load_average, rss, server
from websockets.sync.client import connect

from emovid.analysis import frame_analysis
from emovid.live import LiveScorer
from emovid.predict import load_predictor

REAL = Path("/work/shared/realfaces/DFEW_sample_happy.mp4")


def frames_640(clip: Path) -> list[np.ndarray]:
    """The clip's frames at 640 pixels wide, RGB."""
    frames = all_frames(clip)
    height = round(frames.shape[1] * 640 / frames.shape[2])
    return [cv2.resize(f, (640, height), interpolation=cv2.INTER_AREA) for f in frames]


def jpegs(frames: list[np.ndarray]) -> list[bytes]:
    return [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            for f in frames]


def in_process(clip: Path, frames: list[np.ndarray], model: str) -> None:
    predictor = load_predictor(model=model)
    scorer = LiveScorer(predictor)
    for i, frame in enumerate(frames[:5]):  # warm up: detectors loaded, first calls
        scorer.push(frame, i / 5)
    count = min(100, len(frames))
    start = time.perf_counter()
    for i in range(count):
        scorer.push(frames[i % len(frames)], 100 + i / 5)
    live = count / (time.perf_counter() - start)
    start = time.perf_counter()
    analysis = frame_analysis(clip, predictor)
    batched = len(analysis.frames.indices) / (time.perf_counter() - start) if analysis.frames else float("nan")
    print(f"in process, {torch.get_num_threads()} torch threads ({load_average()}): {live:.1f} frames/s one at a "
          f"time (LiveScorer, 640 px frames), {batched:.1f} frames/s batched (frame_analysis on {clip.name}): "
          f"{live / batched:.2f}x")


def session(url: str, pid: int, data: list[bytes], fps: float, seconds: float, every: float) -> None:
    """One client sending ``fps`` frames a second for ``seconds``; latency, answers and the server's memory."""
    sent: dict[int, float] = {}
    latencies: list[float] = []
    dropped = [0]
    answers = [0]
    memory: list[tuple[float, int]] = []
    stop = threading.Event()
    with connect(url.replace("http", "ws") + "/v1/live", max_size=None) as ws:
        assert json.loads(ws.recv(timeout=60))["type"] == "ready"

        def receive() -> None:
            while not stop.is_set():
                try:
                    message = json.loads(ws.recv(timeout=1))
                except TimeoutError:
                    continue
                except Exception:  # the connection closed at the end
                    return
                latencies.append(time.perf_counter() - sent[message["frame"]])
                dropped[0] += message["dropped"]
                answers[0] += 1

        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        start = time.perf_counter()
        next_memory = 0.0
        number = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            if elapsed >= next_memory:
                memory.append((elapsed, rss(pid)))
                next_memory += every
            number += 1
            sent[number] = time.perf_counter()
            ws.send(data[number % len(data)])
            time.sleep(max(0.0, start + number / fps - time.perf_counter()))
        memory.append((time.perf_counter() - start, rss(pid)))
        time.sleep(2)  # the last answers
        stop.set()
        reader.join()
    ms = sorted(1000 * v for v in latencies)
    print(f"{fps:g} frames/s for {seconds:g} s ({load_average()}): {number} sent, {answers[0]} answered "
          f"({answers[0] / seconds:.2f}/s), {dropped[0]} dropped; latency frame sent -> answer: median "
          f"{statistics.median(ms):.0f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms")
    print("server RSS (MiB) at seconds: " + ", ".join(f"{t:.0f}: {m / 2**20:.0f}" for t, m in memory))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--burst", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between memory readings")
    parser.add_argument("--clip", type=Path, default=REAL if REAL.exists() else None)
    parser.add_argument("--model", default="zero-shot")
    args = parser.parse_args()
    clip = args.clip or clip_4s()
    frames = frames_640(clip)
    data = jpegs(frames)
    print(f"{clip.name}: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}, JPEG "
          f"{statistics.mean(map(len, data)) / 1024:.0f} KiB on average; {os.cpu_count()} cores")
    threads = torch.get_num_threads()
    for count in (1, threads):  # one: as each server thread runs (emovid serve gives each worker cores/workers)
        torch.set_num_threads(count)
        in_process(clip, frames, args.model)
    torch.set_num_threads(threads)
    with server(args.model) as (url, child):
        session(url, child.pid, data, 15.0, args.burst, args.every)
        session(url, child.pid, data, args.fps, args.seconds, args.every)


if __name__ == "__main__":
    sys.exit(main())
