"""Load test of ``emovid serve`` on the loopback address, against ``predict_records`` in one process.

Two scenarios on one server, started here as ``emovid serve`` with the default zero-shot model (or ``--model``)
and its default limits:

1. ``--uploads`` concurrent uploads (default 20) of one 4 s 1280x720 H.264 clip (a RAVDESS original from
   bench_predict.py, re-encoded; a synthetic face without network), all sent at once, each from its own
   loopback address. A client that gets 503 (or 429) waits the ``Retry-After`` it was given and sends again.
   Reports every answer's status (none may be lost), p50/p95 latency from first send to the 200, throughput
   against ``predict_records`` on the same clips in this process (the model loaded once in both; with torch's
   default threads, as ``emovid predict`` runs, and with one, as each server worker runs), and the server's
   resident memory: after start, after a first prediction, at its peak and after the load.
2. ``--slow`` clients (default 6, as many as the old server's worker and queue places) each from its own
   loopback address, sending their uploads at 2 bytes/s, while one normal client uploads the clip
   ``--normal`` times (default 5) in turn: its latency against the same uploads without slow clients.

    python benchmarks/bench_serve.py [--uploads 20] [--slow 6] [--normal 5] [--clip PATH] [--model zero-shot]

Linux only (memory from /proc, clients on 127.0.0.x). Other processes may share the CPU: the load average is
printed beside each figure; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
from bench_predict import WORK, all_frames, encode, ravdess_clips, synthetic_face_frames

from emovid.predict import Predictor, predict_records
from emovid.zero_shot import ENSEMBLE, zero_shot_predictor

MAX_TRIES = 50
DEADLINE = 1800  # seconds for a whole scenario: it stops by itself even if the server hangs


def clip_4s() -> Path:
    """A 4.0 s 1280x720 clip with a real face when the RAVDESS samples are there (played back and forth to
    reach 4 s if the original is shorter)."""
    path = WORK / "clip_720p_4s.mp4"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        ravdess = ravdess_clips()
        frames = all_frames(ravdess[1]) if ravdess else synthetic_face_frames(1280, 720, 4.0)
        while len(frames) < 120:
            frames = np.concatenate([frames, frames[::-1]])
        encode(frames[:120], path, 30, bit_rate=8_000_000)
    return path


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def load_average() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


@contextlib.contextmanager
def server(model: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``emovid serve`` on a free loopback port; stopped with Ctrl-C (SIGINT) at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-m", "emovid.cli", "serve", "--port", str(port), "--model", model],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # loading the model takes a few seconds
        while not _answers(f"{url}/healthz"):
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start (exit code {child.poll()})")
            time.sleep(0.1)
        yield url, child
    finally:
        child.send_signal(signal.SIGINT)  # a graceful stop, which removes the upload folder
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Load:
    """What the clients saw, and the server's memory while they ran."""

    statuses: list[int] = field(default_factory=list)  # every HTTP answer, 503s included
    latencies: list[float] = field(default_factory=list)  # per upload: first send to its 200
    lost: list[str] = field(default_factory=list)  # uploads that got no HTTP answer, or no 200 in MAX_TRIES
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(url: str, data: bytes, name: str, source: str, load: Load) -> None:
    """Upload from the loopback address ``source`` until answered 200, waiting each 503's or 429's Retry-After."""
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600, transport=httpx.HTTPTransport(local_address=source)) as http:
        for _ in range(MAX_TRIES):
            try:
                answer = http.post("/v1/predict", files={"file": (name, data, "video/mp4")})
            except httpx.HTTPError as exc:
                with load.lock:
                    load.lost.append(f"{name}: {type(exc).__name__}: {exc}")
                return
            with load.lock:
                load.statuses.append(answer.status_code)
            if answer.status_code == 200:
                with load.lock:
                    load.latencies.append(time.perf_counter() - start)
                return
            if answer.status_code not in (429, 503):
                with load.lock:
                    load.lost.append(f"{name}: HTTP {answer.status_code} {answer.text[:200]}")
                return
            time.sleep(float(answer.headers.get("retry-after", "1")))
    with load.lock:
        load.lost.append(f"{name}: still 503 after {MAX_TRIES} tries")


