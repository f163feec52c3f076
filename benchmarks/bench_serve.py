"""Load test of ``emovid serve`` on the loopback address, against ``emovid predict`` in one process.

``--requests`` uploads (default 50) of one 3.7 s 1280x720 H.264 clip (bench_predict.py's: a RAVDESS original
re-encoded, or a synthetic face without network) from ``--clients`` concurrent clients (default 8) to a server
started here with the default zero-shot model (or ``--model``) and its default workers and queue. A client
that gets 503 waits the ``Retry-After`` it was given and sends the same upload again (at most 20 times).
Reports every answer's status (none may be lost), p50/p95 latency from first send to the 200, throughput
against ``predict_videos`` on the same clips in this process (the model loaded once in both; with torch's
default threads as ``emovid predict`` runs, and with one thread as each server worker runs), and the server's
resident memory: its peak while the first 10 uploads ran against its peak during the last 10.

    python benchmarks/bench_serve.py [--requests 50] [--clients 8] [--clip PATH] [--model zero-shot]

Linux only (memory from /proc). Other processes may share the CPU: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch
from bench_predict import bench_clip, ravdess_clips

from emovid.datasets.ravdess import VideoSource
from emovid.predict import Failure, Predictor, predict_videos
from emovid.zero_shot import ENSEMBLE, zero_shot_predictor

MAX_TRIES = 20
DEADLINE = 1800  # seconds for the whole load test: it stops by itself even if the server hangs


@dataclass
class Load:
    """What the clients saw, and the server's memory while they ran."""

    statuses: list[int] = field(default_factory=list)  # every HTTP answer, 503s included
    latencies: list[float] = field(default_factory=list)  # per upload: first send to its 200
    lost: list[str] = field(default_factory=list)  # uploads that got no HTTP answer, or no 200 in MAX_TRIES
    done: int = 0
    memory: list[tuple[int, int]] = field(default_factory=list)  # (uploads done, server RSS bytes)
    lock: threading.Lock = field(default_factory=threading.Lock)


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, model: str) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "emovid.cli", "serve", "--port", str(port), "--model", model],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # loading the model takes a few seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not answer /healthz within 300 s")


def client(url: str, data: bytes, jobs: list[int], load: Load) -> None:
    """Take uploads from ``jobs`` until none is left; retry each on 503 after its Retry-After."""
    with httpx.Client(base_url=url, timeout=300) as http:
        while True:
            with load.lock:
                if not jobs:
                    return
                job = jobs.pop()
            start = time.perf_counter()
            for _ in range(MAX_TRIES):
                try:
                    answer = http.post("/v1/predict", files={"file": (f"clip{job}.mp4", data, "video/mp4")})
                except httpx.HTTPError as exc:
                    with load.lock:
                        load.lost.append(f"upload {job}: {type(exc).__name__}: {exc}")
                    break
                with load.lock:
                    load.statuses.append(answer.status_code)
                if answer.status_code == 200:
                    with load.lock:
                        load.latencies.append(time.perf_counter() - start)
                        load.done += 1
                    break
                if answer.status_code != 503:
                    with load.lock:
                        load.lost.append(f"upload {job}: HTTP {answer.status_code} {answer.text[:200]}")
                    break
                time.sleep(float(answer.headers.get("retry-after", "1")))
            else:
                with load.lock:
                    load.lost.append(f"upload {job}: still 503 after {MAX_TRIES} tries")


def watch_memory(pid: int, load: Load, stop: threading.Event) -> None:
    while not stop.wait(0.05):
        with load.lock:
            done = load.done
        load.memory.append((done, rss(pid)))


def load_test(clip: Path, requests: int, clients: int, model: str) -> tuple[Load, float]:
    port = free_port()
    server = start_server(port, model)
    load = Load()
    stop = threading.Event()
    try:
        watcher = threading.Thread(target=watch_memory, args=(server.pid, load, stop), daemon=True)
        watcher.start()
        jobs = list(range(requests))
        data = clip.read_bytes()
        threads = [threading.Thread(target=client, args=(f"http://127.0.0.1:{port}", data, jobs, load), daemon=True)
                   for _ in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1.0, DEADLINE - (time.perf_counter() - start)))
        elapsed = time.perf_counter() - start
        if any(t.is_alive() for t in threads):
            load.lost.append(f"clients still waiting after the {DEADLINE} s deadline")
    finally:
        stop.set()
        server.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown, which removes the upload folder
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return load, elapsed


def in_process(clip: Path, requests: int, model: str, threads: int) -> float:
    """Seconds ``predict_videos`` takes on ``requests`` copies of the clip, as ``emovid predict`` runs them."""
    torch.set_num_threads(threads)
    predictor = Predictor(*zero_shot_predictor(model))
    list(predict_videos([VideoSource(clip)], predictor))  # warm-up: the face detectors load on first use
    start = time.perf_counter()
    results = list(predict_videos([VideoSource(clip)] * requests, predictor))
    elapsed = time.perf_counter() - start
    if any(isinstance(r, Failure) for r in results):
        raise SystemExit(f"predict failed on {clip}")
    return elapsed


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--clip", type=Path, help="the video to upload (default: a 3.7 s 720p clip made here)")
    parser.add_argument("--model", default=ENSEMBLE)
    args = parser.parse_args()
    clip = args.clip or bench_clip(ravdess_clips())
    print(f"clip {clip} ({clip.stat().st_size / 2**20:.1f} MiB); model {args.model}; {os.cpu_count()} cores")

    load, served = load_test(clip, args.requests, args.clients, args.model)
    # emovid predict as it runs (torch's default threads), and with one thread, as each server worker runs
    baselines = {threads: in_process(clip, args.requests, args.model, threads)
                 for threads in (torch.get_num_threads(), 1)}

    answers = {code: load.statuses.count(code) for code in sorted(set(load.statuses))}
    print(f"\n{args.requests} uploads from {args.clients} clients: {load.done} predicted, HTTP answers {answers}, "
          f"lost {len(load.lost)}")
    for line in load.lost:
        print(f"  lost: {line}")
    if len(load.latencies) >= 2:
        print(f"latency, first send to 200: p50 {percentile(load.latencies, 50):.2f} s, "
              f"p95 {percentile(load.latencies, 95):.2f} s, max {max(load.latencies):.2f} s")
    rate = load.done / served
    print(f"throughput: server {rate:.2f} clips/s ({served:.1f} s)")
    for threads, seconds in baselines.items():
        print(f"  predict_videos in one process, {threads} torch thread(s): {args.requests / seconds:.2f} clips/s "
              f"({seconds:.1f} s); server / predict = {rate * seconds / args.requests:.2f}")
    first = max((m for done, m in load.memory if done < 10), default=0)
    last = max((m for done, m in load.memory if done >= load.done - 10), default=0)
    print(f"server memory (RSS): peak {first / 2**20:.0f} MiB during the first 10 uploads, "
          f"{last / 2**20:.0f} MiB during the last 10 ({(last - first) / 2**20:+.0f} MiB)")


if __name__ == "__main__":
    main()
