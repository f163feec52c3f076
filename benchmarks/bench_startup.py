"""Start-up cost of the command line: ``emovid --help`` and light commands against a bare ``python -c pass``.

Each command runs in a fresh interpreter, ``--repeat`` times interleaved; the best wall time of each is
reported with its ratio to the bare interpreter's, measured in the same run (so a busy machine shifts both).
``import torch`` is there for scale: a command that prints help should cost far less than it.

    python benchmarks/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "torchvision", "matplotlib", "pytorch_lightning")


def commands(folder: Path) -> dict[str, list[str]]:
    """What to time, by label: the baseline first."""
    cli = [sys.executable, "-m", "emovid.cli"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "emovid --help": [*cli, "--help"],
        "emovid predict --help": [*cli, "predict", "--help"],
        "emovid index (empty folder)": [*cli, "index", str(folder)],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }


def best_times(runs: dict[str, list[str]], repeat: int) -> dict[str, float]:
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for label, command in runs.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            best[label] = min(best[label], time.perf_counter() - start)
    return best


def heavy_imports_of_parser() -> list[str]:
    """The heavy libraries that importing ``emovid.cli`` and building its parser loads."""
    code = ("import sys, emovid.cli as c; c.build_parser(); "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the best is kept (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = best_times(commands(Path(folder)), args.repeat)
    base = times["python -c pass"]
    print(f"{'command':<30}  {'best s':>7}  {'x python -c pass':>16}")
    for label, seconds in times.items():
        print(f"{label:<30}  {seconds:7.3f}  {seconds / base:16.1f}")
    heavy = heavy_imports_of_parser()
    print(f"heavy libraries loaded by building the parser: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
