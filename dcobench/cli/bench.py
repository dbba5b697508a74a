"""`python -m dcobench bench train`: DCO vs DB step time, measured side by side in one run."""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("what", choices=["train", "merge"], help="which benchmark")
    parser.add_argument("--concept", help="concept folder to train on (train)")
    parser.add_argument("--base-model", default="tiny-sdxl")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per method")
    parser.add_argument("--out", help="default: results/bench/<what>.json")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 5e-2],
                        help="merge: ZipLoRA learning rates to sweep (--steps steps each)")
    parser.add_argument("--ranks", type=int, nargs=2, default=[4, 8], help="merge: LoRA ranks")


def run(args) -> None:
    args.out = args.out or f"results/bench/{args.what}.json"
    if args.what == "merge":
        return _merge(args)
    if not args.concept:
        raise SystemExit("bench train: --concept is required")
    import torch

    from dcobench.io import device, versions, write_text_atomic
    from dcobench.train import Trainer, TrainOptions

    trainers = {}
    for method in ("db", "dco"):
        opts = TrainOptions(concept_dir=Path(args.concept), out_dir=Path("/nonexistent"),
                            method=method, base_model=args.base_model, steps=args.steps,
                            rank=4, resolution=args.resolution)
        trainers[method] = Trainer(opts)
        for _ in range(args.warmup):
            trainers[method].step()
    seconds = {m: 0.0 for m in trainers}
    for _ in range(args.rounds):  # alternate so drift in machine load hits both alike
        for method, trainer in trainers.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.step()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds[method] += time.perf_counter() - start
    per_step = {m: s / (args.steps * args.rounds) for m, s in seconds.items()}
    result = {"device": str(device()), "resolution": args.resolution, "steps": args.steps,
              "rounds": args.rounds, "seconds_per_step": per_step,
              "dco_over_db": per_step["dco"] / per_step["db"], "versions": versions()}
    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _merge(args) -> None:
    from dcobench.bench_merge import bench_merge
    from dcobench.io import write_text_atomic

    result = bench_merge(args)
    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
