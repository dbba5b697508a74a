"""`python -m dcobench bench train|merge|sample|gpu`: figures written to results/bench/<what>.json.

`gpu` runs train, sample and merge at the paper's GPU setting in one command with a fixed
budget (see its --help); `--dry` runs the same code at tiny sizes on any machine."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("what", choices=["train", "merge", "sample", "gpu"],
                        help="which benchmark; gpu: DCO vs DB step time and peak memory at 1024², "
                             "rank 32, bf16, with and without gradient checkpointing; fused "
                             "training of K = 2 vs separate steps; CFG / RG / "
                             "official RG / stock images per second at batch 1, 4, 8; ZipLoRA peak "
                             "memory; measured beside predicted peak memory. Budget: 8 min on "
                             "one H100-class GPU with --base-model sdxl-shaped (default for gpu; "
                             "building the preset the first time is extra); sections that would start after --budget-s are skipped")
    parser.add_argument("--concept", help="concept folder to train on (train)")
    parser.add_argument("--base-model", default=None, help="default: tiny-sdxl (gpu: sdxl-shaped)")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps per objective (sample: denoising steps per timed loop)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=64,
                        help="train/sample/merge; gpu --dry: its tiny plan's resolution")
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
    parser.add_argument("--fused-models", nargs="*", default=["tiny-sdxl", "world-sdxl"],
                        help="train: models of the fused vs separate section (world-sdxl at 32 px); "
                             "none = skip it")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8],
                        help="train: trainings per fused group")
    parser.add_argument("--k-all", type=int, default=10,
                        help="train: all of a concept's variants (config/world.yaml subjects: 10)")
    parser.add_argument("--ranks", type=int, nargs=2, default=[4, 8], help="merge: LoRA ranks")
    parser.add_argument("--dry", action="store_true",
                        help="gpu: tiny sizes and a step or two per figure (CPU tests); the numbers "
                             "are not GPU figures")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="gpu: seconds after which the remaining sections are skipped (8 min)")


def run(args) -> None:
    args.out = args.out or f"results/bench/{args.what}.json"
    args.base_model = args.base_model or ("sdxl-shaped" if args.what == "gpu" else "tiny-sdxl")
    if args.what == "gpu":
        from dcobench.bench.gpu import Plan, bench_gpu

        plan = (Plan.tiny(args.budget_s, args.resolution) if args.dry
                else Plan(budget_s=args.budget_s))
        result = bench_gpu(plan, args.base_model, Path(args.out))  # rewritten after each section
        print(json.dumps(result, indent=2))
        return None
    if args.what == "merge":
        return _merge(args)
    if args.what == "sample":
        from dcobench.bench.sample import bench_sample

        return _write(args, bench_sample(args))
    if not args.concept:
        raise SystemExit("bench train: --concept is required")
    from dcobench.bench.train import bench_train, bench_train_fused

    result = bench_train(args)
    if args.fused_models:
        result["fused"] = bench_train_fused(args)
    _write(args, result)


def _merge(args) -> None:
    from dcobench.bench.merge import bench_merge

    _write(args, bench_merge(args))


def _write(args, result: dict) -> None:
    from dcobench.io import write_text_atomic

    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
