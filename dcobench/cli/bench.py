"""`python -m dcobench bench train|merge|sample`: figures written to results/bench/<what>.json."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("what", choices=["train", "merge", "sample"], help="which benchmark")
    parser.add_argument("--concept", help="concept folder to train on (train)")
    parser.add_argument("--base-model", default="tiny-sdxl")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps per objective (sample: denoising steps per timed loop)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per objective (sample: per guided loop)")
    parser.add_argument("--out", help="default: results/bench/<what>.json")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 5e-2],
                        help="merge: ZipLoRA learning rates to sweep (--steps steps each)")
    parser.add_argument("--rank", type=int, default=4, help="train/sample: LoRA rank (paper: 32)")
    parser.add_argument("--batch", type=int, default=4, help="sample: images per UNet batch")
    parser.add_argument("--scheduler", default="ddim", help="sample: ddim | euler | dpm")
    parser.add_argument("--mixed-precision", default="auto",
                        help="train/sample: auto | fp32 | bf16 | fp16")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="train: recompute activations")
    parser.add_argument("--ranks", type=int, nargs=2, default=[4, 8], help="merge: LoRA ranks")


def run(args) -> None:
    args.out = args.out or f"results/bench/{args.what}.json"
    if args.what == "merge":
        return _merge(args)
    if args.what == "sample":
        from dcobench.bench.sample import bench_sample

        return _write(args, bench_sample(args))
    if not args.concept:
        raise SystemExit("bench train: --concept is required")
    from dcobench.bench.train import bench_train

    _write(args, bench_train(args))


def _merge(args) -> None:
    from dcobench.bench.merge import bench_merge

    _write(args, bench_merge(args))


def _write(args, result: dict) -> None:
    from dcobench.io import write_text_atomic

    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