def concurrent_uploads(url: str, pid: int, data: bytes, uploads: int) -> tuple[Load, float]:
    """``uploads`` clients, each from its own loopback address, sending at once; seconds from the first send to
    the last 200."""
    load = Load()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            load.peak = max(load.peak, rss(pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    clients = [threading.Thread(target=send, args=(url, data, f"clip{i}.mp4", f"127.0.1.{1 + i}", load), daemon=True)
               for i in range(uploads)]
    start = time.perf_counter()
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=max(1.0, DEADLINE - (time.perf_counter() - start)))
    elapsed = time.perf_counter() - start
    stop.set()
    if any(c.is_alive() for c in clients):
        load.lost.append(f"clients still waiting after the {DEADLINE} s deadline")
    return load, elapsed


def trickle(url: str, source: str, stop: threading.Event, states: list[str]) -> None:
    """An upload from ``source`` that promises 5 MB and sends 2 bytes a second until ``stop``."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                     b"boundary=b\r\nContent-Length: 5000000\r\n\r\n--b\r\nContent-Disposition: form-data; "
                     b"name=\"file\"; filename=\"slow.mp4\"\r\n\r\n")
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                sock.sendall(b"\0")
                status = sock.recv(200).split(b"\r\n", 1)[0].decode()  # the server answers when it gives up
                states.append(f"{source}: answered {status}")
                return
            except TimeoutError:
                continue
            except OSError as exc:
                states.append(f"{source}: {type(exc).__name__}")
                return
    states.append(f"{source}: still sending")


def sequential(url: str, data: bytes, count: int) -> list[float]:
    """Seconds per upload of ``count`` uploads one after another."""
    seconds = []
    with httpx.Client(base_url=url, timeout=600) as http:
        for i in range(count):
            start = time.perf_counter()
            answer = http.post("/v1/predict", files={"file": (f"normal{i}.mp4", data, "video/mp4")})
            seconds.append(time.perf_counter() - start)
            if answer.status_code != 200:
                raise SystemExit(f"the normal client got HTTP {answer.status_code}: {answer.text[:200]}")
    return seconds


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--slow", type=int, default=6)
    parser.add_argument("--normal", type=int, default=5)
    parser.add_argument("--clip", type=Path, help="the video to upload (default: a 4 s 720p clip made here)")
    parser.add_argument("--model", default=ENSEMBLE)
    args = parser.parse_args()
    clip = args.clip or clip_4s()
    data = clip.read_bytes()
    print(f"clip {clip} ({len(data) / 2**20:.1f} MiB); model {args.model}; {load_average()}")

    # emovid predict as it runs (the model loaded once, torch's default threads), and with one thread, as each
    # server worker runs; after one clip's warm-up (the face detectors load on first use)
    predictor = Predictor(*zero_shot_predictor(args.model))
    predict_records([str(clip)], predictor)
    in_process = {}
    for threads in (torch.get_num_threads(), 1):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        records = predict_records([str(clip)] * args.uploads, predictor)
        in_process[threads] = time.perf_counter() - start
        if any("error" in r for r in records):
            raise SystemExit(f"predict failed on {clip}")
        print(f"\npredict_records, {args.uploads} clips in one process, {threads} torch thread(s): "
              f"{args.uploads / in_process[threads]:.3f} clips/s ({in_process[threads]:.1f} s); {load_average()}")
    del predictor

    with server(args.model) as (url, child):
        started = rss(child.pid)
        sequential(url, data, 1)  # the face detectors load on the first prediction
        warm = rss(child.pid)
        load, served = concurrent_uploads(url, child.pid, data, args.uploads)
        after = rss(child.pid)
        answers = {code: load.statuses.count(code) for code in sorted(set(load.statuses))}
        rate = len(load.latencies) / served
        print(f"\n{args.uploads} concurrent uploads: {len(load.latencies)} predicted, HTTP answers {answers}, "
              f"lost {len(load.lost)}; {load_average()}")
        for line in load.lost:
            print(f"  lost: {line}")
        if load.latencies:
            print(f"latency, first send to 200: p50 {percentile(load.latencies, 50):.1f} s, "
                  f"p95 {percentile(load.latencies, 95):.1f} s, max {max(load.latencies):.1f} s")
        print(f"throughput: server {rate:.3f} clips/s ({served:.1f} s) = " + ", ".join(
            f"{rate * seconds / args.uploads:.2f}x predict_records with {threads} thread(s)"
            for threads, seconds in in_process.items()))
        print(f"server memory (RSS): {started / 2**20:.0f} MiB started, {warm / 2**20:.0f} MiB after one "
              f"prediction, peak {load.peak / 2**20:.0f} MiB, {after / 2**20:.0f} MiB after the load "
              f"({(after - warm) / 2**20:+.0f} MiB)")

        alone = sequential(url, data, args.normal)
        stop = threading.Event()
        states: list[str] = []
        slow = [threading.Thread(target=trickle, args=(url, f"127.0.0.{2 + i}", stop, states), daemon=True)
                for i in range(args.slow)]
        for s in slow:
            s.start()
        time.sleep(2)  # let them all be received (a benchmark: a fixed pause is fine here)
        beside = sequential(url, data, args.normal)
        stop.set()
        for s in slow:
            s.join(timeout=10)
        print(f"\nnormal client, {args.normal} uploads in turn: median {statistics.median(alone):.2f} s alone, "
              f"{statistics.median(beside):.2f} s beside {args.slow} clients sending 2 bytes/s "
              f"({statistics.median(beside) / statistics.median(alone):.2f}x); {load_average()}")
        print("  the slow clients at the end: " + "; ".join(sorted(states)))


if __name__ == "__main__":
    main()
