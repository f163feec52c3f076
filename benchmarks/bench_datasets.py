"""Dataset indexing and CREMA-D preparation throughput, each against a baseline measured in the same run.

1. Index: 7,442 CREMA-D-named ``.flv`` files (the real corpus's count and name pattern: 91 actors, 12 sentences,
   IEO at three levels). The index reads names only, never bytes, so the files are empty. Baseline: the bare
   recursive listing the index itself walks (``Path.rglob`` keeping video files). Reported: files/s of both, the
   index's per-file overhead over the listing in microseconds, and the same with format detection (``auto``).
2. Prepare: real, decodable synthetic CREMA-D clips (FLV1 video at CREMA-D's 480x360 and 30 fps; the real files
   are VP6, which FFmpeg cannot encode), T=16 at 112 with a centre crop, 2 worker processes. Baseline: the
   decode floor, every frame decoded and none converted, in 2 processes, on the same files.

    python benchmarks/bench_datasets.py [--files 7442] [--clips 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import av

from emovid.data.cache import PrepareSettings, prepare
from emovid.data.source import is_video
from emovid.data.video import Resize
from emovid.datasets import cremad, index_dataset
from emovid.synthetic import SynthConfig, generate_dataset


def bare_listing(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and is_video(p.name))


def best_of(repeat: int, fn) -> tuple[float, object]:
    """The median wall time of ``repeat`` calls (after one warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_index(files: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "VideoFlash"
        root.mkdir()
        for name in cremad.corpus_names()[:files]:
            (root / name).touch()
        t_list, listed = best_of(repeat, lambda: bare_listing(root))
        t_index, index = best_of(repeat, lambda: index_dataset(root, "cremad"))
        t_auto, _ = best_of(repeat, lambda: index_dataset(root))
        assert listed == len(index.entries) == files, (listed, len(index.entries))
        print(f"index of {files} CREMA-D names (empty files), median of {repeat}:")
        print(f"  bare listing (rglob)      {t_list * 1e3:7.1f} ms  {files / t_list:9.0f} files/s")
        for label, t in (("index --dataset cremad", t_index), ("index (auto-detected)", t_auto)):
            print(f"  {label:<25} {t * 1e3:7.1f} ms  {files / t:9.0f} files/s  = {t / t_list:.2f}x the listing, "
                  f"+{(t - t_list) / files * 1e6:.1f} us per file")


def decode_floor(path: str) -> int:
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def bench_prepare(clips: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        per_actor = 6
        actors = tuple(range(1, -(-clips // per_actor) + 1))
        config = SynthConfig(actors=actors, width=480, height=360, seconds=2.5, repetitions=(1,), statements=(1,),
                             intensities=(1,), naming="cremad")
        generate_dataset(data, config, workers=2, progress=False)
        index = index_dataset(data, "cremad")
        paths = [str(e.source.path) for e in index.entries]
        settings = PrepareSettings(16, Resize("intelligent", 112, 128))

        def run_prepare() -> int:
            out = Path(tempfile.mkdtemp(dir=tmp))
            report = prepare(index, out, settings, workers=2, progress=False)
            return report.written

        def run_floor() -> int:
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                return sum(pool.map(decode_floor, paths, chunksize=1))

        t_floor, frames = best_of(repeat, run_floor)
        t_prep, written = best_of(repeat, run_prepare)
        n = len(paths)
        assert written == n
        print(f"prepare of {n} synthetic CREMA-D flv clips (480x360, 30 fps, {frames // n} frames), T=16 at 112, "
              f"2 processes, median of {repeat}:")
        print(f"  decode floor (all frames)  {n / t_floor:6.1f} clips/s")
        print(f"  emovid prepare             {n / t_prep:6.1f} clips/s  = {t_floor / t_prep:.2f}x the decode floor's "
              f"throughput")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=7442)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_index(args.files, args.repeat)
    bench_prepare(args.clips, max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
