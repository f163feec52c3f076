"""CPU throughput of every registered model: forward and forward+backward clips per second.

Each model is measured in fp32, with channels-last weights and under bf16 autocast (the last only when
oneDNN reports native bf16 on this CPU). The variants of a model run in turn, iteration by iteration,
and each keeps its fastest step, so load from other processes skews their ratios as little as possible.
Prints one markdown table; a variant cell shows its speed-up over fp32 and a check mark where it is at
least ``--helps`` times faster. The 3-D models' bf16 training step is left out: on this CPU, oneDNN has no
fast bf16 path for the 3-D convolutions' backward, and one r3d18 step of 2 clips at 224 took over 200 s
(5 s in fp32).

    python benchmarks/bench_models.py --quick
    python benchmarks/bench_models.py --sizes 112 224 --models r3d18 cnn-lstm
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from emovid.models import create_model, list_models, model_options

VARIANTS = ("fp32", "channels_last", "bf16")
MODES = ("fwd", "fwd+bwd")
VIDEO_MODELS = {"r3d18", "r2plus1d18", "mc3-18"}  # 3-D conv weights: channels_last_3d instead
Step = Callable[[], None]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list_models(), metavar="NAME")
    p.add_argument("--sizes", nargs="+", type=int, default=[112, 224])
    p.add_argument("--frames", type=int, default=10, help="clip length T")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--helps", type=float, default=1.1, help="speed-up that counts as helping")
    p.add_argument("--quick", action="store_true", help="112 only, at most 2 iterations")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.iters = [112], min(args.iters, 2)
    return args


def bf16_supported() -> bool:
    # Without native bf16 (AVX512-BF16 / AMX) autocast still runs, but emulated and slower.
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def make_steps(name: str, variant: str, size: int, args: argparse.Namespace) -> dict[str, Step]:
    """A forward (inference) step and a training step (forward, loss, backward) for one variant."""
    options = {"num_frames": args.frames} if "num_frames" in model_options(name) else {}
    model = create_model(name, **options)
    if variant == "channels_last":
        model = model.to(
            memory_format=torch.channels_last_3d if name in VIDEO_MODELS else torch.channels_last
        )
    bf16 = variant == "bf16"
    clips = torch.randn(args.batch, args.frames, 3, size, size)  # (B, T, C, H, W)
    labels = torch.randint(0, 8, (args.batch,))

    def forward() -> None:
        model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(clips)

    def train_step() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(clips), labels)
        loss.backward()

    if bf16 and name in VIDEO_MODELS:
        return {"fwd": forward}  # see the module docstring: minutes per step
    return {"fwd": forward, "fwd+bwd": train_step}


def clips_per_second(
    steps: dict[tuple[str, str], Step], args: argparse.Namespace
) -> dict[tuple[str, str], float]:
    """Throughput of each step's fastest timed run; the steps take turns."""
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(args.iters):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            best[key] = min(best[key], time.perf_counter() - start)
    return {key: args.batch / seconds for key, seconds in best.items()}


def rows(args: argparse.Namespace, variants: tuple[str, ...]) -> Iterator[str]:
    for size in args.sizes:
        for name in args.models:
            steps = {
                (variant, mode): step
                for variant in variants
                for mode, step in make_steps(name, variant, size, args).items()
            }
            speed = clips_per_second(steps, args)
            cells = []
            for mode in MODES:
                base = speed["fp32", mode]
                cells.append(f"{base:.1f}")
                for variant in variants[1:]:
                    if (variant, mode) not in speed:
                        cells.append("left out")
                        continue
                    ratio = speed[variant, mode] / base
                    mark = " ✓" if ratio >= args.helps else ""
                    cells.append(f"{speed[variant, mode]:.1f} ({ratio:.2f}x{mark})")
            yield f"| {name} | {size} | " + " | ".join(cells) + " |"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    variants = VARIANTS if bf16_supported() else VARIANTS[:2]
    print(
        f"clips/s on CPU, {args.threads} threads, batch {args.batch}, T={args.frames}, "
        f"best of {args.iters} after {args.warmup} warm-up; ✓ = at least {args.helps}x fp32"
        + ("" if "bf16" in variants else "; bf16 left out: no native bf16 on this CPU")
    )
    print()
    heads = [f"{mode} {variant}" for mode in MODES for variant in variants]
    print("| model | size | " + " | ".join(heads) + " |")
    print("|---|---|" + "---:|" * len(heads))
    for row in rows(args, variants):
        print(row, flush=True)
    # Other processes on the machine skew throughput; the load average tells the reader how much.
    print(f"\nload average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
